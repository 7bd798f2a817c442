"""``client.bench``: the Benchmarking API (``/api/v2/bench``) from Python.

    benchmark = client.bench.run(backend="ibm_brisbane", workloads=["ghz_5q", "ghz_10q"], shots=4096)
    report = benchmark.wait()
    for workload in report.workloads:
        print(f"{workload.id}: fidelity={workload.fidelity:.3f}")

Reports verify offline with :func:`bench.report.verify_report`, the code the server runs
(Django-free, like ``ledger.crypto``): ``report.verify(keyring)`` or ``client.bench.verify(report,
offline=True)``; without ``offline`` the server checks it with its own key ring.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import requests

from .errors import ConfigurationError, QCOSConnectionError, QCOSError, QCOSTimeoutError, error_from_response
from .ledger import EvidenceBundle, KeyRing
from .models import Record

__all__ = [
    "Bench",
    "BenchReport",
    "BenchVerification",
    "BenchmarkHandle",
    "BenchmarkProgress",
    "WorkloadInfo",
    "WorkloadResult",
]

BENCH_PREFIX = "/api/v2/bench"
V3_PREFIX = "/bench"
STILL_RUNNING = "BENCHMARK_STILL_RUNNING"
POLL_INITIAL_S = 0.1
POLL_MAX_S = 2.0


class WorkloadInfo(Record):
    """A catalogue entry: ``id``, ``type``, ``description``, ``qubits``, ``version``."""

    _fields = frozenset({"id", "type", "description", "qubits", "version"})


class WorkloadResult(Record):
    """One workload of a report: the seed's fields plus the other fidelity estimators."""

    _fields = frozenset({
        "id", "type", "qubits", "fidelity", "execution_time_ms", "gate_count", "depth", "fidelity_metric",
        "hellinger_fidelity", "normalized_fidelity", "state_fidelity_lower_bound", "stderr",
        "entanglement_certified", "execution_time_source", "logical", "transpiled", "seeds",
    })


class BenchSummary(Record):
    _fields = frozenset({"total_workloads", "average_fidelity", "total_execution_time_ms", "average_fidelity_metric"})


class BenchReport(Record):
    """A signed benchmark report (the ``report`` object of ``GET /report/{id}``)."""

    _fields = frozenset({
        "id", "created_at", "backend_id", "summary", "dev_mode", "warning", "shots", "seed", "content_hash",
        "evidence_hash", "signature", "cost", "backend", "tenant_id", "project", "bundle_id",
    })
    _nested: ClassVar[dict[str, type[Record]]] = {"summary": BenchSummary}

    @property
    def workloads(self) -> list[WorkloadResult]:
        return [WorkloadResult(row) for row in self._data.get("workloads", [])]

    def verify(self, keyring: KeyRing | None = None) -> BenchVerification:
        """Offline: content hash, evidence hash and signature (pin ``keyring`` to prove origin)."""
        from bench.report import verify_report

        return BenchVerification(verify_report(self._data, keyring).to_dict())

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"report": self._data}, indent=2, ensure_ascii=False) + "\n",
                              encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> BenchReport:
        """From a saved report, a download (``{"report": …}``) or a bare report JSON file."""
        from bench.report import extract_report

        document = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(extract_report(document)[0])


class BenchVerification(Record):
    """The seed's verify answer: ``status``, ``report_id``, ``content_hash_valid``,
    ``evidence_hash_valid``, ``signature_present``, ``signature_valid``, ``warnings``, ``error``
    (plus ``failures``, naming each bad hash)."""

    _fields = frozenset({"status", "report_id", "content_hash_valid", "evidence_hash_valid", "signature_present",
                         "signature_valid", "keys_pinned", "failures", "warnings", "error"})

    @property
    def is_valid(self) -> bool:
        return self._data.get("status") == "valid"


class BenchmarkProgress(Record):
    """Where a run stands while it has no report: ``status``, ``completed_workloads``,
    ``total_workloads``."""

    _fields = frozenset({"benchmark_id", "status", "completed_workloads", "total_workloads"})


class BenchmarkHandle(Record):
    """The 202 answer to ``run``: ``benchmark_id``, ``status``, ``estimated_time_seconds``,
    ``message``, ``warning`` (DEV MODE), …; ``wait()`` returns the report."""

    _fields = frozenset({"benchmark_id", "status", "estimated_time_seconds", "message", "warning", "backend_id",
                         "workloads", "shots", "seed", "dev_mode", "estimated_cost_usd"})

    def __init__(self, data: Mapping[str, Any], bench: Bench | None = None) -> None:
        super().__init__(data)
        object.__setattr__(self, "_bench", bench)

    def wait(self, timeout: float = 600.0,
             on_progress: Callable[[BenchmarkProgress], None] | None = None) -> BenchReport:
        """Poll until the report exists; raises QCOSTimeoutError (with ``job_id`` = the benchmark
        id) after ``timeout`` seconds, or the server's error (``BENCHMARK_FAILED``)."""
        if self._bench is None:
            raise QCOSError("NOT_BOUND", "this handle was not created by a client")
        return self._bench.wait(self.benchmark_id, timeout=timeout, on_progress=on_progress)

    def progress(self) -> BenchmarkProgress | BenchReport:
        if self._bench is None:
            raise QCOSError("NOT_BOUND", "this handle was not created by a client")
        return self._bench.poll(self.benchmark_id)


