"""The Celery application. Settings live in Django settings under the ``CELERY_`` prefix."""

import os

from celery import Celery
from celery.signals import worker_init, worker_process_init, worker_process_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qcos.settings")

app = Celery("qcos")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"])


@worker_process_init.connect
def _start_sandbox(**kwargs) -> None:
    """Each pool process starts its simulation sandbox now (workers.sandbox), so that its first
    job does not wait for the sandbox's imports."""
    from workers.sandbox import pool

    pool.prewarm()


@worker_process_shutdown.connect
def _stop_sandbox(**kwargs) -> None:
    from workers.sandbox import pool

    pool.shutdown()


@worker_init.connect
def _tune_gc(**kwargs) -> None:
    """In the worker's main process, before the pool forks: the children inherit the frozen
    objects and the thresholds (qcos.runtime)."""
    import django

    from qcos.runtime import tune_gc

    django.setup()  # done already by Celery's Django fix-up in a worker; idempotent
    tune_gc(preload=("workers.execution", "workers.providers.aer", "bench.execution"))
