"""Writes for benchmark runs: submit (validate, price, reserve, audit, enqueue after commit), claim,
progress, complete (sealed report, signed bundle, settlement) and fail (release). Every state
change is a conditional UPDATE that must match exactly one row, audited in its transaction.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from finops import estimates, reservations, settlements, windows
from finops.formulas import PricingError
from ledger.audit import Outcome, audit_append, system_principal, user_principal
from ledger.crypto.bundle import build_bundle, sign_bundle
from ledger.crypto.canonical import canonical_json
from ledger.evidence import bundle_register
from ledger.keys import signer_for
from ledger.models import AuditEntry
from ledger.registry import sequence_now
from qcos.errors import (
    ApprovalRequired,
    BudgetExceeded,
    IdempotencyConflict,
    InvalidShots,
    QCOSError,
    ValidationFailed,
)
from qcos.tenancy.principal import Principal
from qcos.tenancy.roles import Capability
from qcos.tenancy.selectors import project_resolve

from . import documents, report as report_crypto
from .backends import BackendCapacityError, UnknownBackendError, available_backends, backend_info
from .errors import BackendTooSmall, BackendUnavailable, InvalidWorkload
from .models import BenchmarkRun, BenchmarkStatus
from .pricing import PRICING_TIER, price_run
from .runner import MAX_SHOTS
from .workloads import SEED_MAX, WORKLOADS, UnknownWorkloadError, resolve_workloads

logger = logging.getLogger(__name__)

RESOURCE_TYPE = "benchmark_run"
BENCH_QUEUE = "jobs.local"
"""Every worker consumes ``jobs.local`` (docker-compose, dev.sh, the integration tests): benchmarks
simulate locally, like the ``simulator`` backend's jobs, so they share its queue."""

# Rough seconds per workload at 1,024 shots on this class of machine (perf/bench_api.py), ideal
# and noisy; scaled linearly in shots for noisy runs. Only for the 202's estimated_time_seconds.
_IDEAL_SECONDS = {"bell_state": 0.02, "ghz_5q": 0.02, "ghz_10q": 0.03, "ghz_50q": 0.08, "ghz_100q": 0.25,
                  "depth_stress": 0.05}
_NOISY_SECONDS = {"bell_state": 0.3, "ghz_5q": 0.4, "ghz_10q": 0.6, "ghz_50q": 2.0, "ghz_100q": 6.0,
                  "depth_stress": 1.0}
_NOISE_MODEL_SECONDS = 2.0


def _audit(run: BenchmarkRun, action: str, principal: dict[str, Any], details: dict[str, Any] | None = None,
           outcome: str = Outcome.SUCCESS) -> None:
    audit_append(action=action, principal=principal, resource_type=RESOURCE_TYPE, resource_id=str(run.id),
                 details=details, outcome=outcome, tenant_slug=run.tenant.slug)


def _worker_principal(worker: str, run: BenchmarkRun) -> dict[str, Any]:
    return {**system_principal("worker", run.tenant.slug), "worker": worker}


def estimated_seconds(kind: str, workload_ids: list[str], shots: int) -> float:
    if kind == "ideal":
        return round(sum(_IDEAL_SECONDS.get(w, 0.1) for w in workload_ids), 2)
    scale = max(shots / 1024, 0.25)
    return round(_NOISE_MODEL_SECONDS + scale * sum(_NOISY_SECONDS.get(w, 1.0) for w in workload_ids), 1)


# --- submission ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    run: BenchmarkRun
    response_body: dict[str, Any]
    replayed: bool


def _validated_workloads(workloads: list[str] | None) -> list[str]:
    try:
        return [w.id for w in resolve_workloads(workloads)]
    except UnknownWorkloadError as exc:
        raise InvalidWorkload(str(exc), details={"workload": exc.workload_id, "available": list(WORKLOADS)}) from None
    except (TypeError, ValueError) as exc:
        raise InvalidWorkload(str(exc), details={"available": list(WORKLOADS)}) from None


