"""Domain errors with stable codes. Services raise these; the API renders them in the one shape
``{"error": {"code", "message", "details"}}``. Codes are part of the users' contract: never rename.
"""

from __future__ import annotations

from typing import Any


class QCOSError(Exception):
    code = "ERROR"
    http_status = 400

    def __init__(self, message: str, *, details: dict[str, Any] | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code is not None:
            self.code = code


class ValidationFailed(QCOSError):
    code = "VALIDATION_ERROR"


class InvalidCircuit(QCOSError):
    code = "INVALID_CIRCUIT"


class CircuitTooLarge(QCOSError):
    code = "CIRCUIT_TOO_LARGE"


class UnknownBackend(QCOSError):
    code = "UNKNOWN_BACKEND"


class InvalidShots(QCOSError):
    code = "INVALID_SHOTS"


class UnknownProject(QCOSError):
    code = "UNKNOWN_PROJECT"


class TenantMismatch(QCOSError):
    """The body names a tenant other than the key's. Same answer whether that tenant exists or not."""

    code = "TENANT_MISMATCH"
    http_status = 403


class PermissionDenied(QCOSError):
    code = "PERMISSION_DENIED"
    http_status = 403


class NotFound(QCOSError):
    code = "NOT_FOUND"
    http_status = 404


class Conflict(QCOSError):
    code = "CONFLICT"
    http_status = 409


class IdempotencyConflict(Conflict):
    code = "IDEMPOTENCY_CONFLICT"


class JobNotCancellable(Conflict):
    code = "JOB_NOT_CANCELLABLE"


class BudgetExceeded(QCOSError):
    """A budget whose policy is ``block`` would be exceeded. Nothing but the audit entry is kept."""

    code = "BUDGET_EXCEEDED"
    http_status = 402


class ApprovalRequired(QCOSError):
    """Raised where an approval cannot be waited for (e.g. a benchmark run)."""

    code = "APPROVAL_REQUIRED"
    http_status = 403


class SelfApprovalForbidden(QCOSError):
    code = "SELF_APPROVAL_FORBIDDEN"
    http_status = 403


class NotAnApprover(QCOSError):
    code = "NOT_AN_APPROVER"
    http_status = 403


class ApprovalConflict(Conflict):
    """The job is not (or no longer) waiting for a decision: another decision won."""

    code = "APPROVAL_CONFLICT"


class InvalidBudgetPolicy(QCOSError):
    code = "INVALID_BUDGET_POLICY"


class PricingFailed(QCOSError):
    code = "PRICING_ERROR"
