"""Evidence/registry routes for the fake QCOS API, with real signed bundles.

Extends ``conftest.Handler`` (jobs keep working, so ``client.execute`` then
``get_evidence_bundle`` runs end to end) without touching ``conftest.py``.
Everything cryptographic is real: keys are generated per test, bundles are
built and signed with :mod:`ledger.crypto`, the registry log is an RFC 9162
tree over real leaves and its checkpoints are signed C2SP notes.

Import the fixtures into a test module:
``from evidence_fixtures import evidence_api, evidence_env  # noqa: F401``.
"""

from __future__ import annotations

import copy
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from conftest import API_KEY, FakeState, Handler

from ledger.crypto import merkle
from ledger.crypto.archive import write_zip
from ledger.crypto.bundle import attach_registry, build_bundle, registry_leaf_hash, sign_bundle
from ledger.crypto.keyring import KeyRing
from ledger.crypto.note import sign_checkpoint
from ledger.crypto.signing import LocalSigner
from ledger.crypto.verify import verify_bundle

API = "/api/v2.1"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
LOG_ORIGIN = "registry.qcos.test/log"
REGISTERED_JOB = "job-0001"     # bundle carrying a registry block (leaf 12 of a 14-leaf tree)
UNATTACHED_JOB = "job-0002"     # registered later (leaf 14) but its bundle has no registry block
UNREGISTERED_JOB = "job-0003"   # signed, never registered
CURRENT_SIZE = 20               # the log kept growing after both registrations

CONTENTS: dict[str, Any] = {
    "circuit_submission": {
        "qasm": 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\n'
                "measure q -> c;\n",
        "format": "openqasm2",
        "submitted_by": "alice@alpha.example",
    },
    "execution_configuration": {"backend": "simulator", "shots": 1024, "seed": 7},
    "execution_result": {"counts": {"00": 517, "11": 507}, "success": True, "shots": 1024},
    "telemetry": {"queue_seconds": 0.25, "run_seconds": 1.5e-3, "worker": "w-1"},
    "calibration": {"calibration_id": "cal-20260101", "readout_error": 1e-7},
    "provenance": {"provenance_id": "prov-job-0001", "backend_id": "simulator",
                   "timestamp": "2026-01-01T01:00:00Z"},
    "audit_trail": [
        {"action": "JOB_SUBMITTED", "at": "2026-01-01T00:59:00Z", "by": "alice"},
        {"action": "JOB_COMPLETED", "at": "2026-01-01T01:00:02Z", "by": "worker"},
    ],
}


def signed_bundle(job_id: str, worker: LocalSigner, ledger: LocalSigner, ring: KeyRing) -> dict[str, Any]:
    bundle = build_bundle(
        job_id=job_id, tenant_id="research-alpha", items=copy.deepcopy(CONTENTS),
        bundle_id=f"bundle-{job_id}", created_at=T0 + timedelta(hours=1),
    )
    bundle = sign_bundle(bundle, worker, "worker", signed_at=T0 + timedelta(hours=1, minutes=1))
    bundle = sign_bundle(bundle, ledger, "ledger", signed_at=T0 + timedelta(hours=1, minutes=2))
    bundle["public_keys"] = ring.to_dict()  # unsigned convenience copy, as the server embeds it
    return bundle


@dataclass
class EvidenceState(FakeState):
    """FakeState plus the evidence world: keys, bundles and the registry log."""

    worker: LocalSigner = field(default_factory=LocalSigner.generate)
    ledger: LocalSigner = field(default_factory=LocalSigner.generate)
    log: LocalSigner = field(default_factory=LocalSigner.generate)
    keyring: KeyRing = field(default_factory=KeyRing)
    bundles: dict[str, dict[str, Any]] = field(default_factory=dict)   # by job id, as served
    leaves: list[bytes] = field(default_factory=list)                  # the log's leaf hashes
    leaf_of: dict[str, int] = field(default_factory=dict)              # bundle id -> leaf index
    verify_bodies: list[dict[str, Any]] = field(default_factory=list)
    fork: bool = False   # serve checkpoints/proofs of a rewritten log (leaf 3 replaced)

    def __post_init__(self) -> None:
        self.keyring.add_public_key(self.worker.public_key_der, T0, roles=["worker"])
        self.keyring.add_public_key(self.ledger.public_key_der, T0, roles=["ledger"])
        self.keyring.add_public_key(self.log.public_key_der, T0, roles=["log"])
        first = signed_bundle(REGISTERED_JOB, self.worker, self.ledger, self.keyring)
        second = signed_bundle(UNATTACHED_JOB, self.worker, self.ledger, self.keyring)
        third = signed_bundle(UNREGISTERED_JOB, self.worker, self.ledger, self.keyring)
        self.leaves = [merkle.leaf_hash(b"earlier entry %d" % i) for i in range(12)]
        self.leaf_of[first["bundle_id"]] = len(self.leaves)
        self.leaves += [registry_leaf_hash(first), merkle.leaf_hash(b"later entry")]
        size = len(self.leaves)  # 14: the checkpoint the first bundle was registered under
        first = attach_registry(
            first, leaf_index=12, tree_size=size, inclusion_proof=merkle.inclusion_proof(12, self.leaves),
            checkpoint=sign_checkpoint(LOG_ORIGIN, size, merkle.root(self.leaves), self.log),
        )
        self.leaf_of[second["bundle_id"]] = len(self.leaves)
        self.leaves.append(registry_leaf_hash(second))
        while len(self.leaves) < CURRENT_SIZE:
            self.leaves.append(merkle.leaf_hash(b"newer entry %d" % len(self.leaves)))
        self.bundles = {REGISTERED_JOB: first, UNATTACHED_JOB: second, UNREGISTERED_JOB: third}

    def served_leaves(self) -> list[bytes]:
        if not self.fork:
            return self.leaves
        forked = list(self.leaves)
        forked[3] = merkle.leaf_hash(b"rewritten history")
        return forked

    def checkpoint(self) -> str:
        leaves = self.served_leaves()
        return sign_checkpoint(LOG_ORIGIN, len(leaves), merkle.root(leaves), self.log)


