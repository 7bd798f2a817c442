"""The Benchmarking API (``/api/v2/bench/``, the seed's endpoints) and Bench V3 evidence
(``/bench/``). Views parse input and call services or selectors; nothing else."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ledger.crypto.bundle import BundleFormatError, EvidenceBundle
from ledger.keys import keyring
from qcos.api.errors import error_body
from qcos.api.ledger_views import query_choice
from qcos.api.negotiation import answers_with
from qcos.api.outputs import BenchmarkAccepted
from qcos.api.schema import BUDGET_REFUSED, documented, error
from qcos.api.serializers import StrictInteger, StrictText
from qcos.api.views import IDEMPOTENCY_KEY, idempotency_key
from qcos.errors import ValidationFailed
from qcos.jobs.services import request_fingerprint

from . import selectors, services
from .errors import VerificationFailed
from .models import BenchmarkRun
from .plot import fidelity_vs_qubits_svg
from .report import verify_report
from .runner import DEFAULT_SHOTS, MAX_SHOTS
from .workloads import SEED_MAX, WORKLOADS, list_workloads

API_PREFIX = "/api/v2/bench"
V3_PREFIX = "/bench"
STORAGE_MODE = "ledger"
ERRORS = {
    400: error("INVALID_WORKLOAD, INVALID_SHOTS, BACKEND_TOO_SMALL, PRICING_ERROR, UNKNOWN_PROJECT, "
               "MALFORMED_REQUEST or VALIDATION_ERROR"),
    403: error("PERMISSION_DENIED or TENANT_MISMATCH"),
    409: error("IDEMPOTENCY_CONFLICT: this Idempotency-Key was used with another body"),
    503: error("BACKEND_UNAVAILABLE: no such backend here (details.available)"),
}
# What reading a run's report answers besides the report.
REPORT_ERRORS = {
    202: error("BENCHMARK_STILL_RUNNING: the report is not ready yet (details.status)"),
    403: error("PERMISSION_DENIED"),
    404: error("BENCHMARK_NOT_FOUND (also for another tenant's benchmark)"),
    409: error("BENCHMARK_FAILED: the run ended without a report (details.error_code)"),
}
# The verify endpoints answer 400 with the verification fields and ``error`` in the one error shape.
VERIFY_ERRORS = {
    **REPORT_ERRORS,
    400: error("VERIFICATION_FAILED (with the verification fields beside `error`), MALFORMED_REQUEST or "
               "VALIDATION_ERROR"),
}
BENCHMARK_ID = OpenApiParameter("benchmark_id", OpenApiTypes.UUID, OpenApiParameter.PATH,
                                description="any other text is BENCHMARK_NOT_FOUND")
FORMAT_JSON_SVG = OpenApiParameter("format", str, enum=["json", "svg"], default="json")
SVG = OpenApiResponse(OpenApiTypes.STR, description="?format=svg: the fidelity-vs-qubits plot")


def _urls(benchmark_id: str) -> dict[str, str]:
    return {"report_url": f"{API_PREFIX}/report/{benchmark_id}",
            "download_url": f"{API_PREFIX}/report/{benchmark_id}/download",
            "evidence_url": f"{V3_PREFIX}/evidence/{benchmark_id}"}


class WorkloadsView(APIView):
    @extend_schema(summary="List the benchmark workloads", responses={200: dict})
    def get(self, request: Request) -> Response:
        return Response({"workloads": list_workloads()})


class RunInput(serializers.Serializer):
    """Types only; the service decides what is acceptable and answers with the seed's codes."""

    backend_id = StrictText(max_length=64)
    workloads = documented(serializers.ListField, {
        "type": "array", "maxItems": 32, "uniqueItems": True, "items": {"type": "string", "enum": list(WORKLOADS)},
        "description": "workload ids (GET workloads); none or empty: the default suite"})(
        child=StrictText(max_length=64), required=False, allow_empty=True, max_length=32)
    shots = documented(StrictInteger, {"type": "integer", "minimum": 1, "maximum": MAX_SHOTS})(
        default=DEFAULT_SHOTS)
    seed = documented(StrictInteger, {"type": "integer", "minimum": 0, "maximum": SEED_MAX - 1,
                                                 "nullable": True})(required=False, allow_null=True)
    project = StrictText(required=False, max_length=63)
    tenant_id = StrictText(required=False, max_length=63)