def benchmark_submit(
    *,
    principal: Principal,
    backend_id: str,
    workloads: list[str] | None = None,
    shots: int = 1024,
    seed: int | None = None,
    tenant_slug: str | None = None,
    project_slug: str | None = None,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
    render: Callable[[BenchmarkRun], dict[str, Any]],
) -> Submission:
    """Validate, price, reserve and queue a benchmark run. Nothing is written unless all is valid."""
    principal.require(Capability.SUBMIT_JOB)
    replay = _idempotent_replay(principal, idempotency_key, fingerprint, render)
    if replay is not None:
        return replay
    if isinstance(shots, bool) or not isinstance(shots, int) or not 1 <= shots <= MAX_SHOTS:
        raise InvalidShots(f"shots must be between 1 and {MAX_SHOTS}", details={"shots": shots, "max": MAX_SHOTS})
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_MAX):
        raise ValidationFailed(f"seed must be an integer in [0, {SEED_MAX})", details={"fields": {"seed": seed}})
    workload_ids = _validated_workloads(workloads)
    try:
        info = backend_info(backend_id)
        for workload_id in workload_ids:
            info.check_capacity(workload_id, WORKLOADS[workload_id].qubits)
    except UnknownBackendError as exc:
        raise BackendUnavailable(str(exc), details={"backend_id": backend_id,
                                                    "available": available_backends()}) from None
    except BackendCapacityError as exc:
        raise BackendTooSmall(str(exc), details={"backend_id": backend_id, "qubits": info.num_qubits}) from None
    project = project_resolve(principal=principal, tenant_slug=tenant_slug, project_slug=project_slug)
    run_seed = secrets.randbelow(SEED_MAX) if seed is None else seed
    policies = windows.policies_for(tenant=principal.tenant, project=project)
    tiers = estimates.cost_tiers_for(policies)

    def estimator(circuit: Any, name: str, circuit_shots: int) -> Any:
        return estimates.price_estimate(circuit=circuit, backend=name, shots=circuit_shots, tier=PRICING_TIER,
                                     tier_multipliers=tiers)

    try:
        price = price_run(info, workload_ids, shots, run_seed, estimator=estimator)
    except PricingError as exc:
        raise QCOSError(str(exc), code="PRICING_ERROR", details={"backend_id": backend_id}) from None
    actor = user_principal(principal.user, principal.tenant.slug, principal.roles)
    try:
        with transaction.atomic():
            run = BenchmarkRun.objects.create(
                tenant=principal.tenant, project=project, submitted_by=principal.user, api_key=principal.api_key,
                backend_id=backend_id, workloads=workload_ids, shots=shots, seed=run_seed,
                seed_source="request" if seed is not None else "generated", dev_mode=info.dev_mode,
                warning=info.warning or "", priced_as=price.priced_as, estimated_cost_usd=price.cost_usd,
                estimate=price.detail, idempotency_key=idempotency_key or "", fingerprint=fingerprint or "",
            )
            _audit(run, "BENCHMARK_SUBMITTED", actor, {
                "backend_id": backend_id, "workloads": workload_ids, "shots": shots, "seed": run_seed,
                "seed_source": run.seed_source, "dev_mode": info.dev_mode, "project": project.slug,
                "estimated_cost_usd": str(price.cost_usd), "priced_as": price.priced_as,
            })
            # Reserve last, as jobs do: the budget rows stay locked as briefly as possible. A run
            # cannot wait for an approval: a hold is refused (APPROVAL_REQUIRED), never queued.
            sheets = ",".join(f"{s['price_sheet_id']}@{s['price_sheet_version']}" for s in price.detail["price_sheets"])
            reservations.budget_reserve(
                tenant=principal.tenant, project=project, amount=price.cost_usd, resource_type=RESOURCE_TYPE,
                resource_id=str(run.id), tier=PRICING_TIER, backend=backend_id, shots=shots, price_sheet=sheets,
                principal=principal)
            body = render(run)
            transaction.on_commit(lambda: _enqueue(str(run.id)))
    except (BudgetExceeded, ApprovalRequired) as refused:
        # Nothing of the run survives the rollback; the refusal itself is audited (as for jobs).
        audit_append(
            action=refused.code, principal=actor, resource_type=RESOURCE_TYPE, resource_id="",
            outcome=Outcome.DENIED, tenant_slug=principal.tenant.slug,
            details={"backend_id": backend_id, "workloads": workload_ids, "shots": shots, "project": project.slug,
                     "estimated_cost_usd": str(price.cost_usd), "reason": refused.message, **refused.details},
        )
        raise
    except IntegrityError:
        replay = _idempotent_replay(principal, idempotency_key, fingerprint, render)
        if replay is None:
            raise
        return replay
    return Submission(run=run, response_body=body, replayed=False)


