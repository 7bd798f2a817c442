"""The Celery application. Settings live in Django settings under the ``CELERY_`` prefix."""

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qcos.settings")

app = Celery("qcos")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"])


def _install_worker_steps() -> None:
    from workers.leases import LeaseRenewal

    app.steps["worker"].add(LeaseRenewal)


_install_worker_steps()


@worker_init.connect
def _tune_gc(**kwargs) -> None:
    """In the worker's main process, before the pool forks: the children inherit the frozen
    objects and the thresholds (qcos.runtime)."""
    import django

    from qcos.runtime import tune_gc

    django.setup()  # done already by Celery's Django fix-up in a worker; idempotent
    tune_gc(preload=("workers.execution", "workers.providers.aer", "bench.execution"))
