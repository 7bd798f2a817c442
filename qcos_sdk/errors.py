"""Exception hierarchy for the QCOS SDK.

The server always answers errors as ``{"error": {"code", "message", "details"}}``.
Callers branch on the exception *type* for the broad category (auth, not found,
conflict...) and on ``.code`` for the stable machine-readable reason, so both
are preserved here. Responses that are not in that shape (a proxy's HTML 502,
an empty body) still produce a readable message instead of a decode error.
"""

from __future__ import annotations

from typing import Any, Mapping


class QCOSError(Exception):
    """Base class for every error raised by the SDK.

    Attributes mirror the server's error envelope plus the HTTP status, which
    is ``None`` for errors raised before or without an HTTP response.
    """

    default_code = "QCOS_ERROR"

    def __init__(
        self,
        code: str | None = None,
        message: str = "",
        details: Mapping[str, Any] | None = None,
        status_code: int | None = None,
    ) -> None:
        self.code: str = code or self.default_code
        self.message: str = message
        self.details: dict[str, Any] = dict(details or {})
        self.status_code: int | None = status_code
        super().__init__(f"{self.code}: {message}" if message else self.code)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
            f"status_code={self.status_code!r})"
        )


class ConfigurationError(QCOSError):
    """The client is missing something it needs (for example the API key)."""

    default_code = "CONFIGURATION_ERROR"


class AuthenticationError(QCOSError):
    """HTTP 401: the API key is missing, unknown or revoked."""

    default_code = "UNAUTHENTICATED"


class PermissionDeniedError(QCOSError):
    """HTTP 403: the key is valid but not allowed to do this (incl. TENANT_MISMATCH)."""

    default_code = "PERMISSION_DENIED"


class NotFoundError(QCOSError):
    """HTTP 404: the job (or other resource) does not exist for this tenant."""

    default_code = "NOT_FOUND"


class ValidationError(QCOSError):
    """HTTP 400/422: the request was rejected as invalid; see ``details``."""

    default_code = "VALIDATION_ERROR"


class InvalidCircuitError(ValidationError):
    """The circuit failed to parse; ``line``/``column`` point at the problem."""

    default_code = "INVALID_CIRCUIT"

    @property
    def line(self) -> int | None:
        """1-based line of the parse error, when the server reported one."""
        return self.details.get("line")

    @property
    def column(self) -> int | None:
        """1-based column of the parse error, when the server reported one."""
        return self.details.get("column")


class ConflictError(QCOSError):
    """HTTP 409: e.g. IDEMPOTENCY_CONFLICT or JOB_NOT_CANCELLABLE."""

    default_code = "CONFLICT"


class BudgetExceededError(QCOSError):
    """HTTP 402 BUDGET_EXCEEDED: a ``block`` budget would be overspent; nothing was submitted.
    ``details`` name the window (``day``, ``month``, ``per_job``), its limit and what remains."""

    default_code = "BUDGET_EXCEEDED"


class RateLimitError(QCOSError):
    """HTTP 429: slow down; the server may say when via Retry-After."""

    default_code = "RATE_LIMITED"


class ServerError(QCOSError):
    """HTTP 5xx that survived the client's retries."""

    default_code = "SERVER_ERROR"


class BackendUnavailableError(ServerError):
    """HTTP 503 ``BACKEND_UNAVAILABLE``: the backend named is not one QCOS can run on (the
    Benchmarking API's code for an unknown or unreachable backend). Retrying the same request will
    not help; ``details["available"]`` lists the backends that can. A ``ServerError`` too, so
    existing handlers still catch it."""

    default_code = "BACKEND_UNAVAILABLE"


class QCOSConnectionError(QCOSError):
    """The server could not be reached (DNS, refused, reset, request timeout)."""

    default_code = "CONNECTION_ERROR"


class QCOSTimeoutError(QCOSError):
    """The job did not reach a terminal status within the caller's timeout.

    The job keeps running server-side, so ``job_id`` is carried to let the
    caller resume waiting or cancel it.
    """

    default_code = "TIMEOUT"

    def __init__(
        self,
        message: str = "",
        *,
        job_id: str | None = None,
        last_status: str | None = None,
        timeout: float | None = None,
    ) -> None:
        super().__init__(
            self.default_code,
            message,
            {"job_id": job_id, "last_status": last_status, "timeout": timeout},
        )
        self.job_id = job_id
        self.last_status = last_status
        self.timeout = timeout


# Stable server codes take precedence over the HTTP status: they are the
# documented contract, while statuses may be shared by unrelated codes.
_CODE_TO_CLASS: dict[str, type[QCOSError]] = {
    "UNAUTHENTICATED": AuthenticationError,
    "PERMISSION_DENIED": PermissionDeniedError,
    "TENANT_MISMATCH": PermissionDeniedError,
    "NOT_FOUND": NotFoundError,
    "INVALID_CIRCUIT": InvalidCircuitError,
    "UNKNOWN_BACKEND": ValidationError,
    "UNKNOWN_PROJECT": ValidationError,
    "VALIDATION_ERROR": ValidationError,
    "IDEMPOTENCY_CONFLICT": ConflictError,
    "JOB_NOT_CANCELLABLE": ConflictError,
    "APPROVAL_CONFLICT": ConflictError,
    "BUDGET_EXCEEDED": BudgetExceededError,
    "SELF_APPROVAL_FORBIDDEN": PermissionDeniedError,
    "NOT_AN_APPROVER": PermissionDeniedError,
    "APPROVAL_REQUIRED": PermissionDeniedError,
    "BACKEND_UNAVAILABLE": BackendUnavailableError,
}

_STATUS_TO_CLASS: dict[int, type[QCOSError]] = {
    400: ValidationError,
    401: AuthenticationError,
    402: BudgetExceededError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitError,
}


def error_class_for(code: str | None, status_code: int | None) -> type[QCOSError]:
    """Pick the exception class for a server error code and/or HTTP status."""
    if code and code in _CODE_TO_CLASS:
        return _CODE_TO_CLASS[code]
    if status_code is not None:
        if status_code in _STATUS_TO_CLASS:
            return _STATUS_TO_CLASS[status_code]
        if status_code >= 500:
            return ServerError
    return QCOSError


def error_from_response(
    status_code: int, body: Any, text: str = "", reason: str = ""
) -> QCOSError:
    """Build the exception for a non-2xx response.

    ``body`` is the decoded JSON (or ``None`` when the body was not JSON);
    ``text``/``reason`` are used to describe bodies outside the contract.
    """
    envelope = body.get("error") if isinstance(body, dict) else None
    if isinstance(envelope, dict):
        code = str(envelope.get("code") or f"HTTP_{status_code}")
        message = str(envelope.get("message") or reason or "request failed")
        details = envelope.get("details")
        details = details if isinstance(details, dict) else {}
    else:
        code = f"HTTP_{status_code}"
        snippet = " ".join(text.split())[:200]
        message = f"HTTP {status_code} {reason}".strip()
        if snippet:
            message = f"{message}: {snippet}"
        details = {}
    return error_class_for(code, status_code)(code, message, details, status_code)
