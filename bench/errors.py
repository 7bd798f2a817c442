"""The benchmarking API's error codes (the seed's table plus our own), rendered by the one
error handler as ``{"error": {"code", "message", "details"}}``. Codes are contract: never rename."""

from __future__ import annotations

from qcos.errors import NotFound, QCOSError


class BenchmarkNotFound(NotFound):
    """No such benchmark in the caller's tenant (another tenant's is answered the same way)."""

    code = "BENCHMARK_NOT_FOUND"


class BenchmarkStillRunning(QCOSError):
    """The seed answers a report asked for too early with 202 and this code."""

    code = "BENCHMARK_STILL_RUNNING"
    http_status = 202


class BenchmarkFailed(QCOSError):
    """The run ended without a report (``details`` carry the failure's code and message)."""

    code = "BENCHMARK_FAILED"
    http_status = 409


class InvalidWorkload(QCOSError):
    code = "INVALID_WORKLOAD"


class BackendUnavailable(QCOSError):
    """Unknown or offline backend: the seed's code and status (503)."""

    code = "BACKEND_UNAVAILABLE"
    http_status = 503


class BackendTooSmall(QCOSError):
    code = "BACKEND_TOO_SMALL"


class VerificationFailed(QCOSError):
    code = "VERIFICATION_FAILED"
