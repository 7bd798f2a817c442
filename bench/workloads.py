"""Versioned benchmark workload catalogue.

Why versioned: a report is only comparable with another if both ran the *same* circuits. Every
workload carries a ``version``; any change to the circuits it builds (gate order, the GHZ
construction, the mirror-circuit recipe, ``DEPTH_STRESS_LAYERS``) must bump that version and
``CATALOGUE_VERSION`` so stored reports never silently change meaning.

Why seeds are derived per workload: Aer's random streams depend on a circuit's position inside a
batch, so one run seed applied to a whole suite would make ``ghz_10q``'s numbers depend on which
other workloads were requested. :func:`derive_seed` hashes (run seed, workload id, purpose) so a
workload's circuit, transpilation and sampling are fixed by the run seed alone.

Every circuit here is Clifford, so everything (up to ``ghz_100q``) runs on Aer's stabilizer method.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import Clifford, StabilizerState

CATALOGUE_VERSION = "2026.1"
"""Bump when any workload's ``version`` changes or a workload is added or removed."""

SEED_DERIVATION = "qcos-bench-seed/v1"
"""Domain-separation tag hashed into every derived seed (see :func:`derive_seed`)."""

GHZ_WORKLOAD_VERSION = 1
BELL_WORKLOAD_VERSION = 1
DEPTH_STRESS_WORKLOAD_VERSION = 1

DEPTH_STRESS_QUBITS = 10
DEPTH_STRESS_LAYERS = 16
"""Forward layers of the mirror circuit (each: random 1q Cliffords, then a sparse CNOT layer).
With 16 layers (~33 CNOTs each way) FakeBrisbane's noise model scores a polarization of about
0.49, above the 1/e pass line, while a ~1 % two-qubit-error device falls towards it; the noisy
run stays under a second at 1,024 shots."""

DEFAULT_WORKLOADS: tuple[str, ...] = ("ghz_5q", "ghz_10q", "bell_state")
"""The seed API's default suite when a request names no workloads."""

SEED_MAX = 2**31 - 1
"""Derived seeds are kept below 2**31 so every consumer (numpy, Aer, JSON, JS clients) takes them."""


class UnknownWorkloadError(ValueError):
    """A requested workload id is not in the catalogue (API error code ``INVALID_WORKLOAD``)."""

    code = "INVALID_WORKLOAD"

    def __init__(self, workload_id: str) -> None:
        known = ", ".join(WORKLOADS)
        super().__init__(f"unknown workload {workload_id!r}; known workloads: {known}")
        self.workload_id = workload_id


def derive_seed(run_seed: int, workload_id: str, purpose: str) -> int:
    """Seed for one (workload, purpose), fixed by the run seed alone.

    ``sha256("qcos-bench-seed/v1|<run_seed>|<workload_id>|<purpose>")``, first 8 bytes big-endian,
    modulo 2**31 - 1. Purposes used by the runner: ``circuit`` (random circuit content),
    ``transpile`` (``seed_transpiler``) and ``simulate`` (``seed_simulator``). Hashing, rather
    than adding offsets, keeps seeds of different workloads and purposes unrelated.
    """
    material = f"{SEED_DERIVATION}|{int(run_seed)}|{workload_id}|{purpose}".encode()
    return int.from_bytes(hashlib.sha256(material).digest()[:8], "big") % SEED_MAX


@dataclass(frozen=True)
class WorkloadCircuits:
    """What one workload needs executed, plus what the scorer needs to know about it.

    ``circuits[i]`` is measured in basis ``settings[i]`` with ``measure_all`` (one register, clbit i
    holds logical qubit i). ``preparation`` is the unmeasured logical circuit whose size and depth
    the report quotes. ``ideal_bitstring`` is set for single-outcome workloads (depth_stress).
    """

    workload_id: str
    circuit_seed: int
    settings: tuple[str, ...]
    circuits: tuple[QuantumCircuit, ...]
    preparation: QuantumCircuit
    ideal_bitstring: str | None = None
    parameters: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Workload:
    """One catalogue entry; ``id``/``type``/``description``/``qubits`` match the public API."""

    id: str
    type: str
    description: str
    qubits: int
    version: int
    _builder: Callable[[int], WorkloadCircuits] = field(repr=False, compare=False)

    def build(self, circuit_seed: int) -> WorkloadCircuits:
        """Circuits for this workload; ``circuit_seed`` only matters for randomised workloads."""
        return self._builder(circuit_seed)

    def as_dict(self) -> dict[str, object]:
        """The catalogue listing entry (seed API fields plus ``version``)."""
        return {
            "id": self.id,
            "type": self.type,
            "description": self.description,
            "qubits": self.qubits,
            "version": self.version,
        }