class Bench:
    """Grouped benchmarking endpoints; built by :class:`~qcos_sdk.client.QCOSClient`."""

    def __init__(self, request) -> None:
        self._request = request
        self._client = getattr(request, "__self__", None)

    def _url(self, path: str) -> str:
        base = self._client.base_url if self._client is not None else ""
        return f"{base}{path}"

    # ------------------------------------------------------------------ runs
    def workloads(self) -> list[WorkloadInfo]:
        return [WorkloadInfo(w) for w in self._request("GET", self._url(f"{BENCH_PREFIX}/workloads"))["workloads"]]

    def run(self, backend: str, workloads: Sequence[str] | None = None, shots: int = 1024, seed: int | None = None,
            project: str | None = None, idempotency_key: str | None = None) -> BenchmarkHandle:
        """Queue a benchmark (the seed's ``POST /run``); safe to retry with the same key."""
        body: dict[str, Any] = {"backend_id": backend, "shots": shots}
        if workloads is not None:
            body["workloads"] = list(workloads)
        if seed is not None:
            body["seed"] = seed
        if project:
            body["project"] = project
        key = idempotency_key or str(uuid.uuid4())
        data = self._request("POST", self._url(f"{BENCH_PREFIX}/run"), json=body,
                             headers={"Idempotency-Key": key}, retry=True)
        return BenchmarkHandle(data, self)

    def poll(self, benchmark_id: str) -> BenchmarkProgress | BenchReport:
        """The report when it exists, else the run's progress (``BENCHMARK_STILL_RUNNING``)."""
        body = self._request("GET", self._url(f"{BENCH_PREFIX}/report/{quote(str(benchmark_id), safe='')}"))
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and error.get("code") == STILL_RUNNING:
            return BenchmarkProgress(error.get("details") or {"benchmark_id": benchmark_id})
        return BenchReport(body["report"])

    def get_report(self, benchmark_id: str) -> BenchReport:
        """The report; raises QCOSError(BENCHMARK_STILL_RUNNING) when it is not ready yet."""
        answer = self.poll(benchmark_id)
        if isinstance(answer, BenchmarkProgress):
            raise QCOSError(STILL_RUNNING, f"benchmark {benchmark_id} is {answer.status}", answer.raw, 202)
        return answer

    def wait(self, benchmark_id: str, timeout: float = 600.0,
             on_progress: Callable[[BenchmarkProgress], None] | None = None) -> BenchReport:
        deadline = time.monotonic() + timeout
        delay = POLL_INITIAL_S
        while True:
            answer = self.poll(benchmark_id)
            if isinstance(answer, BenchReport):
                return answer
            if on_progress is not None:
                on_progress(answer)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise QCOSTimeoutError(f"benchmark {benchmark_id} still {answer.status} after {timeout:g}s",
                                       job_id=str(benchmark_id), last_status=answer.status, timeout=timeout)
            time.sleep(min(delay, remaining))
            delay = min(delay * 1.5, POLL_MAX_S)

    def download(self, benchmark_id: str, path: str | Path | None = None) -> dict[str, Any]:
        """The download document (report, public keys, the fidelity-vs-qubits SVG); written to
        ``path`` when given."""
        document = self._request("GET", self._url(f"{BENCH_PREFIX}/report/{quote(str(benchmark_id), safe='')}/download"))
        if isinstance(document, dict) and "error" in document:
            raise error_from_response(202, document)
        if path is not None:
            Path(path).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return document

    def compare(self, benchmark_ids: Sequence[str]) -> dict[str, Any]:
        return self._request("GET", self._url(f"{BENCH_PREFIX}/compare"), params={"ids": ",".join(benchmark_ids)})

    def evidence(self, benchmark_id: str) -> EvidenceBundle:
        """The Bench V3 evidence bundle, verifiable with ``.verify(keyring)``."""
        return EvidenceBundle.load(self._request("GET", self._url(f"{V3_PREFIX}/evidence/{quote(str(benchmark_id), safe='')}")))

    # ------------------------------------------------------------ verification
    def verify(self, report: BenchReport | Mapping[str, Any] | str | Path, *, offline: bool = False,
               keyring: KeyRing | None = None) -> BenchVerification:
        """Verify a report (object, dict, or a JSON file path). ``offline`` runs the shared
        verifier locally (with ``keyring`` pinned, else the document's own keys and a warning);
        otherwise the server verifies it against its key ring. A failed check is a result
        (``status == "invalid"``), not an exception."""
        if isinstance(report, (str, Path)):
            document: Any = json.loads(Path(report).read_text(encoding="utf-8"))
        elif isinstance(report, Record):
            document = report.raw
        else:
            document = dict(report)
        if offline:
            from bench.report import verify_report

            return BenchVerification(verify_report(document, keyring).to_dict())
        from bench.report import extract_report

        body = {"report": extract_report(document)[0]}
        return BenchVerification(self._post_verify(body))

    def _post_verify(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /verify keeping the seed's fields of a 400 VERIFICATION_FAILED answer."""
        client = self._client
        if client is None:
            return self._request("POST", self._url(f"{BENCH_PREFIX}/verify"), json=body)
        if not client.api_key:
            raise ConfigurationError("MISSING_API_KEY", "no API key: pass api_key=... or set QCOS_API_KEY")
        try:
            response = client._session.post(
                self._url(f"{BENCH_PREFIX}/verify"), json=body, timeout=client.request_timeout,
                headers={"Authorization": f"Bearer {client.api_key}"})
        except requests.RequestException as exc:
            raise QCOSConnectionError(message=f"cannot reach QCOS at {client.base_url}: {exc}") from exc
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.ok or (response.status_code == 400 and isinstance(data, dict) and "status" in data):
            return data
        raise error_from_response(response.status_code, data, response.text, response.reason or "")
