"""A tiny in-memory QCOS API served over real HTTP for SDK/CLI tests.

It implements just enough of the /api/v2.1 contract to exercise the client
end to end (auth header, error envelope, idempotency, polling, pagination)
without Django, so these tests run with ``-p no:django`` too.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

API_KEY = "test-key-alpha"
PREFIX = "/api/v2.1/jobs"
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "REJECTED"}


@dataclass
class FakeState:
    """Server-side knobs and recordings, shared with the tests."""

    base_url: str = ""
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_key: dict[str, str] = field(default_factory=dict)
    idempotency_keys: list[str | None] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    fail_next_posts: int = 0          # answer this many POST /jobs with 503 first
    fail_body_json: bool = False      # 503 body: error envelope vs. plain text
    statuses: list[str] = field(default_factory=lambda: ["QUEUED", "RUNNING", "COMPLETED"])
    final_status: str = "COMPLETED"   # what the COMPLETED step becomes (e.g. FAILED)
    counts: dict[str, int] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def make_job(self, body: dict[str, Any], tenant: str) -> dict[str, Any]:
        job_id = f"job-{len(self.jobs) + 1:04d}"
        ledger = body.get("ledger") or {}
        job = {
            "job_id": job_id, "status": "QUEUED", "tenant_id": ledger.get("tenant_id", tenant),
            "project": ledger.get("project", "default"), "backend": body["backend"],
            "shots": body["shots"], "priority": body.get("priority", "standard"),
            "tags": ledger.get("tags", {}), "ledger_enabled": bool(ledger.get("enabled")),
            "circuit_hash": "sha256:" + hashlib.sha256(body["circuit"].encode()).hexdigest(),
            "counts": None, "attempts": 1, "error": None,
            "timings": {"submitted_at": "2025-01-01T00:00:00Z", "started_at": None,
                        "completed_at": None, "queue_ms": None, "execution_ms": None,
                        "total_ms": None},
            "provenance_id": None, "cost_usd": None, "cost_breakdown": None,
            "warning": f"DEV MODE: {body['backend']} is simulated locally" if body["backend"].startswith("ibm_") else None,
            "_polls": 0,
        }
        self.jobs[job_id] = job
        return job

    def advance(self, job: dict[str, Any]) -> None:
        """Each GET moves a live job one step along ``statuses``."""
        if job["status"] in TERMINAL:
            return
        step = min(job["_polls"], len(self.statuses) - 1)
        job["_polls"] += 1
        status = self.statuses[step]
        if status == "COMPLETED":
            status = self.final_status
        job["status"] = status
        if status == "COMPLETED":
            shots = job["shots"]
            job["counts"] = self.counts or {"00": shots // 2, "11": shots - shots // 2}
            job["provenance_id"] = "prov-" + job["job_id"]
            job["cost_usd"] = "0.0120"
            job["cost_breakdown"] = {"queue": "0.0010", "compute": "0.0100", "storage": "0.0010"}
        elif status == "FAILED":
            job["error"] = {"code": "BACKEND_ERROR", "message": "simulated backend crash"}


def public(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if not k.startswith("_")}


class Handler(BaseHTTPRequestHandler):
    state: FakeState  # set per server in the fixture

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, payload: Any, raw: bytes | None = None) -> None:
        body = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if raw is not None else "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, **details: Any) -> None:
        self._send(status, {"error": {"code": code, "message": message, "details": details}})

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        key = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else self.headers.get("X-API-Key")
        if key != API_KEY:
            self._error(401, "UNAUTHENTICATED", "invalid or missing API key")
            return False
        return True

    def _record(self) -> None:
        with self.state.lock:
            self.state.requests.append(
                {"method": self.command, "path": self.path, "headers": dict(self.headers)}
            )

    def do_GET(self) -> None:
        self._record()
        if not self._authorized():
            return
        url = urlsplit(self.path)
        if url.path == PREFIX:
            return self._list(parse_qs(url.query))
        job_id = url.path.removeprefix(PREFIX + "/")
        with self.state.lock:
            job = self.state.jobs.get(job_id)
            if job is None or "/" in job_id:
                return self._error(404, "NOT_FOUND", f"job {job_id} not found")
            self.state.advance(job)
            self._send(200, public(job))

    def _list(self, query: dict[str, list[str]]) -> None:
        limit = int(query.get("limit", ["20"])[0])
        offset = int(query.get("offset", ["0"])[0])
        with self.state.lock:
            jobs = [public(j) for j in self.state.jobs.values()]
        for name in ("status", "project", "backend"):
            if name in query:
                jobs = [j for j in jobs if j[name] == query[name][0]]
        for tag in query.get("tag", []):
            k, _, v = tag.partition("=")
            jobs = [j for j in jobs if j["tags"].get(k) == v]
        page = jobs[offset: offset + limit]
        base = {k: v for k, v in query.items() if k not in ("limit", "offset")}

        def link(off: int) -> str:
            q = urlencode({**base, "limit": [str(limit)], "offset": [str(off)]}, doseq=True)
            return f"{self.state.base_url}{PREFIX}?{q}"

        self._send(200, {
            "count": len(jobs),
            "next": link(offset + limit) if offset + limit < len(jobs) else None,
            "previous": link(max(offset - limit, 0)) if offset else None,
            "results": page,
        })

    def do_POST(self) -> None:
        self._record()
        if not self._authorized():
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        path = urlsplit(self.path).path
        if path == PREFIX:
            return self._submit(body)
        if path.startswith(PREFIX + "/") and path.endswith("/cancel"):
            job_id = path.removeprefix(PREFIX + "/").removesuffix("/cancel")
            with self.state.lock:
                job = self.state.jobs.get(job_id)
                if job is None:
                    return self._error(404, "NOT_FOUND", f"job {job_id} not found")
                if job["status"] in TERMINAL:
                    return self._error(409, "JOB_NOT_CANCELLABLE", f"job is {job['status']}")
                job["status"] = "CANCELLED"
                return self._send(200, public(job))
        self._error(404, "NOT_FOUND", "no such endpoint")

    def _submit(self, body: dict[str, Any]) -> None:
        key = self.headers.get("Idempotency-Key")
        with self.state.lock:
            self.state.idempotency_keys.append(key)
            self.state.bodies.append(body)
            if self.state.fail_next_posts > 0:
                self.state.fail_next_posts -= 1
                if self.state.fail_body_json:
                    return self._error(503, "UNAVAILABLE", "try again")
                return self._send(503, None, raw=b"<html>Service Unavailable</html>")
            if "syntax-error" in body.get("circuit", ""):
                return self._error(400, "INVALID_CIRCUIT", "unexpected token", line=3, column=7)
            if body.get("backend") not in {"simulator", "ibm_brisbane"}:
                return self._error(400, "UNKNOWN_BACKEND", f"unknown backend {body.get('backend')!r}")
            if key and key in self.state.by_key:
                return self._send(202, public(self.state.jobs[self.state.by_key[key]]))
            job = self.state.make_job(body, tenant="research-alpha")
            if key:
                self.state.by_key[key] = job["job_id"]
            self._send(202, public(job))


@pytest.fixture()
def fake_api() -> Iterator[FakeState]:
    """Start the fake API on a free 127.0.0.1 port for one test."""
    state = FakeState()
    handler = type("BoundHandler", (Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture()
def sdk_api_key() -> str:
    return API_KEY


@pytest.fixture()
def sdk_env(monkeypatch: pytest.MonkeyPatch, fake_api: FakeState) -> FakeState:
    """Point QCOS_* env vars at the fake server (what CLI users normally do)."""
    monkeypatch.setenv("QCOS_API_KEY", API_KEY)
    monkeypatch.setenv("QCOS_BASE_URL", fake_api.base_url)
    return fake_api
