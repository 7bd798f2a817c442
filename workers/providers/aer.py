"""The local qiskit-aer simulator.

AerSimulator's automatic method picks the stabilizer method for Clifford circuits; transpiling
against its 10,000-qubit target costs seconds, so circuits are transpiled only when they use an
instruction Aer does not run natively (a user-defined ``gate``, say), and then only to the
standard gates and control flow Aer runs: its basis also names Aer-only instructions
(``set_unitary``…) that the transpiler refuses as basis gates.

Jobs run this adapter in a sandbox process (``workers.sandbox``), which passes the job's memory
limit as ``max_memory_mb``: Aer then refuses a state vector that would not fit before allocating it.
"""

from __future__ import annotations

from django.conf import settings
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import CONTROL_FLOW_OP_NAMES
from qiskit.circuit.library.standard_gates import get_standard_gate_name_mapping
from qiskit_aer import AerSimulator
from qiskit_aer import __version__ as aer_version

from .base import ExecutionOutcome, ProviderError

_DIRECTIVES = frozenset({"measure", "barrier", "reset", "delay"})


class AerAdapter:
    def __init__(self) -> None:
        self._simulator = AerSimulator(max_parallel_threads=settings.QCOS["AER_MAX_PARALLEL_THREADS"])
        self._native = frozenset(self._simulator.configuration().basis_gates) | _DIRECTIVES
        self._basis = sorted((self._native - _DIRECTIVES) & (set(get_standard_gate_name_mapping())
                                                             | CONTROL_FLOW_OP_NAMES))

    def run(self, circuit: QuantumCircuit, *, shots: int, seed: int | None = None,
            max_memory_mb: int | None = None) -> ExecutionOutcome:
        if not _operation_names(circuit) <= self._native:
            try:
                circuit = transpile(circuit, basis_gates=self._basis, optimization_level=0)
            except Exception as exc:
                raise ProviderError(f"cannot translate the circuit for Aer: {exc}", code="TRANSPILE_FAILED") from exc
        options = {"shots": shots}
        if seed is not None:
            options["seed_simulator"] = seed
        if max_memory_mb is not None:
            options["max_memory_mb"] = max_memory_mb
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


def _operation_names(circuit: QuantumCircuit) -> set[str]:
    """Every instruction's name, inside control-flow bodies too (a loop may call a custom gate)."""
    names = set()
    for instruction in circuit.data:
        operation = instruction.operation
        names.add(operation.name)
        for block in getattr(operation, "blocks", ()):
            names |= _operation_names(block)
    return names
