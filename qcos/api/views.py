"""v2.1 job endpoints. Views parse input and call services or selectors; nothing else."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from qcos.jobs import selectors, services
from qcos.jobs.job_detail import job_detail
from qcos.jobs.models import QuantumJob
from qcos.tenancy.roles import Capability

from .errors import BUDGET_REFUSED
from .filters import JobFilter
from .serializers import JobOutput, JobSubmitInput, job_representation, submit_input_fast

ERRORS = {
    400: OpenApiResponse(description="INVALID_CIRCUIT, UNKNOWN_BACKEND, INVALID_SHOTS, CIRCUIT_TOO_LARGE, "
                                     "UNKNOWN_PROJECT or VALIDATION_ERROR"),
    401: OpenApiResponse(description="UNAUTHENTICATED"),
    403: OpenApiResponse(description="PERMISSION_DENIED or TENANT_MISMATCH"),
    404: OpenApiResponse(description="NOT_FOUND (also for another tenant's job)"),
    409: OpenApiResponse(description="IDEMPOTENCY_CONFLICT or JOB_NOT_CANCELLABLE"),
}


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

    @extend_schema(summary="List the caller's tenant's jobs", responses={200: JobOutput(many=True)})
    def get(self, request: Request) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response([job_representation(job) for job in page])

    @extend_schema(
        summary="Submit a job",
        request=JobSubmitInput,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        responses={202: JobOutput, **ERRORS, **BUDGET_REFUSED},
    )
    def post(self, request: Request) -> Response:
        principal = request.auth
        body = submit_input_fast(request.data)
        if body is None:  # anything not plainly well-formed: DRF's serializer decides (and explains)
            data = JobSubmitInput(data=request.data)
            data.is_valid(raise_exception=True)
            body = data.validated_data
        ledger = body.get("ledger", {})
        key = request.headers.get("Idempotency-Key")
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
    @extend_schema(summary="Get a job", responses={200: JobOutput, **ERRORS})
    def get(self, request: Request, job_id: str) -> Response:
        # What waiting clients poll: selectors.job_get's answer in one precompiled statement.
        job = job_detail(principal=_principal(request), job_id=job_id)
        return Response(job_representation(job))


class JobCancelView(APIView):
    @extend_schema(summary="Cancel a job that has not started", request=None, responses={200: JobOutput, **ERRORS})
    def post(self, request: Request, job_id: str) -> Response:
        principal = _principal(request)
        job = selectors.job_get(principal=principal, job_id=job_id)
        job = services.job_cancel(principal=principal, job=job)
        return Response(job_representation(selectors.job_get(principal=principal, job_id=job.id)), status=status.HTTP_200_OK)
