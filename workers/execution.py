"""Running one job: claim, execute outside any transaction under a renewed lease, record."""

from __future__ import annotations

import logging
import os
import socket
import threading

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


class _LeaseKeeper(threading.Thread):
    """Renews the job's lease while the provider call blocks, so that only a dead worker's job
    is ever taken for lost. Runs on its own database connection."""

    def __init__(self, job_id: str, attempt: int) -> None:
        super().__init__(name=f"lease-{job_id}", daemon=True)
        self.job_id, self.attempt = job_id, attempt
        self.stopped = threading.Event()
        self.lost = False

    def run(self) -> None:
        interval = max(settings.QCOS["JOB_LEASE_SECONDS"] / 3.0, 0.2)
        try:
            while not self.stopped.wait(interval):
                if not services.job_heartbeat(job_id=self.job_id, attempt=self.attempt):
                    self.lost = True
                    return
        except Exception:
            logger.exception("lease renewal for %s failed", self.job_id)
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


def job_execute(*, job_id: str) -> str | None:
    """Execute a job if this delivery can claim it. Returns the job's new status, or None when
    the delivery was a duplicate (another worker has or had the job)."""
    worker = worker_identity()
    job = services.job_claim(job_id=job_id, worker=worker)
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
    keeper = _LeaseKeeper(job.id, attempt)
    keeper.start()
    try:
        circuit = circuits.parse_circuit(job.circuit)
        outcome = adapter_for(spec.name).run(circuit, shots=job.shots)
    except ProviderError as exc:
        keeper.stop()
        return services.job_fail(job_id=job.id, attempt=attempt, code=exc.code, message=str(exc), transient=exc.transient)
    except SoftTimeLimitExceeded:
        keeper.stop()
        return services.job_fail(
            job_id=job.id, attempt=attempt, code="TIME_LIMIT_EXCEEDED",
            message="the job ran past the task time limit", transient=False,
        )
    except Exception as exc:
        keeper.stop()
        logger.exception("job %s failed unexpectedly", job.id)
        return services.job_fail(
            job_id=job.id, attempt=attempt, code="EXECUTION_ERROR", message=f"{type(exc).__name__}: {exc}",
            transient=False,
        )
    keeper.stop()
    if services.job_complete(job_id=job.id, attempt=attempt, worker=worker, outcome=outcome):
        return "COMPLETED"
    logger.warning("job %s attempt %d finished after losing its lease; result discarded", job.id, attempt)
    return None
