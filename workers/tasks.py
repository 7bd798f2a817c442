"""Celery tasks: thin wrappers that take ids and call services (STYLE.md §3)."""

from __future__ import annotations

from celery import shared_task
from django.db import close_old_connections

from qcos.jobs import services

from . import execution


def _fresh_connections(task) -> None:
    # A worker process outlives many tasks: drop connections that broke or aged out meanwhile.
    # Never in eager mode, where the caller's connection (maybe inside a transaction) is in use.
    if not task.request.is_eager:
        close_old_connections()


@shared_task(
    bind=True, name="workers.tasks.run_job", acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def run_job(self, job_id: str) -> str | None:
    _fresh_connections(self)
    return execution.job_execute(job_id=job_id)


@shared_task(bind=True, name="workers.tasks.reconcile_jobs", ignore_result=True)
def reconcile_jobs(self) -> dict[str, int]:
    _fresh_connections(self)
    outcome = services.jobs_reconcile()
    return {
        "requeued_expired": outcome.requeued_expired,
        "reenqueued_stale": outcome.reenqueued_stale,
        "failed_exhausted": outcome.failed_exhausted,
    }


@shared_task(bind=True, name="workers.tasks.sequence_audit", ignore_result=True)
def sequence_audit(self) -> int:
    from ledger.audit import audit_sequence

    _fresh_connections(self)
    return audit_sequence()


@shared_task(bind=True, name="workers.tasks.sequence_registry", ignore_result=True)
def sequence_registry(self) -> int | None:
    from ledger.registry import registry_sequence

    _fresh_connections(self)
    checkpoint = registry_sequence()
    return checkpoint.tree_size if checkpoint else None


@shared_task(
    bind=True, name="workers.tasks.run_benchmark", acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def run_benchmark(self, benchmark_id: str) -> str | None:
    from bench.execution import benchmark_execute

    _fresh_connections(self)
    return benchmark_execute(benchmark_id=benchmark_id)


@shared_task(
    bind=True, name="workers.tasks.build_report", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
    soft_time_limit=600, time_limit=660,  # finops.report_services.HARD_TIME_LIMIT_S re-claims after this
)
def build_report(self, report_id: str) -> str | None:
    from finops.report_services import report_build

    _fresh_connections(self)
    return report_build(report_id=report_id)


@shared_task(bind=True, name="workers.tasks.reconcile_reports", ignore_result=True)
def reconcile_reports(self) -> dict[str, int]:
    from finops.report_services import reports_reconcile

    _fresh_connections(self)
    return reports_reconcile()


@shared_task(
    bind=True, name="workers.tasks.notify_budget", ignore_result=True, autoretry_for=(OSError,),
    retry_backoff=True, max_retries=5,
)
def notify_budget(self, policy_id: int, payload: dict) -> None:
    """E-mail and webhook for a budget warning or exceedance (the audit entry is already written)."""
    from finops.notifications import budget_notify

    _fresh_connections(self)
    budget_notify(policy_id=policy_id, payload=payload)


@shared_task(bind=True, name="workers.tasks.reconcile_benchmarks", ignore_result=True)
def reconcile_benchmarks(self) -> dict[str, int]:
    from bench.services import benchmarks_reconcile

    _fresh_connections(self)
    outcome = benchmarks_reconcile()
    return {"reenqueued": outcome.reenqueued, "failed_lost": outcome.failed_lost}
