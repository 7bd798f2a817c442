"""Approval decisions on jobs waiting in PENDING_APPROVAL: the one service every path calls (the
API, the admin queue's actions, the admin decision form), so four-eyes and atomicity hold on all.

* Four-eyes: nobody decides on their own job. Checked here for a clear error, and backed by the
  CHECK constraint ``approval_four_eyes`` on ``finops.ApprovalDecision``.
* Atomic: the decision is a conditional UPDATE from PENDING_APPROVAL; of two concurrent decisions
  the second finds the job no longer pending (PostgreSQL re-checks the row after the first
  commits) and gets ``APPROVAL_CONFLICT`` (409). The one-to-one decision row backs it.
* Approving re-checks the budget (``finops.reservations.charge_reserve_on_approval``): if a window of
  a ``block`` policy can no longer take the job, the approval fails with ``BUDGET_EXCEEDED`` and
  nothing changes (the job still waits; the refusal is audited).
* Who may decide: a tenant member whose role has ``approve_job`` (approver, admin) or a Django
  superuser (the platform operator); if the covering policies list ``approvers``, only those
  e-mail addresses (superusers excepted).
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from finops import reservations, settlements, windows
from finops.models import ApprovalDecision, Decision
from ledger.audit import Outcome, audit_append, user_principal
from qcos.errors import (
    ApprovalConflict,
    BudgetExceeded,
    NotAnApprover,
    SelfApprovalForbidden,
    ValidationFailed,
)
from qcos.tenancy.models import Membership
from qcos.tenancy.roles import Capability, capabilities_of

from .models import QuantumJob
from .states import JobStatus


def _approver_roles(user, job: QuantumJob) -> frozenset[str]:
    roles = frozenset(Membership.objects.filter(user=user, tenant_id=job.tenant_id).values_list("role", flat=True))
    if Capability.APPROVE_JOB in capabilities_of(roles):
        return roles
    if user.is_superuser:
        return frozenset({"superuser"})
    raise NotAnApprover(
        f"{user.email or user.get_username()} may not decide on jobs of this tenant",
        details={"job_id": job.pk, "required": Capability.APPROVE_JOB},
    )


def _listed_approvers(job: QuantumJob) -> set[str]:
    listed: set[str] = set()
    for policy in windows.policies_for(tenant=job.tenant_id, project=job.project_id):
        listed |= {email.lower() for email in policy.approvers}
    return listed


def job_decide(*, user, job: QuantumJob, decision: str, reason: str = "", channel: str = "api") -> QuantumJob:
    """Approve or reject a job waiting for approval. Raises NotAnApprover,
    SelfApprovalForbidden, ApprovalConflict, BudgetExceeded or ValidationFailed."""
    if decision not in Decision.values:
        raise ValidationFailed(f"decision must be one of {', '.join(Decision.values)}", details={"decision": decision})
    reason = (reason or "").strip()
    if decision == Decision.REJECT and not reason:
        raise ValidationFailed("a rejection needs a reason", details={"reason": "required"})
    roles = _approver_roles(user, job)
    if job.submitted_by_id == user.pk:
        raise SelfApprovalForbidden(
            "four-eyes: you submitted this job, so someone else must decide on it", details={"job_id": job.pk}
        )
    listed = _listed_approvers(job)
    if listed and not user.is_superuser and (user.email or "").lower() not in listed:
        raise NotAnApprover(
            "the budget policy names the approvers of this job, and you are not one of them",
            details={"job_id": job.pk, "approvers": sorted(listed)},
        )
    actor = {**user_principal(user, job.tenant.slug, roles), "channel": channel}
    now = timezone.now()
    approve = decision == Decision.APPROVE
    try:
        with transaction.atomic():
            moved = QuantumJob.objects.filter(pk=job.pk, status=JobStatus.PENDING_APPROVAL).update(
                status=JobStatus.QUEUED if approve else JobStatus.REJECTED,
                enqueued_at=now if approve else None,
                completed_at=None if approve else now,
                updated_at=now,
            )
            if not moved:
                current = QuantumJob.objects.filter(pk=job.pk).values_list("status", flat=True).first()
                raise ApprovalConflict(
                    f"job {job.pk} is {current}, not waiting for approval: another decision came first",
                    details={"job_id": job.pk, "status": current},
                )
            try:
                with transaction.atomic():
                    ApprovalDecision.objects.create(
                        job_id=job.pk, submitted_by_id=job.submitted_by_id, decided_by=user,
                        decision=decision, reason=reason,
                    )
            except IntegrityError as exc:
                if "four_eyes" in str(exc):
                    raise SelfApprovalForbidden("four-eyes: the submitter cannot decide", details={"job_id": job.pk}) from None
                raise ApprovalConflict(f"job {job.pk} already has a decision", details={"job_id": job.pk}) from None
            details = {"decision": decision, "reason": reason, "submitted_by": job.submitted_by_id}
            if approve:
                charge = reservations.charge_reserve_on_approval(resource_type="quantum_job", resource_id=job.pk)
                audit_append(action="JOB_APPROVED", principal=actor, resource_type="quantum_job", resource_id=job.pk,
                             tenant_slug=job.tenant.slug, details=details)
                if charge.over_limit:
                    audit_append(action="BUDGET_OVERRIDE", principal=actor, resource_type="quantum_job",
                                 resource_id=job.pk, tenant_slug=job.tenant.slug,
                                 details={"reason": reason, "estimated_cost_usd": str(job.estimated_cost_usd)})
                from .services import job_enqueue

                transaction.on_commit(lambda: job_enqueue(job=job))
            else:
                settlements.charge_release(resource_type="quantum_job", resource_id=job.pk)
                audit_append(action="JOB_REJECTED", principal=actor, resource_type="quantum_job", resource_id=job.pk,
                             tenant_slug=job.tenant.slug, details=details)
    except BudgetExceeded as refused:
        audit_append(action="BUDGET_EXCEEDED", principal=actor, resource_type="quantum_job", resource_id=job.pk,
                     tenant_slug=job.tenant.slug, outcome=Outcome.DENIED,
                     details={"stage": "approval", "reason": refused.message, **refused.details})
        raise
    job.refresh_from_db()
    return job


def pending_for(*, tenant_id: int):
    return (
        QuantumJob.objects.filter(tenant_id=tenant_id, status=JobStatus.PENDING_APPROVAL)
        .select_related("project", "submitted_by")
        .order_by("submitted_at")
    )

