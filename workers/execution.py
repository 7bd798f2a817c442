"""Running one job: claim, execute outside any transaction under a renewed lease, record."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection

from qcos.jobs import circuits, services
from qcos.jobs.models import QuantumJob

from .providers.base import ProviderError
from .providers.registry import adapter_for, get_backend

logger = logging.getLogger(__name__)


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class LeaseKeeper:
    """Renews the leases of the jobs this process is running, so that only a dead worker's job is
    ever taken for lost (a second line behind the prefork main process's renewal, ``leases.py``,
    and the only one under the solo and threads pools).

    One daemon thread per process, started on first use (so after a prefork child is forked) and
    kept: starting and joining a thread for every job cost more than a short job's whole run.
    It wakes at least every second and renews each job held for a third of a lease since its
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
                    elif job_id in self._held:
                        self._held[job_id] = (attempt, time.monotonic())
            if due:
                connection.close()


lease_keeper = LeaseKeeper()


def job_execute(*, job_id: str) -> str | None:
    """Execute a job if this delivery can claim it. Returns the job's new status, or None when
    the delivery was a duplicate (another worker has or had the job)."""
    worker = worker_identity()
    job = services.job_claim(job_id=job_id, worker=worker, prefetch=True)
    if job is None:
        logger.info("job %s not claimable (duplicate delivery or not QUEUED); skipping", job_id)
        return None
    return _run_claimed(job, worker)


def _run_claimed(job: QuantumJob, worker: str) -> str | None:
    attempt = job.attempts
    spec = get_backend(job.backend)
    if spec is None:
        return services.job_fail(
            job_id=job.id, attempt=attempt, code="UNKNOWN_BACKEND",
            message=f"backend {job.backend!r} is no longer in the catalogue", transient=False,
        )
    if circuits.circuit_hash(job.circuit) != job.circuit_hash:
        # The evidence will attest this hash: never run text that does not match it.
        return services.job_fail(
            job_id=job.id, attempt=attempt, code="CIRCUIT_HASH_MISMATCH",
            message="the stored circuit does not match its circuit_hash", transient=False,
        )
    lease_keeper.hold(job.id, attempt)
    try:
        circuit = circuits.parse_circuit(job.circuit)
        outcome = adapter_for(spec.name).run(circuit, shots=job.shots)
    except ProviderError as exc:
        failure = (exc.code, str(exc), exc.transient)
    except SoftTimeLimitExceeded:
        failure = ("TIME_LIMIT_EXCEEDED", "the job ran past the task time limit", False)
    except Exception as exc:
        logger.exception("job %s failed unexpectedly", job.id)
        failure = ("EXECUTION_ERROR", f"{type(exc).__name__}: {exc}", False)
    else:
        failure = None
    finally:
        lease_keeper.release(job.id)
    if failure is not None:
        code, message, transient = failure
        return services.job_fail(job_id=job.id, attempt=attempt, code=code, message=message, transient=transient)
    if services.job_complete(job_id=job.id, attempt=attempt, worker=worker, outcome=outcome, claimed=job):
        return "COMPLETED"
    logger.warning("job %s attempt %d finished after losing its lease; result discarded", job.id, attempt)
    return None
