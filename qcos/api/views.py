"""v2.1 job endpoints. Views parse input and call services or selectors; nothing else."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from qcos.errors import ValidationFailed
from qcos.jobs import selectors, services
from qcos.jobs.job_detail import job_detail
from qcos.jobs.models import QuantumJob
from qcos.tenancy.roles import Capability

from .filters import JobFilter
from .schema import BUDGET_REFUSED, error
from .serializers import JobOutput, JobSubmitInput, job_representation, submit_input_fast

BELL = ('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nbit[2] c;\nh q[0];\ncx q[0], q[1];\n'
        'c = measure q;\n')
SUBMIT_ERRORS = {
    400: error("INVALID_CIRCUIT, UNKNOWN_BACKEND, INVALID_SHOTS, CIRCUIT_TOO_LARGE, UNKNOWN_PROJECT, "
               "MALFORMED_REQUEST or VALIDATION_ERROR"),
    403: error("PERMISSION_DENIED or TENANT_MISMATCH"),
    409: error("IDEMPOTENCY_CONFLICT: this Idempotency-Key was used with another body"),
    **BUDGET_REFUSED,
}
JOB_ERRORS = {
    403: error("PERMISSION_DENIED"),
    404: error("NOT_FOUND (also for another tenant's job)"),
}
IDEMPOTENCY_KEY_MAX = 255  # the column's width
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX}, OpenApiParameter.HEADER,
    description="Repeats with the same key and body answer the first response; an empty one is no key.")
_MOMENT_OR_EMPTY = {"type": "string", "anyOf": [{"format": "date-time"}, {"maxLength": 0}]}
LIST_PARAMETERS = [
    OpenApiParameter("submitted_after", _MOMENT_OR_EMPTY,
                     description="ISO 8601 date-time, inclusive; empty: no bound."),
    OpenApiParameter("submitted_before", _MOMENT_OR_EMPTY,
                     description="ISO 8601 date-time, exclusive; empty: no bound."),
    OpenApiParameter("limit", {"type": "integer", "minimum": 1},
                     description="Page size, at least 1 (default 50); a larger one than 500 is capped at 500."),
    OpenApiParameter("offset", {"type": "integer", "minimum": 0}, description="Jobs to skip (default 0)."),
    OpenApiParameter("tag", {"type": "array", "items": {"type": "string", "pattern": "^([^=].*)?$"}},
                     explode=True, description="`key=value` (exact) or `key` (present); repeat it to require "
                                               "several. An empty one requires nothing."),
]


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key") or None
    if key is not None and len(key) > IDEMPOTENCY_KEY_MAX:
        raise ValidationFailed(f"Idempotency-Key: at most {IDEMPOTENCY_KEY_MAX} characters",
                               details={"fields": {"Idempotency-Key": ["too long"]}})
    return key


def _principal(request: Request):
    principal = request.auth
    principal.require(Capability.VIEW_JOBS)
    return principal


class JobListCreateView(generics.GenericAPIView):
    serializer_class = JobOutput
    filterset_class = JobFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no caller
            return QuantumJob.objects.none()
        return selectors.jobs_for(principal=_principal(self.request))

    @extend_schema(summary="List the caller's tenant's jobs", parameters=LIST_PARAMETERS, responses={
        200: JobOutput(many=True),
        400: error("VALIDATION_ERROR: a limit, offset, status, tag or date that is not valid"),
        403: error("PERMISSION_DENIED"),
    })
    def get(self, request: Request) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response([job_representation(job) for job in page])

    @extend_schema(
        summary="Submit a job",
        request=JobSubmitInput,
        parameters=[IDEMPOTENCY_KEY],
        examples=[OpenApiExample("A Bell pair on the simulator", request_only=True, value={
            "circuit": BELL, "backend": "simulator", "shots": 1024, "priority": "standard",
            "ledger": {"enabled": True, "tags": {"experiment": "bell"}}})],
        responses={202: JobOutput, **SUBMIT_ERRORS},
    )
    def post(self, request: Request) -> Response:
        principal = request.auth
        body = submit_input_fast(request.data)
        if body is None:  # anything not plainly well-formed: DRF's serializer decides (and explains)
            data = JobSubmitInput(data=request.data)
            data.is_valid(raise_exception=True)
            body = data.validated_data
        ledger = body.get("ledger", {})
        key = idempotency_key(request)
        submission = services.job_submit(
            principal=principal,
            circuit=body["circuit"],
            backend=body["backend"],
            shots=body["shots"],
            priority=body["priority"],
            tenant_slug=ledger.get("tenant_id"),
            project_slug=ledger.get("project"),
            tags=ledger.get("tags"),
            ledger_enabled=ledger.get("enabled", True),
            idempotency_key=key,
            fingerprint=services.request_fingerprint(request.data) if key else None,
            render=job_representation,
        )
        response = Response(submission.response_body, status=submission.response_status)
        response["Location"] = f"/api/v2.1/jobs/{submission.job.id}"
        if submission.replayed:
            response["Idempotent-Replayed"] = "true"
        return response


class JobDetailView(APIView):
    @extend_schema(summary="Get a job", responses={200: JobOutput, **JOB_ERRORS})
    def get(self, request: Request, job_id: str) -> Response:
        # What waiting clients poll: selectors.job_get's answer in one precompiled statement.
        job = job_detail(principal=_principal(request), job_id=job_id)
        return Response(job_representation(job))


class JobCancelView(APIView):
    @extend_schema(summary="Cancel a job that has not started", request=None, responses={
        200: JobOutput, **JOB_ERRORS, 409: error("JOB_NOT_CANCELLABLE: it has started or ended")})
    def post(self, request: Request, job_id: str) -> Response:
        principal = _principal(request)
        job = selectors.job_get(principal=principal, job_id=job_id)
        job = services.job_cancel(principal=principal, job=job)
        return Response(job_representation(selectors.job_get(principal=principal, job_id=job.id)), status=status.HTTP_200_OK)
