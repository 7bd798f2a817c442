"""Running one benchmark on a worker: claim, simulate outside any transaction, record."""

from __future__ import annotations

import logging
import os
import socket
import time

from celery.exceptions import SoftTimeLimitExceeded

from . import services
from .backends import BackendCapacityError, UnknownBackendError
from .runner import SimulationFailedError, run_benchmark

logger = logging.getLogger(__name__)
PROGRESS_INTERVAL_S = 0.5


def _worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def benchmark_execute(*, benchmark_id: str) -> str | None:
    """Execute a queued run if this delivery claims it; returns the new status, or None for a
    duplicate delivery."""
    worker = _worker()
    run = services.benchmark_claim(benchmark_id=benchmark_id, worker=worker)
    if run is None:
        logger.info("benchmark %s not claimable (duplicate delivery or not queued); skipping", benchmark_id)
        return None
    attempt = run.attempts

    last_update = [time.monotonic()]

    def progress(done: int, row: dict) -> None:
        # At most every PROGRESS_INTERVAL_S: a commit per workload would cost a fast suite ~10 %.
        if done < len(run.workloads) and time.monotonic() - last_update[0] >= PROGRESS_INTERVAL_S:
            services.benchmark_progress(benchmark_id=benchmark_id, attempt=attempt, done=done)
            last_update[0] = time.monotonic()

    try:
        core = run_benchmark(run.backend_id, list(run.workloads), shots=run.shots, seed=run.seed,
                             include_counts=True, on_workload=progress)
    except (UnknownBackendError, BackendCapacityError) as exc:
        services.benchmark_fail(benchmark_id=benchmark_id, attempt=attempt, code=exc.code, message=str(exc))
        return "failed"
    except SimulationFailedError as exc:
        services.benchmark_fail(benchmark_id=benchmark_id, attempt=attempt, code="SIMULATION_FAILED", message=str(exc))
        return "failed"
    except SoftTimeLimitExceeded:
        services.benchmark_fail(benchmark_id=benchmark_id, attempt=attempt, code="TIME_LIMIT_EXCEEDED",
                                message="the benchmark ran past the task time limit")
        return "failed"
    except Exception as exc:
        logger.exception("benchmark %s failed unexpectedly", benchmark_id)
        services.benchmark_fail(benchmark_id=benchmark_id, attempt=attempt, code="EXECUTION_ERROR",
                                message=f"{type(exc).__name__}: {exc}")
        return "failed"
    try:
        completed = services.benchmark_complete(benchmark_id=benchmark_id, attempt=attempt, worker=worker, core=core)
    except Exception as exc:  # never leave a run RUNNING because its report could not be recorded
        logger.exception("benchmark %s could not be recorded", benchmark_id)
        services.benchmark_fail(benchmark_id=benchmark_id, attempt=attempt, code="RECORDING_FAILED",
                                message=f"{type(exc).__name__}: {exc}")
        return "failed"
    return "completed" if completed else None
