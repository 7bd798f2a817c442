"""Lease renewal from the worker's main process.

A job's lease must be renewed while its worker lives, and must lapse soon after the worker dies.
Renewing from a thread inside the child does not work for CPU-bound providers: qiskit-aer holds
the GIL for a whole simulation, so such a thread would starve and a healthy job would look lost.
The prefork pool's main process is never busy with a job, knows which children are alive, and
renews the leases of the jobs they hold; a child killed by -9 (or by the hard time limit) drops
out of that list and its lease lapses within ``JOB_LEASE_SECONDS``.
"""

from __future__ import annotations

import logging
import socket
from datetime import timedelta

from celery import bootsteps
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

logger = logging.getLogger(__name__)


def live_children(worker) -> list[int]:
    pool = getattr(getattr(worker, "pool", None), "_pool", None)
    processes = getattr(pool, "_pool", None) or []
    return [process.pid for process in processes if process.pid and process.is_alive()]


def renew_leases(identities: list[str]) -> int:
    from qcos.jobs.models import QuantumJob
    from qcos.jobs.states import JobStatus

    if not identities:
        return 0
    lease = timedelta(seconds=settings.QCOS["JOB_LEASE_SECONDS"])
    return QuantumJob.objects.filter(status=JobStatus.RUNNING, claimed_by__in=identities).update(
        lease_expires_at=timezone.now() + lease
    )


class LeaseRenewal(bootsteps.StartStopStep):
    """Worker bootstep: every third of a lease, renew the leases held by live pool children."""

    requires = {"celery.worker.components:Timer", "celery.worker.components:Pool"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.tref = None

    def start(self, worker):
        interval = max(settings.QCOS["JOB_LEASE_SECONDS"] / 3.0, 0.2)
        host = socket.gethostname()

        def tick():
            try:
                close_old_connections()
                renew_leases([f"{host}:{pid}" for pid in live_children(worker)])
            except Exception:  # the database may be briefly away; the next tick tries again
                logger.warning("lease renewal failed", exc_info=True)

        self.tref = worker.timer.call_repeatedly(interval, tick)

    def stop(self, worker):
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
