"""Keys, a pinned key ring and a fully signed, registered evidence bundle.

Plain pytest fixtures: nothing here touches Django or a database.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.crypto import merkle
from ledger.crypto.bundle import attach_registry, build_bundle, registry_leaf_hash, sign_bundle
from ledger.crypto.keyring import KeyRing
from ledger.crypto.note import sign_checkpoint
from ledger.crypto.signing import LocalSigner

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LOG_ORIGIN = "ledger.qcos.example/log"

CONTENTS: dict[str, Any] = {
    "circuit_submission": {
        "qasm": (
            'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nbit[2] c;\n'
            "h q[0];\ncx q[0], q[1];\nc = measure q;\n"
        ),
        "format": "openqasm3",
        "submitted_by": "alice@alpha.example",
    },
    "execution_configuration": {"backend": "aer_simulator", "shots": 1024, "seed": 7, "optimization_level": 1},
    "execution_result": {"counts": {"00": 517, "11": 507}, "success": True, "shots": 1024},
    "telemetry": {"queue_seconds": 0.25, "run_seconds": 1.5e-3, "worker": "w-1"},
    "calibration": {"calibration_id": "cal-20260104", "t1_us": [101.5, 99.0], "readout_error": 1e-7},
    "provenance": {
        "provenance_id": "prov-2026-abc123",
        "circuit_hash": "sha256:" + "a" * 64,
        "backend_id": "aer_simulator",
        "timestamp": "2026-01-01T01:00:00Z",
        "execution_environment": {"sdk_version": "2.1.0", "backend_version": "0.17"},
    },
    "audit_trail": [
        {"action": "JOB_SUBMITTED", "at": "2026-01-01T00:59:00Z", "by": "alice"},
        {"action": "JOB_COMPLETED", "at": "2026-01-01T01:00:02Z", "by": "worker"},
    ],
}


@pytest.fixture(scope="session")
def worker_key() -> LocalSigner:
    return LocalSigner.generate()


@pytest.fixture(scope="session")
def ledger_key() -> LocalSigner:
    return LocalSigner.generate()


@pytest.fixture(scope="session")
def log_key() -> LocalSigner:
    return LocalSigner.generate()


@pytest.fixture
def keyring(worker_key: LocalSigner, ledger_key: LocalSigner, log_key: LocalSigner) -> KeyRing:
    ring = KeyRing()
    ring.add_public_key(worker_key.public_key_der, T0, roles=["worker"])
    ring.add_public_key(ledger_key.public_key_der, T0, roles=["ledger"])
    ring.add_public_key(log_key.public_key_der, T0, roles=["log"])
    return ring


def make_bundle(worker: LocalSigner, ledger: LocalSigner, log: LocalSigner | None = None) -> dict[str, Any]:
    bundle = build_bundle(
        job_id="job-xyz789",
        tenant_id="research-alpha",
        items=copy.deepcopy(CONTENTS),
        bundle_id="bundle-abc123",
        created_at=T0 + timedelta(hours=1),
    )
    bundle = sign_bundle(bundle, worker, "worker", signed_at=T0 + timedelta(hours=1, minutes=1))
    bundle = sign_bundle(bundle, ledger, "ledger", signed_at=T0 + timedelta(hours=1, minutes=2))
    if log is None:
        return bundle
    others = [merkle.leaf_hash(b"earlier entry %d" % i) for i in range(12)]
    leaves = [*others, registry_leaf_hash(bundle), merkle.leaf_hash(b"later entry")]
    checkpoint = sign_checkpoint(LOG_ORIGIN, len(leaves), merkle.root(leaves), log)
    return attach_registry(
        bundle,
        leaf_index=12,
        tree_size=len(leaves),
        inclusion_proof=merkle.inclusion_proof(12, leaves),
        checkpoint=checkpoint,
    )


@pytest.fixture
def signed_bundle(worker_key: LocalSigner, ledger_key: LocalSigner) -> dict[str, Any]:
    return make_bundle(worker_key, ledger_key)


@pytest.fixture
def registered_bundle(worker_key: LocalSigner, ledger_key: LocalSigner, log_key: LocalSigner) -> dict[str, Any]:
    return make_bundle(worker_key, ledger_key, log_key)


@pytest.fixture
def bundle_factory():
    """``bundle_factory(worker, ledger, log=None)`` for tests that need other keys."""
    return make_bundle
