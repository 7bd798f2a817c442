"""Provenance records and signed evidence bundles, written when a job completes.

Called inside the transaction that completes the job, after its ``JOB_COMPLETED`` audit entry,
so the bundle's audit trail ends with it. The worker that executed the job signs as ``worker``
(the seed's ``backend.sig``: who ran it) and the ledger key countersigns as ``ledger`` (who
notarized it). The bundle is registered as an unsequenced registry leaf; the registry
sequencer later gives it a leaf index and a signed checkpoint.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import orjson
from django.db import connection
from django.utils import timezone

from qcos.rowload import Pending, insert_rows

from .crypto.bundle import attach_registry, build_bundle, registry_leaf_hash, sign_bundle
from .crypto.canonical import canonical_json, format_timestamp, hash_json
from .crypto.keyring import KeyRing
from .keys import keyring, signer_for
from .models import BundleRecord, Provenance, RegistryLeaf


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


_ENVIRONMENT = None


def _environment() -> dict[str, str]:
    global _ENVIRONMENT
    if _ENVIRONMENT is None:
        _ENVIRONMENT = {p: _version(p) for p in ("qcos", "qiskit", "qiskit-aer", "qiskit-ibm-runtime",
                                                 "amazon-braket-sdk", "azure-quantum")}
    return _ENVIRONMENT


_TRAIL_SQL = ("SELECT payload, seq, entry_hash FROM ledger_auditentry WHERE resource_type = %s AND resource_id = %s "
              "ORDER BY id")


def _iso(moment: datetime | None) -> str | None:
    return format_timestamp(moment) if moment else None


def trail_entry(payload: dict[str, Any], seq: int | None = None, entry_hash: str | None = None) -> dict[str, Any]:
    """An audit entry as a bundle's trail lists it (``seq``/``entry_hash`` None until sequenced)."""
    return {**payload, "seq": seq, "entry_hash": entry_hash or None}


def trail_send(*, job_id: str) -> Callable[[], list[dict[str, Any]]]:
    """Send the read of ``job_id``'s audit trail; the returned callable gives its entries. In a
    pipeline (``qcos.rowload.pipeline``) it shares the round trip of the statements around it."""
    pending = Pending(connection, _TRAIL_SQL, ["quantum_job", job_id])
    return lambda: [trail_entry(orjson.loads(payload), seq, entry_hash) for payload, seq, entry_hash in pending.fetchall()]