def run_representation(run: BenchmarkRun) -> dict[str, Any]:
    """The seed's 202 body (``benchmark_id``, ``status``, ``estimated_time_seconds``, ``message``,
    ``warning``) plus what was decided at submission."""
    from .backends import backend_info

    benchmark_id = str(run.id)
    return {
        "benchmark_id": benchmark_id,
        "status": "queued",
        "estimated_time_seconds": services.estimated_seconds(backend_info(run.backend_id).kind, run.workloads,
                                                             run.shots),
        "message": f"Benchmark {benchmark_id} queued for execution on {run.backend_id}",
        "warning": run.warning or None,
        "backend_id": run.backend_id,
        "workloads": list(run.workloads),
        "shots": run.shots,
        "seed": run.seed,
        "dev_mode": run.dev_mode,
        "estimated_cost_usd": str(run.estimated_cost_usd),
        "priced_as": run.priced_as,
        **_urls(benchmark_id),
    }


class RunView(APIView):
    @extend_schema(
        summary="Queue a benchmark run", request=RunInput,
        parameters=[IDEMPOTENCY_KEY],
        examples=[OpenApiExample("Bell and GHZ-5 on the simulator", request_only=True, value={
            "backend_id": "simulator", "workloads": ["bell_state", "ghz_5q"], "shots": 1024, "seed": 42})],
        responses={202: BenchmarkAccepted, **ERRORS, **BUDGET_REFUSED},
    )
    def post(self, request: Request) -> Response:
        data = RunInput(data=request.data)
        data.is_valid(raise_exception=True)
        body = data.validated_data
        key = idempotency_key(request)
        submission = services.benchmark_submit(
            principal=request.auth, backend_id=body["backend_id"], workloads=body.get("workloads"),
            shots=body["shots"], seed=body.get("seed"), tenant_slug=body.get("tenant_id"),
            project_slug=body.get("project"), idempotency_key=key,
            fingerprint=request_fingerprint(request.data) if key else None, render=run_representation,
        )
        response = Response(submission.response_body, status=status.HTTP_202_ACCEPTED)
        response["Location"] = f"{API_PREFIX}/report/{submission.run.id}"
        if submission.replayed:
            response["Idempotent-Replayed"] = "true"
        return response


class ReportView(APIView):
    @extend_schema(summary="A completed benchmark's report (202 BENCHMARK_STILL_RUNNING before that)",
                   parameters=[BENCHMARK_ID], responses={200: dict, **REPORT_ERRORS})
    def get(self, request: Request, benchmark_id: str) -> Response:
        run = selectors.benchmark_get(principal=request.auth, benchmark_id=benchmark_id)
        report = selectors.report_of(run)
        urls = _urls(str(run.id))
        return Response({"report": report, "download_url": urls["download_url"], "storage_mode": STORAGE_MODE,
                         "evidence_url": urls["evidence_url"]})


class DownloadView(APIView):
    content_negotiation_class = answers_with("image/svg+xml")

    @extend_schema(
        summary="Download the report as a JSON file (with the public keys and the fidelity-vs-qubits "
                "plot), or the plot alone with ?format=svg",
        parameters=[BENCHMARK_ID, FORMAT_JSON_SVG],
        responses={(200, "application/json"): dict, (200, "image/svg+xml"): SVG, **REPORT_ERRORS,
                   400: error("VALIDATION_ERROR (an unknown format)")},
    )
    def get(self, request: Request, benchmark_id: str) -> HttpResponse:
        as_svg = query_choice(request, "format", ("json", "svg")) == "svg"
        run = selectors.benchmark_get(principal=request.auth, benchmark_id=benchmark_id)
        report = selectors.report_of(run)
        stem = f"bench-report-{str(run.id)[:8]}"
        svg = fidelity_vs_qubits_svg([report], title=f"Fidelity vs qubits: {run.backend_id}")
        if as_svg:
            response = HttpResponse(svg, content_type="image/svg+xml")
            response["Content-Disposition"] = f"attachment; filename={stem}.svg"
            return response
        document = {"report": report, "download_url": _urls(str(run.id))["download_url"],
                    "storage_mode": STORAGE_MODE, "public_keys": keyring().to_dict(),
                    "plots": {"fidelity_vs_qubits.svg": svg}}
        response = HttpResponse(json.dumps(document, indent=2, ensure_ascii=False) + "\n",
                                content_type="application/json")
        response["Content-Disposition"] = f"attachment; filename={stem}.json"
        return response


class VerifyInput(serializers.Serializer):
    report = serializers.DictField(required=False)
    benchmark_id = StrictText(required=False)

    def validate(self, attrs):
        if ("report" in attrs) == ("benchmark_id" in attrs):  # given, even if empty (then it fails to verify)
            raise serializers.ValidationError("give exactly one of report or benchmark_id")
        return attrs