class EvidenceHandler(Handler):
    state: EvidenceState

    def _send_bytes(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        route = path.removeprefix(API)
        evidence = route.startswith("/jobs/") and route.endswith("/evidence")
        if not (evidence or route.startswith(("/ledger/", "/registry/"))):
            return super().do_GET()
        self._record()
        if not self._authorized():
            return
        accept = self.headers.get("Accept", "*/*")
        if not any(t in accept for t in ("application/json", "*/*")):  # as DRF's JSON-only negotiation
            return self._error(406, "NOT_ACCEPTABLE", f"cannot satisfy Accept: {accept}")
        st = self.state
        if evidence:
            job_id = unquote(route.removeprefix("/jobs/").removesuffix("/evidence"))
            bundle = st.bundles.get(job_id)
            if bundle is None:
                return self._error(404, "NOT_FOUND", f"job {job_id} has no evidence bundle")
            if query.get("format") == ["zip"]:
                buffer = io.BytesIO()
                write_zip(bundle, buffer)  # type: ignore[arg-type]  # ZipFile takes a file object
                return self._send_bytes(200, buffer.getvalue(), "application/zip")
            return self._send(200, bundle)
        if route == "/ledger/keys":
            return self._send(200, st.keyring.to_dict())
        if route == "/registry/checkpoint":
            # No charset on purpose: the SDK must still decode the em dash as UTF-8.
            return self._send_bytes(200, st.checkpoint().encode("utf-8"), "text/plain")
        leaves = st.served_leaves()
        if route == "/registry/proof/inclusion":
            index, size = int(query["leaf_index"][0]), int(query["tree_size"][0])
            proof = merkle.inclusion_proof(index, leaves[:size])
            return self._send(200, {"leaf_index": index, "tree_size": size,
                                    "inclusion_proof": [p.hex() for p in proof],
                                    "root": merkle.root(leaves[:size]).hex()})
        if route == "/registry/proof/consistency":
            first, second = int(query["first"][0]), int(query["second"][0])
            proof = merkle.consistency_proof(first, leaves[:second])
            return self._send(200, {"first": first, "second": second,
                                    "consistency_proof": [p.hex() for p in proof]})
        if route.startswith("/registry/leaves/"):
            bundle_id = unquote(route.removeprefix("/registry/leaves/"))
            index = st.leaf_of.get(bundle_id)
            return self._send(200, {
                "bundle_id": bundle_id, "leaf_index": index,
                "leaf_hash": leaves[index].hex() if index is not None else None,
                "registered_at": "2026-01-01T01:03:00Z" if index is not None else None,
            })
        return self._error(404, "NOT_FOUND", "no such endpoint")

    def do_POST(self) -> None:
        if urlsplit(self.path).path != f"{API}/ledger/bundles/verify":
            return super().do_POST()
        self._record()
        if not self._authorized():
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        st = self.state
        with st.lock:
            st.verify_bodies.append(body)
        if "bundle" in body:
            bundle = body["bundle"]
        else:
            bundle = next((b for b in st.bundles.values() if b["bundle_id"] == body.get("bundle_id")), None)
            if bundle is None:
                return self._error(404, "NOT_FOUND", f"bundle {body.get('bundle_id')} not found")
        report = verify_bundle(bundle, st.keyring, log_origin=LOG_ORIGIN)
        index = st.leaf_of.get(bundle.get("bundle_id"))
        registered = index is not None and body.get("check_registry", False)
        self._send(200, {
            "bundle_id": bundle.get("bundle_id"), **report.to_dict(),
            "registered": bool(registered),
            "registration_date": "2026-01-01T01:03:00Z" if registered else None,
            "certificate_id": f"cert-{bundle.get('bundle_id')}" if registered else None,
            "leaf_index": index if registered else None,
            "tree_size": len(st.leaves) if registered else None,
        })


@pytest.fixture()
def evidence_api() -> Iterator[EvidenceState]:
    """The fake API plus evidence/registry routes, on a free 127.0.0.1 port."""
    from http.server import ThreadingHTTPServer

    state = EvidenceState()
    handler = type("EvidenceBoundHandler", (EvidenceHandler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture()
def evidence_env(monkeypatch: pytest.MonkeyPatch, evidence_api: EvidenceState) -> EvidenceState:
    monkeypatch.setenv("QCOS_API_KEY", API_KEY)
    monkeypatch.setenv("QCOS_BASE_URL", evidence_api.base_url)
    return evidence_api
