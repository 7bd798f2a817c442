"""Running one job: claim, simulate in a sandbox under a renewed lease, record.

The lease is renewed (``leases.py``) from the claim until the outcome is recorded or handed back,
and no longer. Recording is retried when the database is away (a dropped connection, a restart),
with backoff, for at most ``QCOS["JOB_RECORD_RETRY_SECONDS"]``; after that the attempt is handed
back: its lease is no longer renewed (and is ended at once if the database answers again), so
the reconciler requeues the job, or fails it when its attempts are used up. Recording is fenced
by the attempt number, so a retry whose first try did commit (its answer was lost with the
connection) writes nothing twice: no second charge, no second audit entry.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from typing import TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from qcos.jobs import circuits, services
from qcos.jobs.models import QuantumJob

from .leases import lease_keeper
from .providers.base import ProviderError
from .providers.registry import get_backend
from .sandbox import simulate

logger = logging.getLogger(__name__)

T = TypeVar("T")
_RETRY_FIRST_DELAY = 0.2
_RETRY_MAX_DELAY = 2.0


class HandedBack(Exception):
    """The outcome could not be recorded while the database was away; the job is left to the
    reconciler."""


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def job_execute(*, job_id: str) -> str | None:
    """Execute a job if this delivery can claim it. Returns the job's new status, or None when
    the delivery was a duplicate (another worker has or had the job) or the attempt was handed
    back to the reconciler."""
    worker = worker_identity()
    job = services.job_claim(job_id=job_id, worker=worker, prefetch=True)
    if job is None:
        logger.info("job %s not claimable (duplicate delivery or not QUEUED); skipping", job_id)
        return None
    lease_keeper.hold(job.id, job.attempts)
    try:
        return _run_claimed(job, worker)
    except HandedBack:
        lease_keeper.release(job.id)
        _hand_back(job.id, job.attempts)
        return None
    finally:
        lease_keeper.release(job.id)


def _run_claimed(job: QuantumJob, worker: str) -> str | None:
    attempt = job.attempts
    spec = get_backend(job.backend)
    if spec is None:
        return _fail(job.id, attempt, "UNKNOWN_BACKEND", f"backend {job.backend!r} is no longer in the catalogue")
    if circuits.circuit_hash(job.circuit) != job.circuit_hash:
        # The evidence will attest this hash: never run text that does not match it.
        return _fail(job.id, attempt, "CIRCUIT_HASH_MISMATCH", "the stored circuit does not match its circuit_hash")
    try:
        outcome = simulate(backend=spec.name, circuit=job.circuit, shots=job.shots)
    except ProviderError as exc:
        return _fail(job.id, attempt, exc.code, str(exc), transient=exc.transient)
    except SoftTimeLimitExceeded:
        return _fail(job.id, attempt, "TIME_LIMIT_EXCEEDED", "the job ran past the task time limit")
    except Exception as exc:
        logger.exception("job %s failed unexpectedly", job.id)
        return _fail(job.id, attempt, "EXECUTION_ERROR", f"{type(exc).__name__}: {exc}")
    completed = _recorded(job.id, lambda: services.job_complete(job_id=job.id, attempt=attempt, worker=worker,
                                                                 outcome=outcome, claimed=job))
    if completed or _recorded(job.id, lambda: services.job_recorded(job_id=job.id, attempt=attempt)) == "COMPLETED":
        return "COMPLETED"  # (the second case: a retried completion whose first try had committed)
    logger.warning("job %s attempt %d finished after losing its lease; result discarded", job.id, attempt)
    return None


def _fail(job_id: str, attempt: int, code: str, message: str, *, transient: bool = False) -> str | None:
    status = _recorded(job_id, lambda: services.job_fail(job_id=job_id, attempt=attempt, code=code, message=message,
                                                          transient=transient))
    if status is None:  # lost the job, or a retry whose first try had committed
        status = _recorded(job_id, lambda: services.job_recorded(job_id=job_id, attempt=attempt))
    return status


def _recorded(job_id: str, record: Callable[[], T]) -> T:
    """``record()``, tried again with backoff while the database is unreachable, for at most
    ``JOB_RECORD_RETRY_SECONDS``; then ``HandedBack``."""
    deadline = time.monotonic() + settings.QCOS["JOB_RECORD_RETRY_SECONDS"]
    delay = _RETRY_FIRST_DELAY
    while True:
        try:
            return record()
        except (OperationalError, InterfaceError) as exc:
            connection.close()  # the next try opens a new connection
            if time.monotonic() + delay > deadline:
                logger.error("job %s: could not record its outcome (%s); handing it back to the reconciler",
                             job_id, exc)
                raise HandedBack() from exc
            logger.warning("job %s: recording its outcome failed (%s); retrying in %.1f s", job_id, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_DELAY)


def _hand_back(job_id: str, attempt: int) -> None:
    """End the attempt's lease now if the database answers (else it lapses on its own)."""
    try:
        services.job_hand_back(job_id=job_id, attempt=attempt)
    except (OperationalError, InterfaceError):
        connection.close()