# --- GHZ and Bell ---------------------------------------------------------------------------


def ghz_preparation(num_qubits: int) -> QuantumCircuit:
    """H then a CNOT chain: n gates, depth n, nearest-neighbour on a line (routes onto heavy-hex)."""
    qc = QuantumCircuit(num_qubits, name=f"ghz_{num_qubits}")
    qc.h(0)
    for q in range(num_qubits - 1):
        qc.cx(q, q + 1)
    return qc


def _measured(preparation: QuantumCircuit, basis_change: Callable[[QuantumCircuit], None],
              name: str) -> QuantumCircuit:
    qc = preparation.copy(name=name)
    basis_change(qc)
    qc.measure_all()
    return qc


def _build_ghz(num_qubits: int, circuit_seed: int) -> WorkloadCircuits:
    """Z basis (population P) and all-H X basis (parity <X^n>): the two-setting fidelity bound."""
    prep = ghz_preparation(num_qubits)
    everyone = range(num_qubits)
    z = _measured(prep, lambda qc: None, f"ghz_{num_qubits}q:Z")
    x = _measured(prep, lambda qc: qc.h(everyone), f"ghz_{num_qubits}q:X")
    return WorkloadCircuits(f"ghz_{num_qubits}q", circuit_seed, ("Z", "X"), (z, x), prep)


def _build_bell(circuit_seed: int) -> WorkloadCircuits:
    """|Phi+> measured in ZZ, XX and YY (S-dagger then H maps the Y eigenbasis onto Z)."""
    prep = QuantumCircuit(2, name="bell_state")
    prep.h(0)
    prep.cx(0, 1)

    def to_x(qc: QuantumCircuit) -> None:
        qc.h([0, 1])

    def to_y(qc: QuantumCircuit) -> None:
        qc.sdg([0, 1])
        qc.h([0, 1])

    circuits = (
        _measured(prep, lambda qc: None, "bell_state:ZZ"),
        _measured(prep, to_x, "bell_state:XX"),
        _measured(prep, to_y, "bell_state:YY"),
    )
    return WorkloadCircuits("bell_state", circuit_seed, ("ZZ", "XX", "YY"), circuits, prep)


# --- depth_stress: mirror circuit -----------------------------------------------------------


def _single_qubit_cliffords() -> tuple[tuple[str, ...], ...]:
    """The 24 one-qubit Cliffords as shortest {h, s} words, in a fixed breadth-first order.

    Owned here (instead of ``random_clifford``) so the circuits only change when this module does.
    """
    found: dict[tuple[tuple[bool, ...], ...], tuple[str, ...]] = {}
    frontier: list[tuple[str, ...]] = [()]
    while frontier and len(found) < 24:
        next_frontier: list[tuple[str, ...]] = []
        for word in frontier:
            qc = QuantumCircuit(1)
            for gate in word:
                getattr(qc, gate)(0)
            tableau = Clifford(qc).tableau
            key = tuple(tuple(bool(v) for v in row) for row in tableau)
            if key not in found:
                found[key] = word
                next_frontier.extend([word + ("h",), word + ("s",)])
        frontier = next_frontier
    return tuple(found.values())


_CLIFFORD_1Q = _single_qubit_cliffords()
_PAULIS = ("id", "x", "y", "z")


