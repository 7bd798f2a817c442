"""The local qiskit-aer simulator.

REFERENCE.md §7: AerSimulator's automatic method picks the stabilizer method for Clifford
circuits; transpiling against its 10,000-qubit target costs seconds, so circuits are transpiled
only when they use an instruction Aer does not run natively, and then only to its basis gates.
"""

from __future__ import annotations

from django.conf import settings
from qiskit import QuantumCircuit, transpile
from qiskit_aer import AerSimulator
from qiskit_aer import __version__ as aer_version

from .base import ExecutionOutcome, ProviderError

_DIRECTIVES = frozenset({"measure", "barrier", "reset", "delay"})


class AerAdapter:
    def __init__(self) -> None:
        self._simulator = AerSimulator(max_parallel_threads=settings.QCOS["AER_MAX_PARALLEL_THREADS"])
        self._native = frozenset(self._simulator.configuration().basis_gates) | _DIRECTIVES

    def run(self, circuit: QuantumCircuit, *, shots: int, seed: int | None = None) -> ExecutionOutcome:
        if not {inst.operation.name for inst in circuit.data} <= self._native:
            circuit = transpile(circuit, basis_gates=sorted(self._native - _DIRECTIVES), optimization_level=0)
        options = {"shots": shots}
        if seed is not None:
            options["seed_simulator"] = seed
        try:
            result = self._simulator.run(circuit, **options).result()
        except Exception as exc:  # Aer raises AerError and plain errors for unrunnable circuits
            raise ProviderError(f"simulation failed: {exc}", code="SIMULATION_FAILED") from exc
        # An automatic-method fallback can "finish" unsuccessfully: never trust counts blindly.
        if not result.success:
            raise ProviderError(f"simulation failed: {result.status}", code="SIMULATION_FAILED")
        experiment = result.results[0]
        return ExecutionOutcome(
            counts={str(k): int(v) for k, v in result.get_counts(0).items()},
            execution_ms=float(experiment.time_taken) * 1000.0,
            execution_ms_source="aer.result.results[0].time_taken",
            backend_version=f"qiskit-aer {aer_version}",
            metadata={"method": experiment.metadata.get("method"), "seed_simulator": experiment.seed_simulator},
            calibration={"calibration_id": f"aer-{aer_version}-ideal", "noise_model": None},
        )
