"""The report and the Bench V3 evidence bundle of a finished run, as plain JSON documents.

The report keeps the seed's fields (``id``, ``created_at``, ``backend_id``, ``workloads[]`` with
``id``/``type``/``qubits``/``fidelity``/``execution_time_ms``/``gate_count``/``depth``,
``summary``) and adds everything needed to interpret and reproduce the numbers. What the
content and evidence hashes cover is defined in :mod:`bench.report`.

The bundle has the ledger's evidence-bundle shape (the seed's Bench V3 structure): the seven
ledger item types filled with the benchmark's circuits, configuration, raw counts, telemetry,
calibration, provenance (the report's hashes) and audit trail, signed by the worker that ran it
and countersigned by the ledger, so the one ledger verifier checks it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from qiskit import qasm2

from ledger.crypto.canonical import format_timestamp

from .report import CONTENT_EXCLUDED_FIELDS, TIMING_FIELDS
from .runner import FIDELITY_METRIC, workload_circuits

METRIC_DEFINITIONS = {
    "fidelity": "Headline per-workload score, clipped to [0, 1]: GHZ_SCALING the two-setting state-fidelity "
                "lower bound P + (<X^n> - 1)/2; BELL_STATE the stabilizer fidelity (1 + <XX> - <YY> + <ZZ>)/4; "
                "DEPTH_STRESS the mirror-circuit polarization (s - 2^-n)/(1 - 2^-n). GHZ/Bell are "
                "readout-mitigated when the amplification gamma <= 4 (see readout_mitigation).",
    "hellinger_fidelity": "(sum_i sqrt(p_i q_i))^2 of the Z-basis counts against the ideal distribution; "
                          "blind to coherence (a dephased GHZ scores 1.0).",
    "normalized_fidelity": "QED-C: (F_H - floor)/(1 - floor), floor = F_H(uniform, ideal), clipped to [0, 1].",
    "state_fidelity_lower_bound": "Unclipped coherence-aware estimate behind `fidelity` (GHZ, Bell); "
                                  "`_raw` is the same without readout mitigation.",
    "entanglement_certified": "state fidelity estimate > 0.5 by at least 2 standard errors "
                              "(genuine multipartite entanglement).",
    "stderr": "Shot-noise standard error of the headline estimate.",
    "summary.average_fidelity": "Arithmetic mean of workloads[].fidelity.",
    "execution_time_ms": "Simulator-reported execution time (aer result.results[].time_taken), summed "
                         "over the workload's circuits; wall-clock figures are in elapsed_ms.",
}

HASH_SCOPE = {
    "content_hash": "sha256 over RFC 8785 JSON of the report without "
                    + ", ".join(sorted(CONTENT_EXCLUDED_FIELDS))
                    + " and without the timing fields " + ", ".join(sorted(TIMING_FIELDS))
                    + " at any depth: equal for the same backend, workloads, shots, seed and software.",
    "evidence_hash": "sha256 over RFC 8785 JSON of the whole report except evidence_hash and signature.",
    "signature": "ECDSA-P384 by the ledger key over {context, report_id, content_hash, evidence_hash, "
                 "algorithm, key_id, signer, signed_at} (context qcos.bench-report.signature.v1).",
}


def _iso(moment: datetime | None) -> str | None:
    return format_timestamp(moment) if moment else None


def _ms(start: datetime | None, end: datetime | None) -> int | None:
    return None if start is None or end is None else round((end - start).total_seconds() * 1000)


def split_counts(core: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, dict[str, int]]]]:
    """The core report without raw counts (the report carries their digests) and the counts."""
    counts: dict[str, dict[str, dict[str, int]]] = {}
    rows = []
    for row in core["workloads"]:
        row = dict(row)
        counts[row["id"]] = row.pop("counts", {})
        rows.append(row)
    return {**core, "workloads": rows}, counts


def build_report(run: Any, core: dict[str, Any], *, completed_at: datetime, bundle_id: str,
                 cost: dict[str, Any]) -> dict[str, Any]:
    """The unsealed report of ``run`` from the core runner's payload (counts already split off)."""
    summary = dict(core["summary"])
    summary["average_fidelity_metric"] = "fidelity"
    summary["fidelity_metrics"] = {row["id"]: FIDELITY_METRIC[row["type"]] for row in core["workloads"]}
    return {
        "id": str(run.id),
        "created_at": _iso(completed_at),
        "backend_id": run.backend_id,
        "workloads": core["workloads"],
        "summary": summary,
        "tenant_id": run.tenant.slug,
        "project": run.project.slug,
        "submitted_by": f"user-{run.submitted_by_id}",
        "bundle_id": bundle_id,
        "dev_mode": core["dev_mode"],
        "warning": core["warning"],
        "execution_mode": (f"DEV MODE: {run.backend_id} simulated locally on {core['backend']['description']}"
                           if core["dev_mode"] else "simulated locally"),
        "simulated": core["simulated"],
        "backend": core["backend"],
        "shots": core["shots"],
        "seed": core["seed"],
        "seed_source": run.seed_source,
        "catalogue_version": core["catalogue_version"],
        "seed_derivation": core["seed_derivation"],
        "software": core["software"],
        "metric_definitions": METRIC_DEFINITIONS,
        "hash_scope": HASH_SCOPE,
        "elapsed_ms": core["elapsed_ms"],
        "cost": cost,
        "timings": {
            "submitted_at": _iso(run.submitted_at), "started_at": _iso(run.started_at),
            "completed_at": _iso(completed_at), "queue_ms": _ms(run.submitted_at, run.started_at),
            "run_ms": _ms(run.started_at, completed_at),
        },
    }


