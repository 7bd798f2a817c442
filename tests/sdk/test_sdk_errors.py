"""Mapping of the server's error envelope / HTTP status to exception types."""

from __future__ import annotations

import pytest

from qcos_sdk import (
    BackendUnavailableError,
    BudgetExceededError,
    AuthenticationError,
    ConflictError,
    InvalidCircuitError,
    NotFoundError,
    PermissionDeniedError,
    QCOSError,
    RateLimitError,
    ServerError,
    ValidationError,
)
from qcos_sdk.errors import error_from_response


def envelope(code: str, **details):
    return {"error": {"code": code, "message": f"{code} happened", "details": details}}


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (401, "UNAUTHENTICATED", AuthenticationError),
        (403, "PERMISSION_DENIED", PermissionDeniedError),
        (403, "TENANT_MISMATCH", PermissionDeniedError),
        (404, "NOT_FOUND", NotFoundError),
        (400, "INVALID_CIRCUIT", InvalidCircuitError),
        (400, "UNKNOWN_BACKEND", ValidationError),
        (400, "UNKNOWN_PROJECT", ValidationError),
        (400, "VALIDATION_ERROR", ValidationError),
        (409, "IDEMPOTENCY_CONFLICT", ConflictError),
        (409, "JOB_NOT_CANCELLABLE", ConflictError),
        (402, "BUDGET_EXCEEDED", BudgetExceededError),
        (403, "SELF_APPROVAL_FORBIDDEN", PermissionDeniedError),
        (409, "APPROVAL_CONFLICT", ConflictError),
        (503, "BACKEND_UNAVAILABLE", BackendUnavailableError),
        # codes this SDK does not know yet fall back to the HTTP status
        (401, "KEY_REVOKED", AuthenticationError),
        (403, "QUOTA_GONE", PermissionDeniedError),
        (404, "GONE_AWAY", NotFoundError),
        (409, "NEW_CONFLICT", ConflictError),
        (422, "NEW_INVALID", ValidationError),
        (429, "SLOW_DOWN", RateLimitError),
        (500, "INTERNAL", ServerError),
        (418, "TEAPOT", QCOSError),
    ],
)
def test_code_and_status_mapping(status, code, cls):
    err = error_from_response(status, envelope(code, field="x"))
    assert type(err) is cls
    assert (err.code, err.status_code, err.details) == (code, status, {"field": "x"})
    assert err.message == f"{code} happened"
    assert str(err) == f"{code}: {code} happened"


def test_non_json_body_still_readable():
    err = error_from_response(502, None, "<html>\n  Bad   gateway\n</html>", "Bad Gateway")
    assert type(err) is ServerError
    assert err.code == "HTTP_502"
    assert err.message == "HTTP 502 Bad Gateway: <html> Bad gateway </html>"


def test_json_without_envelope_uses_status():
    err = error_from_response(404, {"detail": "Not found."}, '{"detail": "Not found."}', "Not Found")
    assert type(err) is NotFoundError and err.code == "HTTP_404"
    assert "Not found." in err.message
