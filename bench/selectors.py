"""Reads for benchmark runs, scoped to the caller's tenant in one place (``benchmarks_for``)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from django.db.models import QuerySet

from ledger.evidence import bundle_document
from ledger.models import BundleRecord
from qcos.tenancy.principal import Principal
from qcos.tenancy.roles import Capability

from .errors import BenchmarkFailed, BenchmarkNotFound, BenchmarkStillRunning
from .models import BenchmarkRun, BenchmarkStatus

MAX_COMPARE = 8


def benchmarks_for(*, principal: Principal) -> QuerySet[BenchmarkRun]:
    """Every API read of benchmark runs starts here."""
    principal.require(Capability.VIEW_JOBS)
    return BenchmarkRun.objects.filter(tenant=principal.tenant).select_related("tenant", "project")


def benchmark_get(*, principal: Principal, benchmark_id: str) -> BenchmarkRun:
    """A run of the caller's tenant; another tenant's is BENCHMARK_NOT_FOUND, like a missing one."""
    try:
        key = uuid.UUID(str(benchmark_id))
    except ValueError:
        key = None
    run = benchmarks_for(principal=principal).filter(pk=key).first() if key else None
    if run is None:
        raise BenchmarkNotFound(f"benchmark {benchmark_id} not found", details={"benchmark_id": str(benchmark_id)})
    return run


def report_of(run: BenchmarkRun) -> dict[str, Any]:
    """The sealed report of a completed run, or the seed's error for an unfinished or failed one."""
    if run.status in (BenchmarkStatus.QUEUED, BenchmarkStatus.RUNNING):
        raise BenchmarkStillRunning(
            f"benchmark {run.id} is {run.status}; the report is not ready yet",
            details={"benchmark_id": str(run.id), "status": run.status, "completed_workloads": run.progress,
                     "total_workloads": len(run.workloads)})
    if run.status == BenchmarkStatus.FAILED:
        raise BenchmarkFailed(f"benchmark {run.id} failed: {run.error_code}: {run.error_message}",
                              details={"benchmark_id": str(run.id), "status": run.status,
                                       "error_code": run.error_code, "error_message": run.error_message})
    return orjson.loads(run.report_body)


def bundle_of(run: BenchmarkRun) -> dict[str, Any]:
    """The run's signed bundle with its registry inclusion proof and checkpoint once a checkpoint
    covers its leaf (so it verifies offline), and the key set."""
    if run.status != BenchmarkStatus.COMPLETED:
        report_of(run)  # raises the matching error
    record = BundleRecord.objects.filter(benchmark=run).first()
    return bundle_document(record)


def comparison(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Reports side by side: one column per report, one row per workload (the seed's provider
    comparison). Cells carry the headline fidelity, its metric and the coherence-blind Hellinger."""
    columns = [{
        "benchmark_id": r["id"], "backend_id": r["backend_id"], "dev_mode": r["dev_mode"], "shots": r["shots"],
        "seed": r["seed"], "created_at": r["created_at"], "average_fidelity": r["summary"]["average_fidelity"],
        "content_hash": r.get("content_hash"),
    } for r in reports]
    order: list[str] = []
    for r in reports:
        order += [w["id"] for w in r["workloads"] if w["id"] not in order]
    rows = []
    for workload_id in order:
        cells = {}
        for r in reports:
            row = next((w for w in r["workloads"] if w["id"] == workload_id), None)
            cells[r["id"]] = None if row is None else {
                "fidelity": row["fidelity"], "fidelity_metric": row["fidelity_metric"],
                "stderr": row.get("stderr"), "hellinger_fidelity": row.get("hellinger_fidelity"),
                "entanglement_certified": row.get("entanglement_certified"),
                "execution_time_ms": row.get("execution_time_ms"),
                "transpiled_two_qubit_gates": row.get("transpiled", {}).get("two_qubit_gates"),
            }
        qubits = next(w["qubits"] for r in reports for w in r["workloads"] if w["id"] == workload_id)
        rows.append({"workload_id": workload_id, "qubits": qubits, "results": cells})
    return {"reports": columns, "workloads": rows}
