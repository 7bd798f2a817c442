"""What the pricing formulas need to know about a circuit: gate counts and a duration estimate.

Counting rules, and why:
- Barriers, delays and zero-qubit instructions (global phase, classical stores) are not gates: no
  provider bills them as gates. Delays do add *time*, so ``circuit_duration_s`` includes them.
- ``measure`` and ``reset`` are counted apart from gates: IonQ does not bill them, Quantinuum bills
  them as SPAM operations.
- ``state_preparations`` is one implicit preparation per declared qubit (Quantinuum counts "initial
  implicit state preparation") plus the qubits of any explicit ``initialize``/``state_preparation``.
  Declared, not used, qubits: the provider prepares the register it is given.
- A gate on N >= 3 qubits is kept apart in ``multi_sizes``; IonQ bills it as 6(N-2) two-qubit gates
  (``two_qubit_equivalent``), which is also the CNOT count of the textbook Toffoli decomposition, so
  the Quantinuum and duration estimates use the same rule.
- Control flow is priced for the worst case: a ``for`` body counts once per iteration, every branch
  of an ``if``/``switch`` is counted, and a ``while`` loop cannot be priced (its length is unknown).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qiskit import QuantumCircuit
    from qiskit.circuit import CircuitInstruction

_NOT_GATES = frozenset({"barrier", "delay", "snapshot"})
_PREPARATIONS = frozenset({"initialize", "state_preparation"})
# Phase gates are frame changes on superconducting hardware (IBM's rz is virtual): zero duration.
_VIRTUAL = frozenset({"rz", "z", "s", "sdg", "t", "tdg", "p", "u1", "phase", "id"})
_TIME_UNITS = {
    "s": Decimal(1),
    "ms": Decimal("1E-3"),
    "us": Decimal("1E-6"),
    "ns": Decimal("1E-9"),
    "ps": Decimal("1E-12"),
}


class UnpricableCircuit(ValueError):
    """The circuit's cost cannot be bounded before it runs (e.g. a ``while`` loop)."""


@dataclass(frozen=True)
class Counts:
    """Operation counts of one circuit, as the pricing formulas consume them."""

    n1q: int
    n2q: int
    n_multi: int
    multi_sizes: tuple[int, ...]
    measurements: int
    resets: int
    state_preparations: int
    depth: int
    num_qubits: int

    @property
    def two_qubit_equivalent(self) -> int:
        """2q gates with every N-qubit gate billed as 6(N-2) of them (Azure IonQ's rule)."""
        return self.n2q + sum(6 * (n - 2) for n in self.multi_sizes)

    @property
    def spam(self) -> int:
        """Quantinuum's Nm: state preparations + measurements + resets."""
        return self.state_preparations + self.measurements + self.resets

    def as_inputs(self) -> dict[str, int | list[int]]:
        return {
            "n1q": self.n1q,
            "n2q": self.n2q,
            "n_multi": self.n_multi,
            "multi_sizes": list(self.multi_sizes),
            "n2q_equivalent": self.two_qubit_equivalent,
            "measurements": self.measurements,
            "resets": self.resets,
            "state_preparations": self.state_preparations,
            "spam": self.spam,
            "depth": self.depth,
            "num_qubits": self.num_qubits,
        }


@dataclass
class _Tally:
    n1q: int = 0
    n2q: int = 0
    measurements: int = 0
    resets: int = 0
    preparations: int = 0
    multi: list[int] = field(default_factory=list)

    def add(self, other: _Tally, times: int = 1) -> None:
        self.n1q += other.n1q * times
        self.n2q += other.n2q * times
        self.measurements += other.measurements * times
        self.resets += other.resets * times
        self.preparations += other.preparations * times
        self.multi.extend(other.multi * times)


def _loop_iterations(operation: object) -> int:
    indexset = operation.params[0]  # type: ignore[attr-defined]
    return len(indexset)


