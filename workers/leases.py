"""Lease renewal for the attempts a worker process is really working on.

A RUNNING job's lease is renewed only by the process that runs the attempt, and only from the
moment it claims the job until its outcome is recorded or handed back (``execution.py``). A job
whose worker died, hangs, or gave up recording its outcome stops being renewed and lapses within
``JOB_LEASE_SECONDS``; the reconciler then requeues it, or fails it once its attempts are used up.

Renewing from a thread in the process that runs the job works because the simulation does not
run there: it runs in a sandbox process (``sandbox.py``), and the job's thread waits on a pipe
without holding the GIL. (Renewing from the prefork pool's main process for every live child
kept a job RUNNING for as long as its child lived, even after the child had stopped working on
it.)
"""

from __future__ import annotations

import logging
import os
import threading
import time

from django.conf import settings
from django.db import connection

from qcos.jobs import services

logger = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews the leases of the attempts this process holds.

    One daemon thread per process, started on first use (so after a prefork child is forked) and
    kept: starting and joining a thread for every job cost more than a short job's whole run.
    It wakes at least every second and renews each attempt held for a third of a lease since its
    claim or last renewal; a renewal that matches nothing means the attempt lost its job (its
    completion is fenced by the attempt number anyway). The thread opens a database connection
    for a round of renewals and closes it after.
    """

    def __init__(self) -> None:
        self._held: dict[str, tuple[int, float]] = {}  # job id -> (attempt, claimed or renewed at)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._idle = threading.Event()

    def hold(self, job_id: str, attempt: int) -> None:
        with self._lock:
            self._held[job_id] = (attempt, time.monotonic())
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="qcos-lease-keeper", daemon=True)
                self._thread.start()

    def release(self, job_id: str) -> None:
        with self._lock:
            self._held.pop(job_id, None)

    def held(self) -> dict[str, int]:
        with self._lock:
            return {job_id: attempt for job_id, (attempt, _) in self._held.items()}

    def _due(self, interval: float) -> list[tuple[str, int]]:
        now = time.monotonic()
        with self._lock:
            return [(job_id, attempt) for job_id, (attempt, since) in self._held.items() if now - since >= interval]

    def _run(self) -> None:
        while True:
            interval = max(settings.QCOS["JOB_LEASE_SECONDS"] / 3.0, 0.2)
            # An Event that is never set, not time.sleep: a test that patches time.sleep must not
            # turn this thread into a busy loop (nor see its naps among its own).
            self._idle.wait(min(interval, 1.0))
            due = self._due(interval)
            for job_id, attempt in due:
                try:
                    renewed = services.job_heartbeat(job_id=job_id, attempt=attempt)
                except Exception:
                    logger.warning("lease renewal for %s failed", job_id, exc_info=True)
                    continue
                with self._lock:
                    if not renewed:  # lost: another attempt has it, or it finished meanwhile
                        self._held.pop(job_id, None)
                    elif self._held.get(job_id, (None,))[0] == attempt:
                        self._held[job_id] = (attempt, time.monotonic())
            if due:
                connection.close()


lease_keeper = LeaseKeeper()
