"""Writes for the job lifecycle. Every state change is a conditional UPDATE that must match
exactly one row, so duplicate deliveries, stale workers and concurrent requests cannot both win.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from finops import estimates, reservations, settlements, windows
from ledger.audit import Hole, Outcome, audit_append, audit_payload, system_principal, user_principal
from ledger.evidence import evidence_record, trail_entry
from ledger.evidence import trail_send as evidence_trail_send
from ledger.registry import sequence_now
from qcos import rowload
from qcos.errors import (
    BudgetExceeded,
    CircuitTooLarge,
    IdempotencyConflict,
    InvalidCircuit,
    InvalidShots,
    JobNotCancellable,
    PricingFailed,
    QCOSError,
    UnknownBackend,
)
from qcos.tenancy.principal import Principal
from qcos.tenancy.selectors import project_send, project_slug_for
from qcos.tenancy.roles import Capability
from workers.providers.base import BackendSpec, ExecutionOutcome
from workers.providers.registry import BACKENDS, get_backend

from . import circuits
from .models import IdempotencyRecord, JobResult, QuantumJob
from .states import JobStatus, Priority

logger = logging.getLogger(__name__)

CLIFFORD_GATES = frozenset(
    {"id", "x", "y", "z", "h", "s", "sdg", "sx", "sxdg", "cx", "cy", "cz", "swap", "measure", "barrier", "reset"}
)


def _config() -> dict[str, Any]:
    return settings.QCOS


# --- submission ----------------------------------------------------------------------------------


def shots_check(shots: int) -> None:
    """``INVALID_SHOTS`` unless 1 ≤ shots ≤ ``QCOS["MAX_SHOTS"]`` (a submit's and an estimate's rule)."""
    maximum = _config()["MAX_SHOTS"]
    if not 1 <= shots <= maximum:
        raise InvalidShots(f"shots must be between 1 and {maximum}", details={"shots": shots, "max": maximum})


@dataclass(frozen=True)
class ValidatedCircuit:
    text: str
    hash: str
    summary: circuits.CircuitSummary
    circuit: Any = None  # the parsed QuantumCircuit (priced by finops)


def circuit_limits() -> circuits.Limits:
    """The parser's limits with this deployment's byte and operation limits (docs/circuits.md)."""
    limits = _config()
    return circuits.Limits(max_bytes=limits["MAX_CIRCUIT_BYTES"], max_operations=limits["MAX_CIRCUIT_OPERATIONS"])


def circuit_parse(text: str) -> tuple[Any, circuits.Scan]:
    """Pre-scan and parse a circuit: a submit's and an estimate's rule. Every limit of the parser
    is checked before it runs; a loop whose length is unknown cannot be priced (``PRICING_ERROR``)."""
    limits = _config()
    size = len(text.encode("utf-8"))
    if not text.strip():
        raise InvalidCircuit("the circuit is empty", details={"line": 1, "column": 1})
    if size > limits["MAX_CIRCUIT_BYTES"]:
        raise CircuitTooLarge(
            f"the circuit text is {size} bytes; the limit is {limits['MAX_CIRCUIT_BYTES']}",
            details={"bytes": size, "limit": limits["MAX_CIRCUIT_BYTES"]},
        )
    try:
        return circuits.parse_scanned(text, circuit_limits())
    except circuits.CircuitError as exc:
        where = {"line": exc.line, "column": exc.column}
        if isinstance(exc, circuits.CircuitLimitExceeded):
            raise CircuitTooLarge(str(exc), details={**where, "limit_name": exc.limit, "limit": exc.maximum}) from None
        if isinstance(exc, circuits.UnboundedCircuit):
            raise PricingFailed(str(exc), details=where) from None
        raise InvalidCircuit(str(exc), details=where) from None


def circuit_validate(*, text: str, backend: BackendSpec) -> ValidatedCircuit:
    """Parse and check a circuit against the documented limits and the backend's capacity."""
    limits = _config()
    parsed, _scan = circuit_parse(text)
    summary = circuits.summarize(parsed, circuits.qasm_version(text))
    if summary.size > limits["MAX_CIRCUIT_OPERATIONS"]:  # the pre-scan's bound, checked on the circuit
        raise CircuitTooLarge(
            f"the circuit has {summary.size} operations; the limit is {limits['MAX_CIRCUIT_OPERATIONS']}",
            details={"operations": summary.size, "limit": limits["MAX_CIRCUIT_OPERATIONS"]},
        )
    clifford = set(summary.ops) <= CLIFFORD_GATES
    qubit_limit = backend.max_qubits_clifford if clifford else backend.max_qubits
    if summary.num_qubits > qubit_limit:
        kind = "Clifford circuits" if clifford else "non-Clifford circuits"
        raise CircuitTooLarge(
            f"{backend.name} accepts at most {qubit_limit} qubits for {kind}; "
            f"the circuit has {summary.num_qubits}",
            details={"qubits": summary.num_qubits, "limit": qubit_limit, "backend": backend.name},
        )
    if summary.ops.get("measure", 0) == 0:
        raise InvalidCircuit("the circuit measures nothing, so it would return no counts")
    return ValidatedCircuit(text=text, hash=circuits.circuit_hash(text), summary=summary, circuit=parsed)


