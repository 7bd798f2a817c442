"""The one small interface every provider adapter implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from qiskit import QuantumCircuit


class ProviderError(Exception):
    """A failed execution. ``transient`` says whether trying again may succeed (network, a busy
    device) or not (the provider refused the circuit): the job service retries only transient ones.
    """

    def __init__(self, message: str, *, code: str = "PROVIDER_ERROR", transient: bool = False):
        super().__init__(message)
        self.code = code
        self.transient = transient


@dataclass(frozen=True)
class ExecutionOutcome:
    counts: dict[str, int]
    execution_ms: float
    execution_ms_source: str
    backend_version: str
    metadata: dict[str, Any] = field(default_factory=dict)
    # The calibration the run used; ``calibration_id`` names the snapshot (see evidence bundles).
    calibration: dict[str, Any] = field(default_factory=dict)


class ProviderAdapter(Protocol):
    def run(self, circuit: QuantumCircuit, *, shots: int, seed: int | None = None) -> ExecutionOutcome: ...


@dataclass(frozen=True)
class BackendSpec:
    """A backend in the catalogue: what it is called, who provides it and what it accepts.

    ``max_qubits_clifford`` applies to circuits made only of Clifford gates, which the stabilizer
    method simulates in polynomial time; ``max_qubits`` to everything else (a state vector of
    2^n complex amplitudes: 28 qubits is 4 GiB).
    """

    name: str
    provider: str
    description: str
    max_qubits: int
    max_qubits_clifford: int
    queue: str
    adapter: str  # dotted path of a zero-argument factory, imported only where jobs run
    warning: str = ""  # DEV MODE: results are simulated here, not measured on the named hardware

    @property
    def dev_mode(self) -> bool:
        return bool(self.warning)