def _idempotent_replay(principal: Principal, key: str | None, fingerprint: str | None,
                       render: Callable[[BenchmarkRun], dict[str, Any]]) -> Submission | None:
    if not key:
        return None
    run = (BenchmarkRun.objects.select_related("tenant")
           .filter(tenant=principal.tenant, submitted_by=principal.user, idempotency_key=key).first())
    if run is None:
        return None
    if run.fingerprint != (fingerprint or ""):
        raise IdempotencyConflict("this Idempotency-Key was used with a different request body",
                                  details={"idempotency_key": key, "benchmark_id": str(run.id)})
    return Submission(run=run, response_body=render(run), replayed=True)


def _enqueue(benchmark_id: str) -> None:
    """Wake a worker; failure is logged (the run stays queued; ``benchmarks_reconcile`` retries)."""
    from workers.tasks import run_benchmark

    try:
        run_benchmark.apply_async(args=[benchmark_id], queue=BENCH_QUEUE, retry=False)
    except Exception:
        logger.warning("could not enqueue benchmark %s", benchmark_id, exc_info=True)


@dataclass(frozen=True)
class Reconciliation:
    reenqueued: int
    failed_lost: int


def benchmarks_reconcile(*, requeue_after_seconds: float | None = None,
                         lost_after_seconds: float | None = None) -> Reconciliation:
    """Recover runs the broker or a worker lost (``manage.py reconcile_benchmarks``, task
    ``workers.tasks.reconcile_benchmarks``).

    * QUEUED for longer than ``REQUEUE_AFTER_SECONDS`` (a lost message): enqueued again; a
      duplicate is harmless, the claim lets one delivery through.
    * RUNNING for longer than the task's hard time limit (its worker died, or Celery killed it):
      FAILED with ``WORKER_LOST`` and its reservation released. A benchmark is not re-run after a
      crash: its seeds make a second attempt reproduce the first, so the user re-submits.
    """
    now = timezone.now()
    requeue = requeue_after_seconds if requeue_after_seconds is not None else settings.QCOS["REQUEUE_AFTER_SECONDS"]
    lost = lost_after_seconds if lost_after_seconds is not None else settings.CELERY_TASK_TIME_LIMIT + 60
    stale = [str(pk) for pk in BenchmarkRun.objects.filter(
        status=BenchmarkStatus.QUEUED, submitted_at__lt=now - timedelta(seconds=requeue)).values_list("pk", flat=True)[:1000]]
    for benchmark_id in stale:
        _enqueue(benchmark_id)
    failed = 0
    for pk, attempt in BenchmarkRun.objects.filter(
            status=BenchmarkStatus.RUNNING, started_at__lt=now - timedelta(seconds=lost)).values_list("pk", "attempts")[:1000]:
        failed += benchmark_fail(benchmark_id=str(pk), attempt=attempt, code="WORKER_LOST",
                                 message=f"no result {lost:.0f} s after the run started; its worker was lost")
    return Reconciliation(reenqueued=len(stale), failed_lost=failed)


# --- execution (called by workers) ---------------------------------------------------------------


def benchmark_claim(*, benchmark_id: str, worker: str) -> BenchmarkRun | None:
    """QUEUED → RUNNING for this delivery; None when another delivery already has it."""
    now = timezone.now()
    with transaction.atomic():
        claimed = BenchmarkRun.objects.filter(pk=benchmark_id, status=BenchmarkStatus.QUEUED).update(
            status=BenchmarkStatus.RUNNING, attempts=F("attempts") + 1, claimed_by=worker, started_at=now,
            updated_at=now)
        if not claimed:
            return None
        run = BenchmarkRun.objects.select_related("tenant", "project").get(pk=benchmark_id)
        _audit(run, "BENCHMARK_STARTED", _worker_principal(worker, run), {"attempt": run.attempts, "worker": worker})
    return run


def benchmark_progress(*, benchmark_id: str, attempt: int, done: int) -> None:
    BenchmarkRun.objects.filter(pk=benchmark_id, status=BenchmarkStatus.RUNNING, attempts=attempt).update(
        progress=done)


