"""``/api/v2.1/reports``: chargeback reports of the caller's tenant (admins and auditors).

Views parse input and call ``finops.report_services``; every read goes through its tenant-scoped
selectors, so another tenant's report answers NOT_FOUND exactly like a missing one.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from qcos.api.negotiation import answers_with
from qcos.api.outputs import ReportOutput
from qcos.api.schema import documented, error
from qcos.api.serializers import StrictText
from qcos.errors import Conflict
from qcos.tenancy.roles import Capability

from . import report_selectors, report_services, reports
from .models import ChargebackReport, ReportStatus

ERRORS = {
    400: error("UNKNOWN_REPORT_TYPE, UNKNOWN_FORMAT, INVALID_GROUP_BY, INVALID_DATE_RANGE, DATE_RANGE_TOO_LONG, "
               "MALFORMED_REQUEST or VALIDATION_ERROR"),
    403: error("PERMISSION_DENIED (roles admin and auditor only)"),
}
NOT_FOUND = {404: error("NOT_FOUND (also for another tenant's report)")}


@extend_schema_field({"type": "array", "uniqueItems": True, "items": {
    "type": "string", "pattern": r"^(tenant|project|backend|tag:[A-Za-z0-9_.\-]{1,64})$"}})
class GroupByField(serializers.ListField):
    pass


class ReportInput(serializers.Serializer):
    # Plain text fields: the service refuses other values with its own codes (UNKNOWN_REPORT_TYPE,
    # UNKNOWN_FORMAT); the schema lists the values.
    report_type = documented(StrictText, {"type": "string", "enum": list(reports.REPORT_TYPES)})(
        default="chargeback")
    start_date = serializers.DateField(help_text="first UTC day, inclusive")
    end_date = serializers.DateField(help_text=f"last UTC day, inclusive; at most {reports.MAX_RANGE_DAYS} days "
                                               "after start_date")
    group_by = GroupByField(child=StrictText(), required=False,
                            help_text="any of tenant, project, backend, tag:<key>, each once; "
                                      "default tenant, project, backend")
    format = documented(StrictText, {"type": "string", "enum": list(reports.FORMATS)})(
        default="csv", help_text="csv, json or focus (FOCUS 1.2 CSV)")


def report_representation(report: ChargebackReport) -> dict[str, Any]:
    ready = report.status == ReportStatus.READY
    return {
        "id": report.id,
        "report_type": report.report_type,
        "tenant_id": report.tenant.slug,
        "start_date": report.start_date.isoformat(),
        "end_date": report.end_date.isoformat(),
        "group_by": report.group_by,
        "format": report.format,
        "status": report.status,
        "rows": report.rows if ready else None,
        "content_sha256": report.content_sha256 or None,
        "error": report.error or None,
        "created_at": _iso(report.created_at),
        "completed_at": _iso(report.completed_at),
        "download_url": f"/api/v2.1/reports/{report.id}/download" if ready else None,
    }


def _iso(moment) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


class ReportCreateView(APIView):
    @extend_schema(summary="Generate a chargeback report of the caller's tenant (built by a worker)",
                   request=ReportInput, responses={202: ReportOutput, **ERRORS}, examples=[
                       OpenApiExample("January by project and backend, as CSV", request_only=True, value={
                           "start_date": "2026-01-01", "end_date": "2026-01-31", "group_by": ["project", "backend"],
                           "format": "csv"})])
    def post(self, request: Request) -> Response:
        request.auth.require(Capability.VIEW_COSTS)  # before validation: no hints to the unauthorised
        data = ReportInput(data=request.data)
        data.is_valid(raise_exception=True)
        params = data.validated_data
        report = report_services.report_generate(
            principal=request.auth, report_type=params["report_type"], start_date=params["start_date"],
            end_date=params["end_date"], group_by=params.get("group_by"), format=params["format"],
        )
        # In the embedded default the build already ran (eager Celery, after commit): say so.
        report = report_selectors.report_get(principal=request.auth, report_id=report.id)
        response = Response(report_representation(report), status=202)
        response["Location"] = f"/api/v2.1/reports/{report.id}"
        return response


class ReportDetailView(APIView):
    @extend_schema(summary="A report's status, row count and download link",
                   responses={200: ReportOutput, 403: ERRORS[403], **NOT_FOUND})
    def get(self, request: Request, report_id: str) -> Response:
        report = report_selectors.report_get(principal=request.auth, report_id=report_id)
        return Response(report_representation(report))


class ReportDownloadView(APIView):
    content_negotiation_class = answers_with("text/csv")

    @extend_schema(
        summary="The report file (text/csv or application/json) once READY",
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="format csv or focus"),
                   (200, "application/json"): OpenApiResponse(dict, description="format json"),
                   409: error("REPORT_NOT_READY (details.status) or REPORT_FAILED"),
                   403: ERRORS[403], **NOT_FOUND},
    )
    def get(self, request: Request, report_id: str) -> HttpResponse:
        report = report_selectors.report_get(principal=request.auth, report_id=report_id, with_content=True)
        if report.status == ReportStatus.FAILED:
            raise Conflict(f"report {report_id} failed: {report.error}", code="REPORT_FAILED",
                           details={"report_id": report_id, "status": report.status})
        if report.status != ReportStatus.READY:
            raise Conflict(f"report {report_id} is {report.status}; try again shortly", code="REPORT_NOT_READY",
                           details={"report_id": report_id, "status": report.status})
        response = HttpResponse(bytes(report.content), content_type=reports.CONTENT_TYPES[report.format])
        response["Content-Disposition"] = f'attachment; filename="{report_selectors.report_filename(report)}"'
        response["X-Content-SHA256"] = report.content_sha256
        return response