def request_fingerprint(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


_JOB_COLUMNS = tuple(f.attname for f in QuantumJob._meta.concrete_fields)


@dataclass(frozen=True)
class Submission:
    job: QuantumJob
    response_status: int
    response_body: dict[str, Any]
    replayed: bool


def job_submit(
    *,
    principal: Principal,
    circuit: str,
    backend: str,
    shots: int,
    priority: str = Priority.STANDARD,
    tenant_slug: str | None = None,
    project_slug: str | None = None,
    tags: dict[str, str] | None = None,
    ledger_enabled: bool = True,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
    render: Callable[[QuantumJob], dict[str, Any]],
) -> Submission:
    """Validate, persist and enqueue a job. Nothing is written unless everything is valid.

    ``render`` turns the new job into the response body; with an ``idempotency_key`` that body is
    stored with the job, in the same transaction, and replayed for a repeat of the same request.
    """
    principal.require(Capability.SUBMIT_JOB)
    replay = _idempotent_replay(principal, idempotency_key, fingerprint)
    if replay is not None:
        return replay
    spec = get_backend(backend)
    if spec is None:
        raise UnknownBackend(
            f"unknown backend {backend!r}", details={"backend": backend, "available": sorted(BACKENDS)}
        )
    shots_check(shots)
    slug = project_slug_for(principal=principal, tenant_slug=tenant_slug, project_slug=project_slug)
    # The project and its policies are read in one round trip, and the circuit is parsed while
    # PostgreSQL answers (rowload.pipeline); an unknown project is still reported first.
    with rowload.pipeline(connection):
        read_project = project_send(principal=principal, slug=slug)
        read_policies = windows.policies_send(tenant=principal.tenant, project_slug=slug)
        try:
            validated = circuit_validate(text=circuit, backend=spec)
        except QCOSError:
            read_project()
            raise
    project, policies = read_project(), read_policies()
    summary = validated.summary
    priced = estimates.price_estimate(circuit=validated.circuit, backend=spec.name, shots=shots, tier=priority,
                                   tier_multipliers=estimates.cost_tiers_for(policies))
    try:
        # Pipelined (rowload.pipeline): the job and audit INSERTs travel with the reservation's
        # first statement instead of waiting for the server one by one.
        with transaction.atomic(), rowload.pipeline(connection):
            job = QuantumJob(
                tenant=principal.tenant,
                project=project,
                submitted_by=principal.user,
                api_key=principal.api_key,
                backend=spec.name,
                provider=spec.provider,
                shots=shots,
                priority=priority,
                tags=tags or {},
                ledger_enabled=ledger_enabled,
                circuit=validated.text,
                circuit_hash=validated.hash,
                qasm_version=summary.qasm_version,
                num_qubits=summary.num_qubits,
                num_clbits=summary.num_clbits,
                depth=summary.depth,
                gate_counts=summary.ops,
                status=JobStatus.QUEUED,
                enqueued_at=timezone.now(),
                estimated_cost_usd=priced.cost_usd,
                price_sheet=f"{priced.price_sheet_id}@{priced.price_sheet_version}",
            )
            # Every column, as create() would write them, through an INSERT prepared once per process.
            rowload.insert_row(connection, job, _JOB_COLUMNS)
            actor = user_principal(principal.user, principal.tenant.slug, principal.roles)
            audit_append(
                action="JOB_SUBMITTED",
                principal=actor,
                resource_type="quantum_job",
                resource_id=job.id,
                details={"backend": spec.name, "shots": shots, "circuit_hash": validated.hash,
                         "project": project.slug, "priority": priority, "tags": tags or {},
                         "estimated_cost_usd": str(priced.cost_usd), "price_sheet": job.price_sheet},
            )
            # Reserve last: the budget rows stay locked for as short a time as possible.
            admission = reservations.budget_admit(
                tenant=principal.tenant, project=project, estimate=priced, resource_type="quantum_job",
                resource_id=job.id, backend=spec.name, shots=shots, tags=tags, policies=policies,
            )
            if admission.held_for_approval:
                QuantumJob.objects.filter(pk=job.pk).update(status=JobStatus.PENDING_APPROVAL, enqueued_at=None)
                job.status, job.enqueued_at = JobStatus.PENDING_APPROVAL, None
                audit_append(action="JOB_APPROVAL_REQUIRED", principal=actor, resource_type="quantum_job",
                             resource_id=job.id, details={"reason": admission.hold_reason,
                                                          "messages": admission.messages})
            body = None
            if idempotency_key:
                body = render(job)
                IdempotencyRecord.objects.create(
                    tenant=principal.tenant,
                    user=principal.user,
                    key=idempotency_key,
                    fingerprint=fingerprint or "",
                    job=job,
                    response_status=202,
                    response_body=body,
                )
            if job.status == JobStatus.QUEUED:
                transaction.on_commit(lambda: _enqueue(job.id, spec.queue))
            # The COMMIT travels with the INSERTs: the worker is woken one round trip sooner.
            rowload.commit_with_pipeline(connection)
    except BudgetExceeded as refused:
        # Nothing of the job survives the rollback; the refusal itself is audited.
        audit_append(
            action="BUDGET_EXCEEDED",
            principal=user_principal(principal.user, principal.tenant.slug, principal.roles),
            resource_type="quantum_job", resource_id="", outcome=Outcome.DENIED,
            details={"backend": spec.name, "shots": shots, "circuit_hash": validated.hash, "project": project.slug,
                     "estimated_cost_usd": str(priced.cost_usd), "reason": refused.message, **refused.details},
        )
        raise
    except IntegrityError:
        # Two requests raced with the same Idempotency-Key: the other one committed first.
        replay = _idempotent_replay(principal, idempotency_key, fingerprint)
        if replay is None:
            raise
        return replay
    # Without a stored replay, the body is rendered after the commit: the worker is woken sooner.
    return Submission(job=job, response_status=202, response_body=body if body is not None else render(job),
                      replayed=False)


def _idempotent_replay(principal: Principal, key: str | None, fingerprint: str | None) -> Submission | None:
    if not key:
        return None
    record = (
        IdempotencyRecord.objects.select_related("job")
        .filter(tenant=principal.tenant, user=principal.user, key=key)
        .first()
    )
    if record is None:
        return None
    if record.fingerprint != (fingerprint or ""):
        raise IdempotencyConflict(
            "this Idempotency-Key was used with a different request body",
            details={"idempotency_key": key, "job_id": record.job_id},
        )
    return Submission(
        job=record.job, response_status=record.response_status, response_body=record.response_body, replayed=True
    )


def _enqueue(job_id: str, queue: str) -> None:
    """Wake a worker. Failure is logged, not raised: the job is committed and the reconciler
    enqueues QUEUED jobs again once the broker is back (REFERENCE.md §4). On Redis the message
    is pushed without Celery's producer, which costs more than the rest of the publish
    (workers.dispatch)."""
    from workers.dispatch import send_run_job

    try:
        send_run_job(job_id, queue)
    except Exception:
        logger.warning("could not enqueue %s; the reconciler will retry", job_id, exc_info=True)


def job_enqueue(*, job: QuantumJob) -> None:
    spec = get_backend(job.backend)
    _enqueue(job.id, spec.queue if spec else "jobs.local")


# --- cancellation --------------------------------------------------------------------------------


def job_cancel(*, principal: Principal, job: QuantumJob) -> QuantumJob:
    """Cancel a job that has not started. The submitter or a tenant admin may cancel."""
    if job.submitted_by_id != principal.user.pk:
        principal.require(Capability.CANCEL_ANY_JOB)
    with transaction.atomic():
        changed = QuantumJob.objects.filter(
            pk=job.pk, status__in=[JobStatus.PENDING_APPROVAL, JobStatus.QUEUED]
        ).update(status=JobStatus.CANCELLED, completed_at=timezone.now(), lease_expires_at=None)
        if changed:
            _audit_job(job, "JOB_CANCELLED", user_principal(principal.user, principal.tenant.slug, principal.roles))
            settlements.charge_release(resource_type="quantum_job", resource_id=job.pk)
    job.refresh_from_db()
    if not changed:
        raise JobNotCancellable(
            f"job {job.id} is {job.status}; only PENDING_APPROVAL or QUEUED jobs can be cancelled",
            details={"job_id": job.id, "status": job.status},
        )
    return job


# --- execution (called by workers) ---------------------------------------------------------------


@dataclass(frozen=True)
class CompletionReads:
    """What completing a job reads before it writes: the job's audit trail (ending with its
    ``JOB_STARTED`` entry) and the row of its HELD charge (``finops.settlements.settlement_send``), or None."""

    trail: list[dict[str, Any]]
    held: tuple | None


def job_claim(*, job_id: str, worker: str, prefetch: bool = False) -> QuantumJob | None:
    """Take a QUEUED job for execution, with its ``JOB_STARTED`` audit entry. None when another
    delivery or worker already has it, it is no longer QUEUED, or it has used up its attempts
    (the reconciler then fails it).

    ``prefetch`` (PostgreSQL): the claim's round trip also reads what the completion will need
    (``CompletionReads``, put on the job as ``completion_reads``), so that completing is the
    writes and the COMMIT. The three statements run in the pipeline's one implicit transaction,
    so the trail read sees the ``JOB_STARTED`` entry the claim wrote.
    """
    from . import fast_transitions

    now = timezone.now()
    lease_until = now + timedelta(seconds=_config()["JOB_LEASE_SECONDS"])
    max_attempts = _config()["JOB_MAX_ATTEMPTS"]
    # PostgreSQL: one statement claims, audits and returns the job with its tenant and project.
    entry = audit_payload(
        action="JOB_STARTED", principal=_worker_principal(worker, Hole("tenant")),
        resource_type="quantum_job", resource_id=job_id, details={"attempt": Hole("attempt"), "worker": worker},
        outcome=Outcome.SUCCESS, tenant=Hole("tenant"), now=now,
    )
    with rowload.pipeline(connection) if prefetch else nullcontext():
        claimed = fast_transitions.claim_send(job_id=job_id, worker=worker, now=now, lease_until=lease_until,
                                              max_attempts=max_attempts, entry=entry)
        if claimed is not NotImplemented and prefetch:
            trail = evidence_trail_send(job_id=job_id)
            held = settlements.settlement_send(resource_type="quantum_job", resource_id=job_id, lock=False)
    if claimed is not NotImplemented:
        job = claimed()
        if job is not None and prefetch:
            job.completion_reads = CompletionReads(trail=trail(), held=held.fetchone())
        return job
    with transaction.atomic():
        claimed = QuantumJob.objects.filter(pk=job_id, status=JobStatus.QUEUED, attempts__lt=max_attempts).update(
            status=JobStatus.RUNNING,
            attempts=F("attempts") + 1,
            claimed_by=worker,
            lease_expires_at=lease_until,
            started_at=now,
            updated_at=now,
        )
        if not claimed:
            return None
        job = QuantumJob.objects.select_related("tenant", "project").get(pk=job_id)
        _audit_job(job, "JOB_STARTED", _worker_principal(worker, job.tenant.slug),
                   {"attempt": job.attempts, "worker": worker})
    return job


def job_heartbeat(*, job_id: str, attempt: int) -> bool:
    """Extend the lease of the attempt a worker holds; False when it has lost the job."""
    lease = timedelta(seconds=_config()["JOB_LEASE_SECONDS"])
    return bool(
        QuantumJob.objects.filter(pk=job_id, status=JobStatus.RUNNING, attempts=attempt).update(
            lease_expires_at=timezone.now() + lease
        )
    )


def job_hand_back(*, job_id: str, attempt: int) -> bool:
    """End the lease of an attempt whose worker gave up recording its outcome, so that the
    reconciler takes the job at its next pass instead of after the lease; False when the attempt
    no longer holds the job."""
    return bool(
        QuantumJob.objects.filter(pk=job_id, status=JobStatus.RUNNING, attempts=attempt).update(
            lease_expires_at=timezone.now()
        )
    )


def job_recorded(*, job_id: str, attempt: int) -> str | None:
    """``COMPLETED`` or ``FAILED`` when ``attempt`` ended the job that way, else None: tells a
    worker whose recording was retried whether its first try had committed after all."""
    if JobResult.objects.filter(job_id=job_id, attempt=attempt).exists():
        return JobStatus.COMPLETED
    if QuantumJob.objects.filter(pk=job_id, status=JobStatus.FAILED, attempts=attempt).exists():
        return JobStatus.FAILED
    return None


class _Abandon(Exception):
    """Roll the completing transaction back: the attempt lost its job, or its reads went stale."""

    def __init__(self, lost: bool) -> None:
        self.lost = lost


def job_complete(*, job_id: str, attempt: int, worker: str, outcome: ExecutionOutcome,
                 claimed: QuantumJob | None = None) -> bool:
    """Store the result of ``attempt``; False (and nothing written) if that attempt lost the job.

    Nothing is read while the transaction writes. The conditional UPDATE that fences out a lost
    attempt (it carries the settled cost too), the ``JOB_COMPLETED`` entry, the result, the signed
    evidence (whose audit trail needs the entries before it), the settlement (which needs the
    HELD charge) and the COMMIT are sent one after another and travel in one round trip on
    PostgreSQL (``rowload.pipeline``, ``rowload.commit_with_pipeline``); the fence is checked by
    the server (``fast_transitions.LOST_ATTEMPT``), whose error rolls everything back. What must
    be read first comes from the claim (``job_claim(prefetch=True)``: ``claimed.completion_reads``);
    without it, it is read here in the transaction, the job and the charge locked.

    The reads of a claim are not locked, yet stay true: everything that changes a RUNNING job's
    charge changes the job first, which the fenced UPDATE would see. Should the charge have
    left HELD all the same (``finops.settlements.STALE_CHARGE``), nothing is kept and the completion runs
    again from locked reads.
    """
    reads = getattr(claimed, "completion_reads", None)
    if reads is None or claimed.pk != job_id or claimed.attempts != attempt:
        return _complete(job_id=job_id, attempt=attempt, worker=worker, outcome=outcome, job=None, reads=None)
    try:
        return _complete(job_id=job_id, attempt=attempt, worker=worker, outcome=outcome, job=claimed, reads=reads)
    except _Abandon:
        logger.warning("job %s: its charge changed since the claim; completing from locked reads", job_id)
        return _complete(job_id=job_id, attempt=attempt, worker=worker, outcome=outcome, job=None, reads=None)


def _complete(*, job_id: str, attempt: int, worker: str, outcome: ExecutionOutcome, job: QuantumJob | None,
              reads: CompletionReads | None) -> bool:
    from . import fast_transitions

    now = timezone.now()
    try:
        with transaction.atomic():
            if job is None:
                job = (QuantumJob.objects.select_for_update(of=("self",)).select_related("tenant", "project")
                       .filter(pk=job_id, status=JobStatus.RUNNING, attempts=attempt).first())
                if job is None:
                    return False
                reads = CompletionReads(trail=evidence_trail_send(job_id=job_id)(),
                                        held=settlements.settlement_send(resource_type="quantum_job",
                                                                    resource_id=job_id).fetchone())
            metered = {k: outcome.metadata[k] for k in ("usage_seconds", "duration_ms", "execution_ms", "hqc")
                       if k in (outcome.metadata or {})}
            settlement = settlements.settlement_price(reads.held, metered)
            if settlement is not None:
                job.cost_usd, job.cost_breakdown = settlement.cost.cost_usd, settlement.cost.breakdown
            job.status, job.completed_at, job.lease_expires_at, job.updated_at = JobStatus.COMPLETED, now, None, now
            with rowload.pipeline(connection):
                # PostgreSQL: fenced on the server (fast_transitions.LOST_ATTEMPT), so that the
                # writes and the COMMIT can follow it before its result is known.
                fenced = fast_transitions.complete_send(
                    job_id=job_id, attempt=attempt, now=now, cost_usd=job.cost_usd,
                    cost_breakdown=json.dumps(job.cost_breakdown)) is not NotImplemented
                if not fenced and not QuantumJob.objects.filter(
                        pk=job_id, status=JobStatus.RUNNING, attempts=attempt).update(
                        status=JobStatus.COMPLETED, completed_at=now, lease_expires_at=None, updated_at=now,
                        cost_usd=job.cost_usd, cost_breakdown=job.cost_breakdown):
                    raise _Abandon(lost=True)
                entry = _audit_job(job, "JOB_COMPLETED", _worker_principal(worker, job.tenant.slug), {
                    # Whole microseconds: no floats in audit payloads or bundles (see ledger.crypto.canonical).
                    "attempt": attempt, "execution_us": round(outcome.execution_ms * 1000),
                    "backend_version": outcome.backend_version,
                })
                result = JobResult(
                    job=job,
                    attempt=attempt,
                    counts=outcome.counts,
                    execution_ms=outcome.execution_ms,
                    execution_ms_source=outcome.execution_ms_source,
                    backend_version=outcome.backend_version,
                    worker=worker,
                    metadata=outcome.metadata,
                )
                # A plain INSERT prepared once per process (the one-to-one key still refuses a second result).
                rowload.insert_row(connection, result, ("job_id", "attempt", "counts", "execution_ms",
                                                        "execution_ms_source", "backend_version", "worker",
                                                        "metadata", "created_at"))
                # The trail ends with the entry just written, as the database will hold it.
                evidence_record(job=job, result=result, calibration=outcome.calibration,
                                trail=[*reads.trail, trail_entry(entry)])
                if settlement is not None and not settlements.settlement_write(settlement, fenced=fenced)():
                    raise _Abandon(lost=False)
                if _config()["SEQUENCE_INLINE"]:
                    transaction.on_commit(sequence_now)
                rowload.commit_with_pipeline(connection)
    except _Abandon as abandoned:
        if not abandoned.lost:
            raise
        return False
    except DatabaseError as exc:
        code = getattr(exc.__cause__, "sqlstate", None)
        if code == fast_transitions.LOST_ATTEMPT:
            return False
        if code == settlements.STALE_CHARGE:
            raise _Abandon(lost=False) from exc
        if isinstance(exc, IntegrityError) and not QuantumJob.objects.filter(
                pk=job_id, status=JobStatus.RUNNING, attempts=attempt).exists():
            return False  # another attempt's result is there (off PostgreSQL, where nothing fences first)
        raise
    return True


def job_fail(*, job_id: str, attempt: int, code: str, message: str, transient: bool) -> str | None:
    """Record a failed attempt: back to QUEUED if it may succeed later and attempts remain, else
    FAILED. Returns the new status, or None when the attempt had already lost the job."""
    now = timezone.now()
    running = QuantumJob.objects.filter(pk=job_id, status=JobStatus.RUNNING, attempts=attempt)
    details = {"attempt": attempt, "error_code": code, "error_message": message, "transient": transient}
    with transaction.atomic():
        if transient:
            requeued = running.filter(attempts__lt=_config()["JOB_MAX_ATTEMPTS"]).update(
                status=JobStatus.QUEUED, lease_expires_at=None, enqueued_at=now, error_code=code,
                error_message=message, updated_at=now,
            )
            if requeued:
                job = QuantumJob.objects.select_related("tenant").get(pk=job_id)
                _audit_job(job, "JOB_REQUEUED", _worker_principal(job.claimed_by, job.tenant.slug), details, Outcome.FAILURE)
                transaction.on_commit(lambda: job_enqueue(job=job))
                return JobStatus.QUEUED
        failed = running.update(
            status=JobStatus.FAILED, completed_at=now, lease_expires_at=None, error_code=code,
            error_message=message, updated_at=now,
        )
        if not failed:
            return None
        job = QuantumJob.objects.select_related("tenant").get(pk=job_id)
        _audit_job(job, "JOB_FAILED", _worker_principal(job.claimed_by, job.tenant.slug), details, Outcome.FAILURE)
        settlements.charge_release(resource_type="quantum_job", resource_id=job_id)
    return JobStatus.FAILED


# --- reconciliation (periodic) -------------------------------------------------------------------


@dataclass(frozen=True)
class Reconciliation:
    requeued_expired: int
    reenqueued_stale: int
    failed_exhausted: int


def _audit_job(job: QuantumJob, action: str, principal: dict[str, Any], details: dict[str, Any] | None = None,
               outcome: str = Outcome.SUCCESS) -> dict[str, Any]:
    return audit_append(action=action, principal=principal, resource_type="quantum_job", resource_id=job.id,
                 details=details, outcome=outcome, tenant_slug=job.tenant.slug)


def _worker_principal(worker: str, tenant_slug: str) -> dict[str, Any]:
    return {**system_principal("worker", tenant_slug), "worker": worker}


def jobs_reconcile() -> Reconciliation:
    """Recover jobs the broker or a worker lost.

    * RUNNING past its lease (the worker died): back to QUEUED and enqueued, or FAILED when its
      attempts are used up.
    * QUEUED and not picked up for ``REQUEUE_AFTER_SECONDS`` (the message was lost: a crash between
      commit and publish, or the broker was down): enqueued again. Duplicates are harmless, the
      claim lets one through.
    """
    config = _config()
    now = timezone.now()
    max_attempts = config["JOB_MAX_ATTEMPTS"]
    reconciler = system_principal("reconciler")
    failed = requeued = 0
    requeue_ids: list[str] = []
    expired = QuantumJob.objects.filter(status=JobStatus.RUNNING, lease_expires_at__lt=now)
    for job in expired.select_related("tenant")[:1000]:
        # Row by row: each change is conditional (the worker may finish meanwhile) and audited.
        with transaction.atomic():
            still_expired = QuantumJob.objects.filter(
                pk=job.pk, status=JobStatus.RUNNING, attempts=job.attempts, lease_expires_at__lt=now
            )
            details = {"attempt": job.attempts, "worker": job.claimed_by, "reason": "lease expired"}
            if job.attempts >= max_attempts:
                message = f"the worker running this job was lost {max_attempts} times (lease expired)"
                if still_expired.update(
                    status=JobStatus.FAILED, completed_at=now, lease_expires_at=None,
                    error_code="ATTEMPTS_EXHAUSTED", error_message=message, updated_at=now,
                ):
                    failed += 1
                    settlements.charge_release(resource_type="quantum_job", resource_id=job.pk)
                    _audit_job(job, "JOB_FAILED", {**reconciler, "tenant_id": job.tenant.slug},
                               {**details, "error_code": "ATTEMPTS_EXHAUSTED"}, Outcome.FAILURE)
            elif still_expired.update(
                status=JobStatus.QUEUED, lease_expires_at=None, enqueued_at=now, updated_at=now
            ):
                requeued += 1
                requeue_ids.append(job.pk)
                _audit_job(job, "JOB_REQUEUED", {**reconciler, "tenant_id": job.tenant.slug}, details, Outcome.FAILURE)
    stale_before = now - timedelta(seconds=config["REQUEUE_AFTER_SECONDS"])
    stale = QuantumJob.objects.filter(
        Q(enqueued_at__lt=stale_before) | Q(enqueued_at__isnull=True), status=JobStatus.QUEUED
    )
    stale_ids = list(stale.values_list("pk", flat=True)[:1000])
    QuantumJob.objects.filter(pk__in=stale_ids).update(enqueued_at=now)
    for job in QuantumJob.objects.filter(pk__in=set(requeue_ids) | set(stale_ids), status=JobStatus.QUEUED):
        job_enqueue(job=job)
    if failed or requeued or stale_ids:
        logger.info("reconciled jobs: %d requeued, %d re-enqueued, %d failed", requeued, len(stale_ids), failed)
    return Reconciliation(requeued_expired=requeued, reenqueued_stale=len(stale_ids), failed_exhausted=failed)