def _tally(instructions: Iterable[CircuitInstruction]) -> _Tally:
    tally = _Tally()
    for instruction in instructions:
        op = instruction.operation
        name = op.name
        if name == "while_loop":
            raise UnpricableCircuit("a while loop has no bound on its length; its cost cannot be estimated")
        if name == "for_loop":
            tally.add(_tally(op.blocks[0].data), _loop_iterations(op))
            continue
        if getattr(op, "blocks", None):  # if_else, switch_case, box: every branch, worst case
            for block in op.blocks:
                tally.add(_tally(block.data))
            continue
        width = len(instruction.qubits)
        if name in _NOT_GATES or width == 0:
            continue
        if name == "measure":
            tally.measurements += width
        elif name == "reset":
            tally.resets += width
        elif name in _PREPARATIONS:
            tally.preparations += width
        elif width == 1:
            tally.n1q += 1
        elif width == 2:
            tally.n2q += 1
        else:
            tally.multi.append(width)
    return tally


def _counts_depth(instruction: CircuitInstruction) -> bool:
    return instruction.operation.name not in _NOT_GATES


def circuit_counts(circuit: QuantumCircuit) -> Counts:
    """Count the operations every pricing formula needs (see the module docstring for the rules)."""
    tally = _tally(circuit.data)
    return Counts(
        n1q=tally.n1q,
        n2q=tally.n2q,
        n_multi=len(tally.multi),
        multi_sizes=tuple(tally.multi),
        measurements=tally.measurements,
        resets=tally.resets,
        state_preparations=circuit.num_qubits + tally.preparations,
        depth=circuit.depth(filter_function=_counts_depth),
        num_qubits=circuit.num_qubits,
    )


def _delay_seconds(operation: object, dt_s: Decimal | None) -> Decimal:
    unit = getattr(operation, "unit", "dt")
    value = Decimal(str(operation.params[0]))  # type: ignore[attr-defined]
    if unit == "dt":
        if dt_s is None:
            raise UnpricableCircuit("a delay in 'dt' units needs the backend's dt to be timed")
        return value * dt_s
    if unit not in _TIME_UNITS:
        raise UnpricableCircuit(f"cannot time a delay in {unit!r}")
    return value * _TIME_UNITS[unit]


def _duration(op: object, width: int, name: str, durations: Mapping[str, Decimal]) -> Decimal:
    if name == "measure":
        return durations["measure_s"]
    if name in ("reset",) or name in _PREPARATIONS:
        return durations["reset_s"]
    if width == 1:
        return Decimal(0) if name in _VIRTUAL else durations["gate_1q_s"]
    if width == 2:
        return durations["gate_2q_s"]
    return durations["gate_2q_s"] * 6 * (width - 2)


def _schedule(circuit: QuantumCircuit, durations: Mapping[str, Decimal]) -> Decimal:
    """Critical path: each operation starts when all its qubits and clbits are free (ASAP)."""
    dt_s = durations.get("dt_s")
    ready: dict[object, Decimal] = {}
    for instruction in circuit.data:
        op = instruction.operation
        name = op.name
        wires = (*instruction.qubits, *instruction.clbits)
        start = max((ready.get(w, Decimal(0)) for w in wires), default=Decimal(0))
        if name == "while_loop":
            raise UnpricableCircuit("a while loop has no bound on its length; its duration cannot be estimated")
        if name == "for_loop":
            length = _schedule(op.blocks[0], durations) * _loop_iterations(op)
        elif getattr(op, "blocks", None):
            length = max(_schedule(block, durations) for block in op.blocks)
        elif name == "delay":
            length = _delay_seconds(op, dt_s)
        elif name in _NOT_GATES or not instruction.qubits:
            length = Decimal(0)  # a barrier only synchronises its wires
        else:
            length = _duration(op, len(instruction.qubits), name, durations)
        for wire in wires:
            ready[wire] = start + length
    return max(ready.values(), default=Decimal(0))


def circuit_duration_s(circuit: QuantumCircuit, durations: Mapping[str, Decimal]) -> Decimal:
    """One shot's duration in seconds, from per-gate durations (``gate_1q_s``, ``gate_2q_s``,
    ``measure_s``, ``reset_s``, optional ``dt_s``).

    Used where the provider bills time (IBM, Rigetti on Azure) and no backend-side estimate exists.
    It is an ASAP schedule of the circuit as submitted; routing on the device adds SWAPs, which is
    why the defaults are medians and settlement uses the provider's measured time.
    """
    return _schedule(circuit, durations)
