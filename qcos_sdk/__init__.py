"""Python SDK for QCOS, the governance layer for quantum computing jobs.

Importable without Django (it only talks HTTP), so it can be installed on
user machines that never run the server.
"""

from ._version import __version__
from .client import DEFAULT_BASE_URL, Namespace, QCOSClient
from .errors import (
    AuthenticationError,
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
from .models import (
    TERMINAL_STATUSES,
    CostBreakdown,
    Job,
    JobError,
    JobResult,
    JobStatus,
    JobTimings,
)

__all__ = [
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
    "ValidationError",
    "TERMINAL_STATUSES",
    "CostBreakdown",
    "Job",
    "JobError",
    "JobResult",
    "JobStatus",
    "JobTimings",
]
