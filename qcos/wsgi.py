import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qcos.settings")
application = get_wsgi_application()

from qcos.runtime import tune_gc  # noqa: E402  (after Django is set up)

# The URLconf imports every view and, through them, the services and qiskit: load them now,
# before the collector's settings are changed, rather than on a worker's first request.
tune_gc(preload=(settings.ROOT_URLCONF,))
