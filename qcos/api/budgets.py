"""Budget checks, budget status and approval decisions (v2.1).

* ``POST /budget/check``: the seed's ``client.check_budget(tenant_id=..., estimated_cost=...)``.
* ``GET /budgets``: the caller's tenant's policies with their current day and month windows.
* ``GET /approvals``: jobs waiting for a decision (approvers and admins).
* ``POST /jobs/{id}/approve`` and ``/reject``: a decision with a reason (``qcos.jobs.approvals``).
"""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from finops import services as finops
from finops.models import BudgetWindow, usd
from qcos.jobs import approvals, selectors
from qcos.tenancy.roles import Capability
from qcos.tenancy.selectors import project_resolve

from .serializers import job_representation


class BudgetCheckInput(serializers.Serializer):
    tenant_id = serializers.CharField(required=False, max_length=63)
    project = serializers.CharField(required=False, max_length=63)
    estimated_cost = serializers.DecimalField(max_digits=18, decimal_places=6, min_value=Decimal(0))


class BudgetCheckOutput(serializers.Serializer):
    can_proceed = serializers.BooleanField()
    message = serializers.CharField()
    remaining_usd = serializers.DecimalField(max_digits=18, decimal_places=6, allow_null=True)
    requires_approval = serializers.BooleanField()
    windows = serializers.ListField(child=serializers.DictField())


class BudgetCheckView(APIView):
    @extend_schema(summary="Would a job of this estimated cost be admitted now?", request=BudgetCheckInput,
                   responses={200: BudgetCheckOutput})
    def post(self, request: Request) -> Response:
        request.auth.require(Capability.VIEW_JOBS)
        data = BudgetCheckInput(data=request.data)
        data.is_valid(raise_exception=True)
        params = data.validated_data
        project = project_resolve(principal=request.auth, tenant_slug=params.get("tenant_id"),
                                  project_slug=params.get("project"), default=None)
        check = finops.budget_check(tenant=request.auth.tenant, project=project,
                                    estimated_cost=params["estimated_cost"])
        return Response(check.as_dict())


class BudgetStatusView(APIView):
    @extend_schema(summary="The tenant's budget policies and their current windows", responses={200: dict})
    def get(self, request: Request) -> Response:
        principal = request.auth
        principal.require(Capability.VIEW_JOBS)
        policies = list(principal.tenant.budget_policies.select_related("project").order_by("id"))
        periods = finops.window_periods(finops.now_utc())
        windows = {
            (w.policy_id, w.kind): w
            for w in BudgetWindow.objects.filter(policy__in=policies, period_start__in=list(periods.values()))
            if w.period_start == periods[w.kind]
        }
        body = []
        for policy in policies:
            current = []
            for kind, limit in (("month", policy.monthly_limit_usd), ("day", policy.daily_limit_usd)):
                if limit is None:
                    continue
                w = windows.get((policy.pk, kind))
                spent, reserved = (w.spent_micros, w.reserved_micros) if w else (0, 0)
                current.append({"window": kind, "period_start": periods[kind].isoformat(), "limit_usd": str(limit),
                                "spent_usd": str(usd(spent)), "reserved_usd": str(usd(reserved)),
                                "remaining_usd": str(limit - usd(spent) - usd(reserved))})
            body.append({
                "policy_id": policy.pk,
                "project": policy.project.slug if policy.project_id else None,
                "monthly_limit_usd": _s(policy.monthly_limit_usd),
                "daily_limit_usd": _s(policy.daily_limit_usd),
                "per_job_limit_usd": _s(policy.per_job_limit_usd),
                "warning_threshold_percent": policy.warning_threshold_percent,
                "on_budget_exceeded": policy.on_exceeded,
                "on_per_job_exceeded": policy.on_per_job_exceeded,
                "cost_tiers": policy.cost_tiers or None,
                "windows": current,
            })
        return Response({"tenant_id": principal.tenant.slug, "policies": body})


def _s(value):
    return None if value is None else str(value)


class DecisionInput(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


DECISION_ERRORS = {
    402: OpenApiResponse(description="BUDGET_EXCEEDED: approving would overspend a block budget; nothing changed"),
    403: OpenApiResponse(description="SELF_APPROVAL_FORBIDDEN (four-eyes), NOT_AN_APPROVER or PERMISSION_DENIED"),
    404: OpenApiResponse(description="NOT_FOUND (also another tenant's job)"),
    409: OpenApiResponse(description="APPROVAL_CONFLICT: the job is no longer waiting (another decision won)"),
}


class _DecisionView(APIView):
    decision = ""

    def post(self, request: Request, job_id: str) -> Response:
        principal = request.auth
        principal.require(Capability.APPROVE_JOB)
        data = DecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        job = selectors.job_get(principal=principal, job_id=job_id)
        approvals.job_decide(user=principal.user, job=job, decision=self.decision,
                             reason=data.validated_data["reason"], channel="api")
        return Response(job_representation(selectors.job_get(principal=principal, job_id=job_id)))


class JobApproveView(_DecisionView):
    decision = "approve"

    @extend_schema(summary="Approve a job waiting for approval (four-eyes)", request=DecisionInput,
                   responses={200: dict, **DECISION_ERRORS})
    def post(self, request: Request, job_id: str) -> Response:
        return super().post(request, job_id)


class JobRejectView(_DecisionView):
    decision = "reject"

    @extend_schema(summary="Reject a job waiting for approval (a reason is required)", request=DecisionInput,
                   responses={200: dict, **DECISION_ERRORS})
    def post(self, request: Request, job_id: str) -> Response:
        return super().post(request, job_id)


class ApprovalListView(APIView):
    @extend_schema(summary="Jobs of the caller's tenant waiting for a decision", responses={200: dict})
    def get(self, request: Request) -> Response:
        principal = request.auth
        principal.require(Capability.APPROVE_JOB)
        jobs = approvals.pending_for(tenant_id=principal.tenant.pk).select_related("tenant")[:500]
        return Response({"results": [
            {**job_representation(job), "submitted_by": job.submitted_by.email} for job in jobs
        ]})
