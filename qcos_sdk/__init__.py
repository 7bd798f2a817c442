"""Python SDK for QCOS, the governance layer for quantum computing jobs.

Importable without Django (it only talks HTTP, and evidence bundles are
verified by the Django-free ``ledger.crypto``), so it can be installed on user
machines that never run the server. ``EvidenceBundle`` is ``ledger.crypto``'s,
with ``save()`` choosing JSON or the zip layout by file suffix.
"""

from ledger.crypto import BundleFormatError, KeyRingError

from ._version import __version__
from .client import DEFAULT_BASE_URL, Namespace, QCOSClient
from .errors import (
    AuthenticationError,
    BackendUnavailableError,
    BudgetExceededError,
    ConfigurationError,
    ConflictError,
    InvalidCircuitError,
    NotFoundError,
    PermissionDeniedError,
    QCOSConnectionError,
    QCOSError,
    QCOSTimeoutError,
    RateLimitError,
    ServerError,
    ValidationError,
)
from .ledger import (
    AuditEntry,
    AuditVerification,
    BundleVerification,
    ConsistencyProof,
    EvidenceBundle,
    InclusionProof,
    KeyRing,
    Ledger,
    RegistryCheck,
    RegistryLeaf,
    VerificationReport,
)
from .models import (
    BudgetCheck,
    CostEstimate,
    TERMINAL_STATUSES,
    CostBreakdown,
    Job,
    JobError,
    JobResult,
    JobStatus,
    JobTimings,
)

__all__ = [
    "BudgetCheck",
    "BudgetExceededError",
    "CostEstimate",
    "__version__",
    "DEFAULT_BASE_URL",
    "Namespace",
    "QCOSClient",
    "AuthenticationError",
    "ConfigurationError",
    "ConflictError",
    "InvalidCircuitError",
    "NotFoundError",
    "PermissionDeniedError",
    "QCOSConnectionError",
    "QCOSError",
    "QCOSTimeoutError",
    "RateLimitError",
    "ServerError",
    "BackendUnavailableError",
    "ValidationError",
    "TERMINAL_STATUSES",
    "CostBreakdown",
    "Job",
    "JobError",
    "JobResult",
    "JobStatus",
    "JobTimings",
    "AuditEntry",
    "AuditVerification",
    "BundleFormatError",
    "BundleVerification",
    "ConsistencyProof",
    "EvidenceBundle",
    "InclusionProof",
    "KeyRing",
    "KeyRingError",
    "Ledger",
    "RegistryCheck",
    "RegistryLeaf",
    "VerificationReport",
]
