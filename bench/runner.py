"""Run catalogue workloads on a backend and score them.

``fidelity`` — the one headline number per workload — is defined as:

* GHZ_SCALING: the two-setting state-fidelity lower bound F >= P + (<X^n> - 1)/2,
* BELL_STATE: the stabilizer fidelity (1 + <XX> - <YY> + <ZZ>)/4,
* DEPTH_STRESS: the mirror-circuit polarization (s - 2^-n)/(1 - 2^-n),

each clipped to [0, 1] (the unclipped estimate is reported beside it). Why not Hellinger: it is
blind to GHZ coherence (a dephased GHZ state scores 1.0); Hellinger and QED-C's normalised
fidelity are still reported for comparison with published suites.

GHZ/Bell estimates are readout-mitigated with the backend's own assignment errors (the ones its
noise model applies) when the noise amplification Γ stays <= :data:`MAX_MITIGATION_GAMMA`, so they
estimate the *prepared state*; the raw bound is always reported too. The mirror score stays raw:
that test deliberately charges the whole stack, SPAM included.

Reproducibility: the circuit content, ``seed_transpiler`` and ``seed_simulator`` of each workload
come from :func:`bench.workloads.derive_seed`, one Aer job per workload, so the same seed, backend
and software versions give identical numbers whatever else is in the suite. Timing fields
(:data:`TIMING_FIELDS`) naturally differ; :func:`deterministic_view` drops them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

from qiskit import QuantumCircuit, qasm2

from bench import metrics
from bench.backends import ExecutionBackend, resolve_backend
from bench.workloads import (
    CATALOGUE_VERSION,
    SEED_DERIVATION,
    SEED_MAX,
    Workload,
    WorkloadCircuits,
    derive_seed,
    get_workload,
    resolve_workloads,
)

MAX_SHOTS = 100_000
DEFAULT_SHOTS = 1024
MAX_MITIGATION_GAMMA = 4.0
"""Beyond Γ = 4 a 1,024-shot mitigated parity has stderr >~ 0.12: too noisy to headline, so the
raw (readout-inclusive, still conservative) bound is used instead and the report says why."""

FIDELITY_METRIC = {
    "GHZ_SCALING": "ghz_two_setting_lower_bound",
    "BELL_STATE": "bell_stabilizer_fidelity",
    "DEPTH_STRESS": "mirror_polarization",
}
EXECUTION_TIME_SOURCE = "aer:result.results[].time_taken"
TIMING_FIELDS = frozenset({"execution_time_ms", "transpile_time_ms", "elapsed_ms"})


class SimulationFailedError(RuntimeError):
    """Aer returned ``success=False`` (it can do so without raising)."""


@functools.cache
def _software() -> dict[str, str]:
    from importlib.metadata import version

    return {pkg: version(pkg) for pkg in ("qiskit", "qiskit-aer", "qiskit-ibm-runtime")}


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _counts_digest(counts: dict[str, int]) -> str:
    return _sha256_text(json.dumps(dict(sorted(counts.items())), separators=(",", ":")))


_NOT_GATES = frozenset({"measure", "barrier"})


def _is_gate(instruction: Any) -> bool:
    return instruction.operation.name not in _NOT_GATES


def circuit_stats(circuit: QuantumCircuit) -> dict[str, int]:
    """Size, depth and two-qubit count of the gates (measurements and barriers excluded)."""
    gates = [inst for inst in circuit.data if _is_gate(inst)]
    return {
        "gate_count": len(gates),
        "depth": circuit.depth(filter_function=_is_gate),
        "two_qubit_gates": sum(1 for inst in gates if inst.operation.num_qubits == 2),
    }


@functools.lru_cache(maxsize=64)
def _built(workload_id: str, version: int, circuit_seed: int
           ) -> tuple[WorkloadCircuits, dict[str, str], dict[str, int]]:
    """Circuits, their QASM hashes and logical stats, cached per (workload, version, seed).

    Safe to share: nothing downstream mutates them (transpilation returns new circuits and Aer
    copies its input). Saves ~1 ms per workload, which is most of the runner's own cost.
    """
    built = get_workload(workload_id).build(circuit_seed)
    hashes = {s: _sha256_text(qasm2.dumps(c))
              for s, c in zip(built.settings, built.circuits, strict=True)}
    return built, hashes, circuit_stats(built.preparation)


def measured_physical_qubits(circuit: QuantumCircuit) -> list[int]:
    """Physical qubit read into each clbit (clbit i holds logical qubit i after ``measure_all``)."""
    by_clbit: dict[int, int] = {}
    for inst in circuit.data:
        if inst.operation.name == "measure":
            by_clbit[circuit.find_bit(inst.clbits[0]).index] = circuit.find_bit(inst.qubits[0]).index
    return [by_clbit[c] for c in range(circuit.num_clbits)]


def _clip(value: float) -> float:
    return min(1.0, max(0.0, value))


def _mitigation(backend: ExecutionBackend, physical: list[list[int]]
                ) -> tuple[list[metrics.Assignment | None], dict[str, Any]]:
    assignments = [backend.assignment(qs) for qs in physical]
    if all(a is None for a in assignments):
        return assignments, {"applied": False, "gamma": 1.0, "reason": "ideal readout"}
    gamma = max(metrics.mitigation_gamma(a) for a in assignments)
    if gamma > MAX_MITIGATION_GAMMA:
        reason = f"noise amplification {gamma:.3g} > {MAX_MITIGATION_GAMMA}: raw estimate used"
        return [None] * len(assignments), {"applied": False, "gamma": gamma, "reason": reason}
    return assignments, {"applied": True, "gamma": gamma,
                         "reason": "tensored inverse of the backend's readout assignment errors"}


def _score(built: WorkloadCircuits, workload: Workload, counts: list[dict[str, int]],
           assignments: list[metrics.Assignment | None]) -> dict[str, Any]:
    n = workload.qubits
    if workload.type == "GHZ_SCALING":
        ideal = metrics.ghz_ideal_distribution(n)
        bound = metrics.ghz_fidelity_lower_bound(counts[0], counts[1], *assignments)
        raw = metrics.ghz_fidelity_lower_bound(counts[0], counts[1])
        return {
            "fidelity": _clip(bound.lower_bound.value),
            "hellinger_fidelity": metrics.hellinger_fidelity(counts[0], ideal),
            "normalized_fidelity": metrics.normalized_fidelity(counts[0], ideal, n),
            "state_fidelity_lower_bound": bound.lower_bound.value,
            "state_fidelity_lower_bound_raw": raw.lower_bound.value,
            "stderr": bound.lower_bound.stderr,
            "entanglement_certified": bound.certified,
            "population": bound.population.value, "population_stderr": bound.population.stderr,
            "parity_x": bound.parity.value, "parity_x_stderr": bound.parity.stderr,
        }
    if workload.type == "BELL_STATE":
        ideal = metrics.ghz_ideal_distribution(2)
        bell = metrics.bell_fidelity(counts[0], counts[1], counts[2], assignments)
        raw = metrics.bell_fidelity(counts[0], counts[1], counts[2])
        return {
            "fidelity": _clip(bell.fidelity.value),
            "hellinger_fidelity": metrics.hellinger_fidelity(counts[0], ideal),
            "normalized_fidelity": metrics.normalized_fidelity(counts[0], ideal, 2),
            "state_fidelity_lower_bound": bell.fidelity.value,
            "state_fidelity_lower_bound_raw": raw.fidelity.value,
            "stderr": bell.fidelity.stderr,
            "entanglement_certified": bell.certified,
            "correlators": {"zz": bell.zz.value, "xx": bell.xx.value, "yy": bell.yy.value},
        }
    if workload.type == "DEPTH_STRESS":
        assert built.ideal_bitstring is not None
        ideal = {built.ideal_bitstring: 1.0}
        score = metrics.mirror_score(counts[0], built.ideal_bitstring)
        return {
            "fidelity": _clip(score.polarization.value),
            "hellinger_fidelity": metrics.hellinger_fidelity(counts[0], ideal),
            "normalized_fidelity": metrics.normalized_fidelity(counts[0], ideal, n),
            "state_fidelity_lower_bound": None,
            "state_fidelity_lower_bound_raw": None,
            "stderr": score.polarization.stderr,
            "entanglement_certified": None,
            "success_probability": score.success.value,
            "success_stderr": score.success.stderr,
            "polarization": score.polarization.value,
            "passed": score.passed,
            "pass_threshold": metrics.MIRROR_PASS_POLARIZATION,
            "ideal_bitstring": built.ideal_bitstring,
            **built.parameters,
        }
    raise ValueError(f"no scorer for workload type {workload.type!r}")  # pragma: no cover


def run_workload(backend: ExecutionBackend, workload: Workload, shots: int, run_seed: int,
                 include_counts: bool = False) -> dict[str, Any]:
    """Build, transpile, simulate (one Aer job) and score one workload."""
    started = time.perf_counter()
    seeds = {purpose: derive_seed(run_seed, workload.id, purpose)
             for purpose in ("circuit", "transpile", "simulate")}
    built, circuit_hashes, logical = _built(workload.id, workload.version, seeds["circuit"])
    t0 = time.perf_counter()
    prepared = backend.prepare(built.circuits, seeds["transpile"])
    transpile_ms = (time.perf_counter() - t0) * 1000
    method = backend.simulation_method(prepared)
    result = backend.simulator(method).run(
        prepared, shots=shots, seed_simulator=seeds["simulate"],
        noise_model=backend.noise_model_for(prepared)).result()
    failed = [r.status for r in result.results if not r.success]
    if not result.success or failed:
        raise SimulationFailedError(
            f"{workload.id} on {backend.name} ({method}): {result.status}; {failed}")
    counts = [dict(result.get_counts(i)) for i in range(len(prepared))]
    physical = [measured_physical_qubits(c) for c in prepared]
    assignments, mitigation = _mitigation(backend, physical)
    scored = _score(built, workload, counts, assignments)
    transpiled = circuit_stats(prepared[0]) if prepared[0] is not built.circuits[0] else logical
    # (cached dicts are copied below: callers may mutate the report)
    row: dict[str, Any] = {
        "id": workload.id, "type": workload.type, "qubits": workload.qubits,
        "version": workload.version,
        "fidelity_metric": FIDELITY_METRIC[workload.type],
        **scored,
        "readout_mitigation": mitigation if workload.type != "DEPTH_STRESS" else
        {"applied": False, "gamma": 1.0, "reason": "mirror score is raw by design"},
        "execution_time_ms": sum(r.time_taken for r in result.results) * 1000,
        "execution_time_source": EXECUTION_TIME_SOURCE,
        "transpile_time_ms": transpile_ms,
        "gate_count": logical["gate_count"], "depth": logical["depth"],
        "logical": dict(logical),
        "transpiled": {**transpiled, "physical_qubits": physical[0]},
        "settings": list(built.settings),
        "shots": shots, "seed": run_seed, "seeds": seeds, "simulation_method": method,
        "circuit_sha256": dict(circuit_hashes),
        "counts_sha256": {s: _counts_digest(c) for s, c in zip(built.settings, counts, strict=True)},
    }
    if include_counts:
        row["counts"] = dict(zip(built.settings, counts, strict=True))
    row["elapsed_ms"] = (time.perf_counter() - started) * 1000
    return row


def workload_circuits(workload_id: str, run_seed: int) -> WorkloadCircuits:
    """The circuits a workload runs for ``run_seed`` (cached; callers must not mutate them)."""
    workload = get_workload(workload_id)
    return _built(workload.id, workload.version, derive_seed(run_seed, workload.id, "circuit"))[0]


def run_benchmark(backend_id: str = "simulator", workloads: Sequence[str] | None = None,
                  shots: int = DEFAULT_SHOTS, seed: int | None = None,
                  include_counts: bool = False,
                  on_workload: Callable[[int, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Validate everything first, then run each workload; returns the report payload (no ids or
    timestamps: those belong to the API layer that stores it). ``on_workload(done, row)`` is
    called after each workload (progress reporting)."""
    if isinstance(shots, bool) or not isinstance(shots, int) or not 1 <= shots <= MAX_SHOTS:
        raise ValueError(f"shots must be an integer in [1, {MAX_SHOTS}], got {shots!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    selected = resolve_workloads(workloads)
    backend = resolve_backend(backend_id)
    for workload in selected:
        backend.check_capacity(workload.id, workload.qubits)
    run_seed = secrets.randbelow(SEED_MAX) if seed is None else seed

    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for workload in selected:
        rows.append(run_workload(backend, workload, shots, run_seed, include_counts))
        if on_workload is not None:
            on_workload(len(rows), rows[-1])
    return {
        "backend_id": backend_id,
        "backend": {"name": backend.name, "kind": backend.kind, "qubits": backend.num_qubits,
                    "description": backend.description, "calibration": dict(backend.calibration)},
        "dev_mode": backend.dev_mode,
        "warning": backend.warning,
        "simulated": True,
        "shots": shots,
        "seed": run_seed,
        "seed_source": "request" if seed is not None else "generated",
        "catalogue_version": CATALOGUE_VERSION,
        "seed_derivation": SEED_DERIVATION,
        "software": dict(_software()),
        "workloads": rows,
        "summary": {
            "total_workloads": len(rows),
            "average_fidelity": sum(r["fidelity"] for r in rows) / len(rows),
            "total_execution_time_ms": sum(r["execution_time_ms"] for r in rows),
        },
        "elapsed_ms": (time.perf_counter() - started) * 1000,
    }


def deterministic_view(report: Any) -> Any:
    """``report`` without :data:`TIMING_FIELDS` (recursively), for reproducibility comparisons."""
    if isinstance(report, dict):
        return {k: deterministic_view(v) for k, v in report.items()
                if k not in TIMING_FIELDS and k != "total_execution_time_ms"}
    if isinstance(report, list):
        return [deterministic_view(v) for v in report]
    return report
