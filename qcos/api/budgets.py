"""Budget checks, budget status and approval decisions (v2.1).

* ``POST /budget/check``: the seed's ``client.check_budget(tenant_id=..., estimated_cost=...)``.
* ``GET /budgets``: the caller's tenant's policies with their current day and month windows.
* ``GET /approvals``: jobs waiting for a decision (approvers and admins).
* ``POST /jobs/{id}/approve`` and ``/reject``: a decision with a reason (``qcos.jobs.approvals``).
"""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from finops import budget_selectors
from qcos.jobs import approvals, selectors
from qcos.tenancy.roles import Capability
from qcos.tenancy.selectors import project_resolve

from .outputs import ApprovalList, BudgetStatusOutput
from .schema import documented, error
from .serializers import JobOutput, StrictText, job_representation


class BudgetCheckInput(serializers.Serializer):
    tenant_id = StrictText(required=False, max_length=63)
    project = StrictText(required=False, max_length=63)
    estimated_cost = documented(serializers.DecimalField, {"anyOf": [
        {"type": "number", "minimum": 0}, {"type": "string", "pattern": r"^\d{0,12}(?:\.\d{0,6})?$"}],
        "description": "USD, as a decimal string (preferred) or a JSON number; at most 6 decimal places"})(
        max_digits=18, decimal_places=6, min_value=Decimal(0))


class BudgetCheckOutput(serializers.Serializer):
    can_proceed = serializers.BooleanField()
    message = serializers.CharField()
    remaining_usd = serializers.DecimalField(max_digits=18, decimal_places=6, allow_null=True)
    requires_approval = serializers.BooleanField()
    windows = serializers.ListField(child=serializers.DictField())


class BudgetCheckView(APIView):
    @extend_schema(summary="Would a job of this estimated cost be admitted now?", request=BudgetCheckInput,
                   examples=[OpenApiExample("12.50 USD", request_only=True, value={"estimated_cost": "12.50"})],
                   responses={200: BudgetCheckOutput, 400: error("UNKNOWN_PROJECT or VALIDATION_ERROR"),
                              403: error("PERMISSION_DENIED or TENANT_MISMATCH")})
    def post(self, request: Request) -> Response:
        request.auth.require(Capability.VIEW_JOBS)
        data = BudgetCheckInput(data=request.data)
        data.is_valid(raise_exception=True)
        params = data.validated_data
        project = project_resolve(principal=request.auth, tenant_slug=params.get("tenant_id"),
                                  project_slug=params.get("project"), default=None)
        check = budget_selectors.budget_check(tenant=request.auth.tenant, project=project,
                                              estimated_cost=params["estimated_cost"])
        return Response(check.as_dict())


class BudgetStatusView(APIView):
    @extend_schema(summary="The tenant's budget policies and their current windows",
                   responses={200: BudgetStatusOutput, 403: error("PERMISSION_DENIED")})
    def get(self, request: Request) -> Response:
        principal = request.auth
        principal.require(Capability.VIEW_JOBS)
        policies = budget_selectors.budget_status(tenant=principal.tenant)
        return Response({"tenant_id": principal.tenant.slug, "policies": policies})


class DecisionInput(serializers.Serializer):
    reason = StrictText(required=False, allow_blank=True, max_length=2000, default="")


DECISION_ERRORS = {
    400: error("VALIDATION_ERROR (a rejection needs a reason)"),
    402: error("BUDGET_EXCEEDED: approving would overspend a block budget; nothing changed"),
    403: error("SELF_APPROVAL_FORBIDDEN (four-eyes), NOT_AN_APPROVER or PERMISSION_DENIED"),
    404: error("NOT_FOUND (also another tenant's job)"),
    409: error("APPROVAL_CONFLICT: the job is no longer waiting (another decision won)"),
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
                   responses={200: JobOutput, **DECISION_ERRORS})
    def post(self, request: Request, job_id: str) -> Response:
        return super().post(request, job_id)


class JobRejectView(_DecisionView):
    decision = "reject"

    @extend_schema(summary="Reject a job waiting for approval (a reason is required)", request=DecisionInput,
                   responses={200: JobOutput, **DECISION_ERRORS})
    def post(self, request: Request, job_id: str) -> Response:
        return super().post(request, job_id)


class ApprovalListView(APIView):
    @extend_schema(summary="Jobs of the caller's tenant waiting for a decision",
                   responses={200: ApprovalList, 403: error("PERMISSION_DENIED")})
    def get(self, request: Request) -> Response:
        principal = request.auth
        principal.require(Capability.APPROVE_JOB)
        jobs = approvals.pending_for(tenant_id=principal.tenant.pk).select_related("tenant")[:500]
        return Response({"results": [
            {**job_representation(job), "submitted_by": job.submitted_by.email} for job in jobs
        ]})