def _no_floats(value: Any) -> Any:
    """Floats as their shortest round-trip text (``repr``), recursively.

    Why: bundles are canonicalized (RFC 8785) several times while being hashed and signed; values
    made only of strings, integers and the like take the fast C encoder, which gives the same bytes
    for them, while a single float sends the whole bundle through the pure-Python one (~40 ms a
    run here). The exact floats stay in the signed report, whose hashes the bundle carries.
    """
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {k: _no_floats(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_floats(v) for v in value]
    return value


def bundle_items(run: Any, report: dict[str, Any], counts: dict[str, Any], *, worker: str,
                 provenance_id: str, audit_trail: list[dict[str, Any]]) -> dict[str, Any]:
    """The seven ledger item contents of the run's Bench V3 evidence bundle (floats as text, see
    :func:`_no_floats`)."""
    return _no_floats(_bundle_items(run, report, counts, worker=worker, provenance_id=provenance_id,
                                    audit_trail=audit_trail))


def _bundle_items(run: Any, report: dict[str, Any], counts: dict[str, Any], *, worker: str,
                  provenance_id: str, audit_trail: list[dict[str, Any]]) -> dict[str, Any]:
    circuits = []
    for row in report["workloads"]:
        built = workload_circuits(row["id"], run.seed)
        circuits.append({
            "workload_id": row["id"], "type": row["type"], "version": row["version"],
            "settings": list(built.settings),
            "qasm": {s: qasm2.dumps(c) for s, c in zip(built.settings, built.circuits, strict=True)},
            "circuit_sha256": row["circuit_sha256"],
        })
    return {
        "circuit_submission": {
            "benchmark_id": report["id"], "workloads": circuits, "tenant_id": report["tenant_id"],
            "project": report["project"], "submitted_by": report["submitted_by"],
            "submitted_at": report["timings"]["submitted_at"],
        },
        "execution_configuration": {
            "backend_id": report["backend_id"], "shots": report["shots"], "seed": report["seed"],
            "seed_source": report["seed_source"], "seed_derivation": report["seed_derivation"],
            "catalogue_version": report["catalogue_version"], "dev_mode": report["dev_mode"],
            "warning": report["warning"],
            "workloads": [{"id": r["id"], "seeds": r["seeds"], "simulation_method": r["simulation_method"],
                           "transpiled": r["transpiled"]} for r in report["workloads"]],
        },
        "execution_result": {
            "report_id": report["id"], "content_hash": report["content_hash"],
            "evidence_hash": report["evidence_hash"], "summary": report["summary"],
            "workloads": [{"id": r["id"], "fidelity": r["fidelity"], "fidelity_metric": r["fidelity_metric"],
                           "counts": counts.get(r["id"], {}), "counts_sha256": r["counts_sha256"]}
                          for r in report["workloads"]],
        },
        "telemetry": {
            "attempt": run.attempts, "worker": worker, **report["timings"],
            # Whole microseconds, as job bundles do.
            "execution_us": {r["id"]: round(r["execution_time_ms"] * 1000) for r in report["workloads"]},
            "execution_time_source": report["workloads"][0]["execution_time_source"],
        },
        "calibration": {"backend_id": report["backend_id"], **report["backend"]},
        "provenance": {
            "provenance_id": provenance_id, "benchmark_id": report["id"], "backend_id": report["backend_id"],
            "content_hash": report["content_hash"], "evidence_hash": report["evidence_hash"],
            "report_signature": report["signature"], "timestamp": report["created_at"],
            "execution_environment": {"sdk_versions": report["software"],
                                      "calibration_id": str(report["backend"].get("calibration", {})
                                                            .get("snapshot") or report["backend"]["name"])},
        },
        "audit_trail": {"entries": audit_trail},
    }
