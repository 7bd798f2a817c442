"""The one error shape: ``{"error": {"code": ..., "message": ..., "details": {...}}}``."""

from __future__ import annotations

from typing import Any

from django.http import Http404, JsonResponse
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from qcos.errors import QCOSError

# For the schema: only what charges a budget (a job's submit, a benchmark run) can answer 402.
BUDGET_REFUSED = {402: OpenApiResponse(description="BUDGET_EXCEEDED (a `block` budget or per-job limit refused it)")}

_DRF_CODES = {
    exceptions.NotAuthenticated: ("UNAUTHENTICATED", 401),
    exceptions.AuthenticationFailed: ("UNAUTHENTICATED", 401),
    exceptions.PermissionDenied: ("PERMISSION_DENIED", 403),
    exceptions.NotFound: ("NOT_FOUND", 404),
    exceptions.MethodNotAllowed: ("METHOD_NOT_ALLOWED", 405),
    exceptions.NotAcceptable: ("NOT_ACCEPTABLE", 406),
    exceptions.UnsupportedMediaType: ("UNSUPPORTED_MEDIA_TYPE", 415),
    exceptions.Throttled: ("THROTTLED", 429),
    exceptions.ParseError: ("MALFORMED_REQUEST", 400),
    exceptions.ValidationError: ("VALIDATION_ERROR", 400),
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def exception_handler(exc, context):
    if isinstance(exc, QCOSError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.http_status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real server error: Django's 500 handling and logging take over
    for exc_type, (code, status) in _DRF_CODES.items():
        if isinstance(exc, exc_type):
            break
    else:
        code, status = "ERROR", response.status_code
    if isinstance(exc, exceptions.ValidationError):
        # Body fields and query parameters alike: the message names each one and its first problem.
        message = _validation_message(exc.detail)
        details = {"fields": exc.detail} if isinstance(exc.detail, dict) else {"errors": exc.detail}
    else:
        message = str(exc.detail) if hasattr(exc, "detail") else str(exc)
        details = {}
    response.data = error_body(code, message, details)
    response.status_code = status
    return response


def _first_problem(detail: Any) -> str:
    while isinstance(detail, (list, dict)) and detail:
        detail = next(iter(detail.values())) if isinstance(detail, dict) else detail[0]
    return str(detail) if detail else "invalid"


def _validation_message(detail: Any) -> str:
    if isinstance(detail, dict) and detail:
        return "invalid request: " + "; ".join(f"{field}: {_first_problem(problem)}" for field, problem in detail.items())
    return f"invalid request: {_first_problem(detail)}"


def not_found_view(request, exception=None):
    return JsonResponse(error_body("NOT_FOUND", "no such endpoint"), status=404)


def server_error_view(request):
    return JsonResponse(error_body("INTERNAL_ERROR", "internal server error"), status=500)