def mirror_circuit(num_qubits: int, layers: int, circuit_seed: int) -> tuple[QuantumCircuit, str]:
    """Mirror circuit and its single ideal outcome (qiskit bit order), from the Clifford tableau.

    Forward part: ``layers`` times (a random 1q Clifford on every qubit, then CNOTs on a random
    nearest-neighbour matching of the line — even or odd bonds — each kept with probability 0.5
    and oriented at random). Then a random Pauli layer, then the inverse of the forward part.
    Barriers fence the Pauli layer so the transpiler cannot cancel the mirror away. The ideal
    output U^-1 P U |0> is a computational basis state; it is read from the stabilizer state, not
    simulated, so it is exact at any width.
    """
    rng = np.random.default_rng(circuit_seed)
    forward = QuantumCircuit(num_qubits)
    for _ in range(layers):
        for q in range(num_qubits):
            for gate in _CLIFFORD_1Q[int(rng.integers(len(_CLIFFORD_1Q)))]:
                getattr(forward, gate)(q)
        offset = int(rng.integers(2))
        for a in range(offset, num_qubits - 1, 2):
            if rng.random() < 0.5:
                if rng.random() < 0.5:
                    forward.cx(a, a + 1)
                else:
                    forward.cx(a + 1, a)
    full = QuantumCircuit(num_qubits, name=f"mirror_{num_qubits}x{layers}")
    full.compose(forward, inplace=True)
    full.barrier()
    for q in range(num_qubits):
        pauli = _PAULIS[int(rng.integers(4))]
        if pauli != "id":
            getattr(full, pauli)(q)
    full.barrier()
    full.compose(forward.inverse(), inplace=True)
    outcomes = StabilizerState(Clifford(full)).probabilities_dict()
    if len(outcomes) != 1:  # pragma: no cover - a mirror of a Clifford is always deterministic
        raise RuntimeError(f"mirror circuit is not deterministic: {len(outcomes)} outcomes")
    (ideal,) = outcomes
    return full, ideal


def _build_depth_stress(circuit_seed: int) -> WorkloadCircuits:
    prep, ideal = mirror_circuit(DEPTH_STRESS_QUBITS, DEPTH_STRESS_LAYERS, circuit_seed)
    measured = prep.copy(name="depth_stress:Z")
    measured.measure_all()
    return WorkloadCircuits(
        "depth_stress", circuit_seed, ("Z",), (measured,), prep, ideal_bitstring=ideal,
        parameters={"layers": DEPTH_STRESS_LAYERS, "qubits": DEPTH_STRESS_QUBITS},
    )


# --- catalogue ------------------------------------------------------------------------------


def _ghz_workload(n: int) -> Workload:
    return Workload(
        id=f"ghz_{n}q", type="GHZ_SCALING", description=f"GHZ state ({n} qubits)", qubits=n,
        version=GHZ_WORKLOAD_VERSION, _builder=lambda seed: _build_ghz(n, seed),
    )


WORKLOADS: dict[str, Workload] = {
    "bell_state": Workload(
        id="bell_state", type="BELL_STATE", description="Bell state preparation (2 qubits)",
        qubits=2, version=BELL_WORKLOAD_VERSION, _builder=_build_bell,
    ),
    **{f"ghz_{n}q": _ghz_workload(n) for n in (5, 10, 50, 100)},
    "depth_stress": Workload(
        id="depth_stress", type="DEPTH_STRESS", description="Deep circuit stress test",
        qubits=DEPTH_STRESS_QUBITS, version=DEPTH_STRESS_WORKLOAD_VERSION,
        _builder=_build_depth_stress,
    ),
}


def get_workload(workload_id: str) -> Workload:
    """Catalogue lookup that fails with :class:`UnknownWorkloadError` naming the valid ids."""
    try:
        return WORKLOADS[workload_id]
    except (KeyError, TypeError):
        raise UnknownWorkloadError(str(workload_id)) from None


def list_workloads() -> list[dict[str, object]]:
    """The ``GET /workloads`` listing, in catalogue order."""
    return [w.as_dict() for w in WORKLOADS.values()]


def resolve_workloads(workload_ids: Sequence[str] | None) -> list[Workload]:
    """Validate a request's workload list (default suite when empty); duplicates are rejected."""
    if isinstance(workload_ids, str):
        raise TypeError("workloads must be a list of ids, not a string")
    ids = list(DEFAULT_WORKLOADS if not workload_ids else workload_ids)
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"workloads listed more than once: {', '.join(duplicates)}")
    return [get_workload(i) for i in ids]
