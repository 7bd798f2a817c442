"""The Celery application. Settings live in Django settings under the ``CELERY_`` prefix."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qcos.settings")

app = Celery("qcos")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"])


def _install_worker_steps() -> None:
    from workers.leases import LeaseRenewal

    app.steps["worker"].add(LeaseRenewal)


_install_worker_steps()