class VerifyView(APIView):
    @extend_schema(summary="Verify a report's content hash, evidence hash and signature",
                   request=VerifyInput, responses={200: dict, **VERIFY_ERRORS})
    def post(self, request: Request) -> Response:
        data = VerifyInput(data=request.data)
        data.is_valid(raise_exception=True)
        params = data.validated_data
        if params.get("benchmark_id"):
            run = selectors.benchmark_get(principal=request.auth, benchmark_id=params["benchmark_id"])
            document: Any = selectors.report_of(run)
        else:
            selectors.benchmarks_for(principal=request.auth)  # the same capability check
            document = params["report"]
        try:
            # The server's own key ring is the trusted one: embedded keys in the body are ignored.
            result = verify_report(document, keyring=keyring())
        except ValueError as exc:
            raise VerificationFailed(f"not a benchmark report: {exc}") from None
        body = result.to_dict()
        if result.is_valid:
            return Response(body)
        bad = [f["check"] for f in result.failures]
        failed = VerificationFailed(f"report integrity check failed: {result.error}",
                                    details={"failed_checks": bad, "failures": result.failures})
        # The seed's verify fields, with ``error`` in the one error shape instead of null.
        body["error"] = error_body(failed.code, failed.message, failed.details)["error"]
        return Response(body, status=failed.http_status)


class CompareView(APIView):
    content_negotiation_class = answers_with("image/svg+xml")

    @extend_schema(
        summary="Several completed reports side by side (JSON) or as one fidelity-vs-qubits plot (?format=svg)",
        parameters=[OpenApiParameter("ids", str, required=True,
                                     description=f"comma-separated benchmark ids (1 to {selectors.MAX_COMPARE})"),
                    FORMAT_JSON_SVG],
        responses={(200, "application/json"): dict, (200, "image/svg+xml"): SVG, **REPORT_ERRORS,
                   400: error("VALIDATION_ERROR (no ids, too many, or an unknown format)")},
    )
    def get(self, request: Request) -> HttpResponse:
        as_svg = query_choice(request, "format", ("json", "svg")) == "svg"
        ids = [i for i in request.query_params.get("ids", "").split(",") if i.strip()]
        if not 1 <= len(ids) <= selectors.MAX_COMPARE:
            raise ValidationFailed(f"ids: give 1 to {selectors.MAX_COMPARE} comma-separated benchmark ids",
                                   details={"fields": {"ids": ids}})
        reports = [selectors.report_of(selectors.benchmark_get(principal=request.auth, benchmark_id=i.strip()))
                   for i in ids]
        if as_svg:
            return HttpResponse(fidelity_vs_qubits_svg(reports, title="Fidelity vs qubits: comparison"),
                                content_type="image/svg+xml")
        return Response(selectors.comparison(reports))


class EvidenceView(APIView):
    @extend_schema(summary="The benchmark's signed Bench V3 evidence bundle", parameters=[BENCHMARK_ID],
                   responses={200: dict, **REPORT_ERRORS})
    def get(self, request: Request, benchmark_id: str) -> Response:
        run = selectors.benchmark_get(principal=request.auth, benchmark_id=benchmark_id)
        return Response(selectors.bundle_of(run))  # with its registry proof, once checkpointed, and the keys


class EvidenceVerifyInput(serializers.Serializer):
    bundle = serializers.DictField(required=False)
    benchmark_id = StrictText(required=False)

    def validate(self, attrs):
        if ("bundle" in attrs) == ("benchmark_id" in attrs):  # given, even if empty (then it fails to verify)
            raise serializers.ValidationError("give exactly one of bundle or benchmark_id")
        return attrs


class EvidenceVerifyView(APIView):
    @extend_schema(summary="Verify a Bench V3 evidence bundle (the ledger's verifier)",
                   request=EvidenceVerifyInput, responses={200: dict, **VERIFY_ERRORS})
    def post(self, request: Request) -> Response:
        data = EvidenceVerifyInput(data=request.data)
        data.is_valid(raise_exception=True)
        params = data.validated_data
        if params.get("benchmark_id"):
            run = selectors.benchmark_get(principal=request.auth, benchmark_id=params["benchmark_id"])
            document = selectors.bundle_of(run)
        else:
            selectors.benchmarks_for(principal=request.auth)
            document = params["bundle"]
        try:
            report = EvidenceBundle(document).verify(keyring=keyring())
        except BundleFormatError as exc:
            raise VerificationFailed(f"not an evidence bundle: {exc}") from None
        body = {"bundle_id": document.get("bundle_id"), **report.to_dict(), "error": None}
        if report.is_valid:
            return Response(body)
        failed = VerificationFailed("evidence bundle integrity check failed",
                                    details={"failed_checks": sorted({f["check"] for f in report.failures}),
                                             "failures": report.failures})
        body["error"] = error_body(failed.code, failed.message, failed.details)["error"]
        return Response(body, status=failed.http_status)
