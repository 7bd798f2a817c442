"""The one error shape: ``{"error": {"code": ..., "message": ..., "details": {...}}}``.

Every error answer takes it, whatever raised it: a service (``QCOSError``), DRF, Django itself
(its 400/403/404/500 handlers and the CSRF failure view, below) or the database. A transient
server fault -- the database unreachable or restarting, the process out of memory -- is
``503 SERVICE_UNAVAILABLE`` with ``Retry-After``, which the SDK retries; nothing else is.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.core.exceptions import (
    BadRequest,
    DisallowedHost,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DataError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from qcos.errors import NotFound, PermissionDenied, QCOSError, ValidationFailed

from .limits import PayloadTooLarge

logger = logging.getLogger("qcos.api")

# Seconds a client should wait before retrying a 503. Restarting PostgreSQL or failing it over
# takes a few; the SDK's default three retries then span about ten seconds in all.
RETRY_AFTER_SECONDS = 2

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


class ServiceUnavailable(QCOSError):
    """A transient server fault: the same request, retried after ``Retry-After``, may succeed."""

    code = "SERVICE_UNAVAILABLE"
    http_status = 503


def _driver_errors() -> tuple[tuple[type[BaseException], ...], ...]:
    # Django wraps the driver's errors; a statement run outside that wrapper raises psycopg's own.
    try:
        import psycopg
    except ImportError:  # the embedded default may run without it
        return (OperationalError,), (InterfaceError,), (DataError,)
    return (OperationalError, psycopg.OperationalError), (InterfaceError, psycopg.InterfaceError), \
        (DataError, psycopg.DataError)


_OPERATIONAL_ERRORS, _INTERFACE_ERRORS, _DATA_ERRORS = _driver_errors()
# SQLSTATE classes of a fault that passes: connection exception, transaction rollback (deadlock,
# serialization), insufficient resources, operator intervention (shutdown, cannot connect now,
# statement cancelled), system error; and a lock not available. Not 54 (a program limit): the
# same request would meet it again.
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
_TRANSIENT_SQLITE_ERRORS = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_FULL")


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` is the database being unreachable or briefly unable to answer, so that the
    same request, retried, may succeed."""
    if isinstance(exc, _INTERFACE_ERRORS):
        return True  # the connection is closed or unusable
    if not isinstance(exc, _OPERATIONAL_ERRORS):
        return False
    driver = exc.__cause__ if exc.__cause__ is not None else exc
    if sqlstate := getattr(driver, "sqlstate", None):
        return sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES or sqlstate == "55P03"
    if sqlite_error := getattr(driver, "sqlite_errorname", None):
        return sqlite_error.startswith(_TRANSIENT_SQLITE_ERRORS)  # not a malformed query, say
    return True  # no SQLSTATE: the connection itself failed (refused, reset, closed by the server)


def classify(exc: BaseException) -> QCOSError | None:
    """The client-facing error for an exception that is not a ``QCOSError`` or DRF's own, or None
    for a genuine server error (a 500)."""
    if database_unavailable(exc):
        # The driver's message names hosts and ports: it goes to the log, never to the client.
        logger.warning("database unavailable, answering 503: %s: %s", type(exc).__name__, exc)
        return ServiceUnavailable("the database is unavailable; retry shortly",
                                  details={"retry_after_seconds": RETRY_AFTER_SECONDS})
    if isinstance(exc, MemoryError):
        logger.error("out of memory, answering 503", exc_info=exc)
        return ServiceUnavailable("the server is out of memory; retry shortly",
                                  details={"retry_after_seconds": RETRY_AFTER_SECONDS})
    if isinstance(exc, _DATA_ERRORS):
        # A value the boundary let through but the database cannot store (a number out of its
        # column's range, text too long): the request's fault. Logged, since a check is missing.
        logger.warning("database refused a value, answering 400: %s", exc, exc_info=exc)
        return ValidationFailed("invalid request: a value is out of range or too long to be stored")
    if isinstance(exc, RequestDataTooBig):
        from django.conf import settings

        return PayloadTooLarge(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    if isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        return QCOSError(f"invalid request: {exc}", code="TOO_MANY_FIELDS")
    if isinstance(exc, DisallowedHost):
        return QCOSError("invalid request: this host name is not served here", code="DISALLOWED_HOST")
    if isinstance(exc, (SuspiciousOperation, BadRequest)):
        return QCOSError("invalid request", code="MALFORMED_REQUEST")
    if isinstance(exc, DjangoPermissionDenied):
        return PermissionDenied("permission denied")
    if isinstance(exc, Http404):
        return NotFound("not found")
    return None


def _headers(error: QCOSError) -> dict[str, str]:
    # Only a transient fault says when to come back (BACKEND_UNAVAILABLE, also a 503, is not one).
    return {"Retry-After": str(RETRY_AFTER_SECONDS)} if isinstance(error, ServiceUnavailable) else {}


def json_error(error: QCOSError) -> JsonResponse:
    response = JsonResponse(error_body(error.code, error.message, error.details), status=error.http_status,
                            headers=_headers(error))
    response["Content-Length"] = str(len(response.content))  # answered before CommonMiddleware would
    return response


def json_response_for(exc: BaseException) -> JsonResponse | None:
    """What a plain Django view or middleware answers for ``exc`` (None: let it be a 500)."""
    error = exc if isinstance(exc, QCOSError) else classify(exc)
    return json_error(error) if error is not None else None


def exception_handler(exc, context):
    if isinstance(exc, QCOSError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.http_status,
                        headers=_headers(exc))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        error = classify(exc)
        if error is None:
            return None  # a real server error: Django's 500 handling and logging take over
        return Response(error_body(error.code, error.message, error.details), status=error.http_status,
                        headers=_headers(error))
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


def bad_request_view(request, exception=None):
    """handler400: Django's SuspiciousOperation family (a disallowed Host, too many fields...)."""
    response = json_response_for(exception) if exception is not None else None
    return response or JsonResponse(error_body("MALFORMED_REQUEST", "invalid request"), status=400)


def permission_denied_view(request, exception=None):
    """handler403."""
    return JsonResponse(error_body("PERMISSION_DENIED", "permission denied"), status=403)


def csrf_failure_view(request, reason=""):
    """CSRF_FAILURE_VIEW. API views authenticate with keys, not cookies, and are exempt; a plain view
    under /api/ or /bench/ (an unknown path) answers in the one shape, the admin's forms with
    Django's page."""
    if not request.path_info.startswith(("/api/", "/bench/")):
        from django.views.csrf import csrf_failure

        return csrf_failure(request, reason)
    return JsonResponse(error_body("CSRF_FAILED", f"CSRF verification failed: {reason}" if reason
                                   else "CSRF verification failed"), status=403)


def server_error_view(request):
    """handler500. Django calls it while handling the exception, so a transient fault that reached
    here (the database dropped inside a middleware, say) is still told apart: 503, retryable."""
    exc = sys.exc_info()[1]
    if exc is not None and (response := json_response_for(exc)) is not None:
        return response
    return JsonResponse(error_body("INTERNAL_ERROR", "internal server error"), status=500)