def _audit_trail(run: BenchmarkRun) -> list[dict[str, Any]]:
    return [
        {**orjson.loads(payload), "seq": seq, "entry_hash": entry_hash or None}
        for payload, seq, entry_hash in AuditEntry.objects.filter(resource_type=RESOURCE_TYPE, resource_id=str(run.id))
        .order_by("id").values_list("payload", "seq", "entry_hash")
    ]


def benchmark_complete(*, benchmark_id: str, attempt: int, worker: str, core: dict[str, Any]) -> bool:
    """Seal the report, sign the evidence bundle, settle the cost; False if the attempt lost the run."""
    worker_signer, ledger_signer = signer_for("worker"), signer_for("ledger")
    core, counts = documents.split_counts(core)
    now = timezone.now()
    with transaction.atomic():
        won = BenchmarkRun.objects.filter(pk=benchmark_id, status=BenchmarkStatus.RUNNING, attempts=attempt).update(
            status=BenchmarkStatus.COMPLETED, completed_at=now, progress=len(core["workloads"]), updated_at=now)
        if not won:
            return False
        run = BenchmarkRun.objects.select_related("tenant", "project").get(pk=benchmark_id)
        # DEV MODE and local runs have no provider metering: they settle at the estimate (README).
        settled = settlements.reservation_settle(resource_type=RESOURCE_TYPE, resource_id=str(run.id),
                                            actual=run.estimated_cost_usd)
        actual = settled.cost_usd if settled is not None else run.estimated_cost_usd
        cost = {**run.estimate, "actual_usd": str(actual), "settled": "at the estimate (simulated run)"}
        bundle_id = f"bundle-bench-{secrets.token_hex(10)}"
        unsealed = documents.build_report(run, core, completed_at=now, bundle_id=bundle_id, cost=cost)
        sealed = report_crypto.seal_report(unsealed, ledger_signer, signed_at=now)
        _audit(run, "BENCHMARK_COMPLETED", _worker_principal(worker, run), {
            "attempt": attempt, "content_hash": sealed["content_hash"], "evidence_hash": sealed["evidence_hash"],
            "bundle_id": bundle_id, "actual_cost_usd": str(actual),
        })
        items = documents.bundle_items(run, sealed, counts, worker=worker, audit_trail=_audit_trail(run),
                                       provenance_id=f"prov-{now:%Y%m%d}-{secrets.token_hex(8)}")
        bundle = build_bundle(job_id=str(run.id), tenant_id=run.tenant.slug, bundle_id=bundle_id, created_at=now,
                              items=items, copy_items=False)
        bundle = sign_bundle(bundle, worker_signer, "worker", signed_at=now, check=False)
        bundle = sign_bundle(bundle, ledger_signer, "ledger", signed_at=now, check=False)
        BenchmarkRun.objects.filter(pk=run.pk).update(
            report_body=canonical_json(sealed).decode(), content_hash=sealed["content_hash"],
            evidence_hash=sealed["evidence_hash"], signature=sealed["signature"], actual_cost_usd=actual,
            bundle_id=bundle_id)
        # Entered in the transparency registry like a job's bundle: served with its inclusion
        # proof once a checkpoint covers it (bench.selectors.bundle_of).
        bundle_register(bundle, benchmark=run, created_at=now)
        if settings.QCOS["SEQUENCE_INLINE"]:
            transaction.on_commit(sequence_now)
    return True


def benchmark_fail(*, benchmark_id: str, attempt: int, code: str, message: str) -> bool:
    """RUNNING → FAILED for the attempt that holds the run; the reservation is released."""
    now = timezone.now()
    with transaction.atomic():
        failed = BenchmarkRun.objects.filter(pk=benchmark_id, status=BenchmarkStatus.RUNNING, attempts=attempt).update(
            status=BenchmarkStatus.FAILED, completed_at=now, error_code=code, error_message=message[:2000],
            actual_cost_usd=0, updated_at=now)
        if not failed:
            return False
        run = BenchmarkRun.objects.select_related("tenant").get(pk=benchmark_id)
        settlements.reservation_release(resource_type=RESOURCE_TYPE, resource_id=str(run.id), reason=code)
        _audit(run, "BENCHMARK_FAILED", _worker_principal(run.claimed_by, run),
               {"attempt": attempt, "error_code": code, "error_message": message[:500]}, Outcome.FAILURE)
    return True