def evidence_record(*, job, result, calibration: dict[str, Any], trail: list[dict[str, Any]]) -> BundleRecord:
    """Write the provenance record and the signed bundle of a completed ``job``. ``trail``: its
    audit entries, ending with ``JOB_COMPLETED`` (``trail_send`` reads the ones before it)."""
    # Signers first: a key registered on first use must be valid at the signing time below.
    worker_signer, ledger_signer = signer_for("worker"), signer_for("ledger")
    now = timezone.now()
    circuit = {
        "qasm": job.circuit,
        "circuit_hash": job.circuit_hash,
        "qasm_version": job.qasm_version,
        "num_qubits": job.num_qubits,
        "num_clbits": job.num_clbits,
        "depth": job.depth,
        "gate_counts": job.gate_counts,
        "submitted_at": _iso(job.submitted_at),
        "submitted_by": f"user-{job.submitted_by_id}",
        "tenant_id": job.tenant.slug,
        "project": job.project.slug,
        "tags": job.tags,
    }
    config = {
        "backend": job.backend,
        "provider": job.provider,
        "shots": job.shots,
        "priority": job.priority,
        "ledger_enabled": job.ledger_enabled,
    }
    results = {"counts": result.counts, "shots": job.shots, "success": True}
    telemetry = {
        "attempt": result.attempt,
        "worker": result.worker,
        "started_at": _iso(job.started_at),
        "completed_at": _iso(job.completed_at),
        # Whole microseconds: integers canonicalize identically everywhere (floats are where
        # JSON encoders disagree), and no clock here is finer.
        "execution_us": round(result.execution_ms * 1000),
        "execution_time_source": result.execution_ms_source,
        "queue_us": round((job.started_at - job.submitted_at).total_seconds() * 1e6) if job.started_at else None,
    }
    calibration = {"backend": job.backend, "backend_version": result.backend_version, **calibration}
    environment = _environment()
    provenance = {
        "provenance_id": f"prov-{now:%Y%m%d}-{secrets.token_hex(8)}",
        "job_id": job.id,
        "circuit_hash": job.circuit_hash,
        "config_hash": hash_json(config),
        "result_hash": hash_json(results),
        "backend_id": job.backend,
        "timestamp": format_timestamp(now),
        "execution_environment": {
            "sdk_version": environment["qiskit"],
            "sdk_versions": environment,
            "backend_version": result.backend_version,
            "calibration_id": calibration.get("calibration_id", ""),
        },
    }
    bundle = build_bundle(
        job_id=job.id,
        tenant_id=job.tenant.slug,
        bundle_id=f"bundle-{secrets.token_hex(12)}",
        created_at=now,
        items={
            "circuit_submission": circuit,
            "execution_configuration": config,
            "execution_result": results,
            "telemetry": telemetry,
            "calibration": calibration,
            "provenance": provenance,
            "audit_trail": {"entries": trail},
        },
        copy_items=False,  # built above for this bundle alone
    )
    bundle = sign_bundle(bundle, worker_signer, "worker", signed_at=now, check=False)  # built just above
    bundle = sign_bundle(bundle, ledger_signer, "ledger", signed_at=now, check=False)
    # Three plain INSERTs with statements prepared once per process, in one round trip on
    # PostgreSQL (rowload.insert_rows): the ORM's per-call query building cost more than the inserts.
    record_row, leaf_row = _registered(bundle, tenant_slug=job.tenant.slug, created_at=now, job=job)
    insert_rows(connection, [
        (Provenance(provenance_id=provenance["provenance_id"], job=job, payload=canonical_json(provenance).decode(),
                    created_at=now), ("provenance_id", "job_id", "payload", "created_at")),
        record_row,
        leaf_row,
    ])
    return record_row[0]


def bundle_register(bundle: dict[str, Any], *, benchmark, created_at) -> BundleRecord:
    """Store a benchmark run's signed bundle and enter it in the transparency registry (an
    unsequenced leaf, as a job's bundle is): in the caller's transaction."""
    record_row, leaf_row = _registered(bundle, tenant_slug=benchmark.tenant.slug, created_at=created_at,
                                       benchmark=benchmark)
    insert_rows(connection, [record_row, leaf_row])
    return record_row[0]


def _registered(bundle: dict[str, Any], *, tenant_slug: str, created_at, job=None, benchmark=None):
    """The rows to insert for a signed ``bundle`` (of a job or of a benchmark run): its
    BundleRecord and its registry leaf, each as ``(instance, columns)``."""
    subject = ("job_id",) if job is not None else ("benchmark_id",)
    record = BundleRecord(bundle_id=bundle["bundle_id"], job=job, benchmark=benchmark, tenant_slug=tenant_slug,
                          body=canonical_json(bundle).decode(), merkle_root=bundle["merkle_root"],
                          created_at=created_at)
    # created_at: auto_now_add, set by pre_save
    leaf = RegistryLeaf(bundle=record, leaf_hash=registry_leaf_hash(bundle).hex())
    return ((record, ("bundle_id", *subject, "tenant_slug", "body", "merkle_root", "created_at")),
            (leaf, ("bundle_id", "leaf_hash", "created_at")))


def bundle_document(record: BundleRecord, *, ring: KeyRing | None = None) -> dict[str, Any]:
    """The stored signed bundle, plus its registry proof (once checkpointed) and the key set."""
    from .registry import registration_of

    bundle = orjson.loads(record.body)
    registration = registration_of(record.bundle_id)
    if registration is not None:
        bundle = attach_registry(
            bundle, leaf_index=registration.leaf_index, tree_size=registration.tree_size,
            inclusion_proof=registration.proof, checkpoint=registration.checkpoint.note,
        )
    bundle["public_keys"] = (ring or keyring()).to_dict()
    return bundle
