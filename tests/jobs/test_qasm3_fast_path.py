"""The native OpenQASM 3 fast path must give exactly the reference importer's circuit.

``parse_circuit`` sends programs in a plain subset to qiskit's native importer (about 20x faster
than the ANTLR reference parser) and everything else to the reference path. These tests generate
programs inside the subset and check that the fast path is taken and agrees with the reference
importer: same instructions on the same bits with the same parameters, same registers in the same
order (they decide the counts' keys), same global phase, same summary. Programs just outside the
subset must fall back and still parse as before.
"""

from __future__ import annotations

import random

import pytest

from qcos.jobs import circuits
from qcos.jobs.circuits import FAST_GATES, fast_path_eligible, parse_circuit

# pytest resets warning filters per test; circuits.py silences this one for the process.
pytestmark = pytest.mark.filterwarnings("ignore:This is an experimental native version")

ANGLES = ["0.5", "-1.25", "3.", "0.0", "2.5e-3", "1E+2", "-7.0e1", "6.283185307179586", "12.75", "1e-9"]


def _registers(circuit):
    return ([(r.name, r.size) for r in circuit.qregs], [(r.name, r.size) for r in circuit.cregs])


def _assert_same(text: str) -> None:
    fast = circuits._parse_qasm3_fast(text)
    assert fast is not None, f"fast path not taken for:\n{text}"
    reference = circuits._parse_qasm3_reference(text)
    assert fast == reference, f"circuits differ for:\n{text}\nfast:\n{fast}\nreference:\n{reference}"
    assert _registers(fast) == _registers(reference)
    assert fast.global_phase == reference.global_phase
    assert [(i.operation.name, [float(p) for p in i.operation.params]) for i in fast.data] == [
        (i.operation.name, [float(p) for p in i.operation.params]) for i in reference.data
    ]
    assert circuits.summarize(fast, 3) == circuits.summarize(reference, 3)
    assert parse_circuit(text) == reference


def _random_program(rng: random.Random) -> str:
    sep = lambda: rng.choice([" ", "\n", "  ", "\n  ", " /* c */ ", " // note\n"])  # noqa: E731
    qregs: dict[str, int | None] = {}
    lines = ["OPENQASM 3.0;", 'include "stdgates.inc";']
    for index in range(rng.randint(1, 3)):
        name = f"q{index}" if rng.random() < 0.7 else f"reg_{index}"
        size = None if rng.random() < 0.2 else rng.randint(1, 4)
        qregs[name] = size
        lines.append(f"qubit {name};" if size is None else rng.choice([f"qubit[{size}] {name};", f"qubit [ {size} ] {name};"]))
    slots = [(reg, None) if size is None else (reg, i) for reg, size in qregs.items() for i in range(size or 1)]
    ref = lambda slot: slot[0] if slot[1] is None else f"{slot[0]}[{slot[1]}]"  # noqa: E731
    for _ in range(rng.randint(1, 12)):
        name = rng.choice(sorted(FAST_GATES))
        n_angles, n_qubits = FAST_GATES[name]
        if n_qubits > len(slots):
            continue
        if n_qubits == 1 and rng.random() < 0.15:
            operands = [rng.choice(list(qregs))]  # a whole register (broadcast)
        else:
            operands = [ref(s) for s in rng.sample(slots, n_qubits)]
        angles = f"({', '.join(rng.choice(ANGLES) for _ in range(n_angles))})" if n_angles else ""
        lines.append(f"{name}{angles} {', '.join(operands)};")
        if rng.random() < 0.1:
            lines.append(f"barrier {', '.join(rng.sample(list(qregs), rng.randint(1, len(qregs))))};")
    # Measurements: whole registers into equal-sized bit registers, or bit by bit.
    for index, (reg, size) in enumerate(qregs.items()):
        bits = f"c{index}"
        if size is None:
            lines.append(f"bit {bits};")
            lines.append(f"{bits} = measure {reg};")
        elif rng.random() < 0.5:
            lines.append(f"bit[{size}] {bits};")
            lines.append(f"{bits} = measure {reg};")
        else:
            lines.append(f"bit[{size}] {bits};")
            for i in rng.sample(range(size), size):
                lines.append(f"{bits}[{i}] = measure {reg}[{i}];")
    return sep().join(lines) + rng.choice(["", "\n", " "])


def test_bell_takes_the_fast_path():
    _assert_same('OPENQASM 3.0; include "stdgates.inc"; qubit[2] q; bit[2] c; h q[0]; cx q[0], q[1]; c = measure q;')


@pytest.mark.parametrize("gate", sorted(FAST_GATES))
def test_every_fast_gate_agrees_with_the_reference_importer(gate):
    n_angles, n_qubits = FAST_GATES[gate]
    angles = f"({', '.join(ANGLES[: n_angles])})" if n_angles else ""
    operands = ", ".join(f"q[{i}]" for i in range(n_qubits))
    _assert_same(f'OPENQASM 3.0; include "stdgates.inc"; qubit[3] q; bit[3] c; {gate}{angles} {operands}; c = measure q;')


def test_generated_programs_agree_with_the_reference_importer():
    rng = random.Random(20261121)
    for _ in range(300):
        _assert_same(_random_program(rng))


@pytest.mark.parametrize(
    "text",
    [
        "OPENQASM 3.0; qubit q; h q; measure q;",  # implicit include + bare measure: QCOS conveniences
        'OPENQASM 3; include "stdgates.inc"; qubit[1] q; bit[1] c; h q[0]; c = measure q;',  # "3" not "3.0"
        'OPENQASM 3.0; include "stdgates.inc"; qubit[1] q; bit[1] c; rx(pi/2) q[0]; c = measure q;',
        'OPENQASM 3.0; include "stdgates.inc"; qubit[1] q; bit[1] c; rx(3) q[0]; c = measure q;',  # int angle
        'OPENQASM 3.0; include "stdgates.inc"; qubit[1] q; bit[1] c; id q[0]; c = measure q;',
        'OPENQASM 3.0; include "stdgates.inc"; qubit[1] q; bit[1] c; U(0.1, 0.2, 0.3) q[0]; c = measure q;',
        'OPENQASM 3.0; include "stdgates.inc"; qubit[1] q; bit[1] c; reset q[0]; c = measure q;',
        'OPENQASM 3.0; include "stdgates.inc"; gate g a { h a; } qubit[1] q; bit[1] c; g q[0]; c = measure q;',
        'OPENQASM 3.0; include "stdgates.inc"; qubit[2] q; bit[2] c; ctrl @ x q[0], q[1]; c = measure q;',
        'OPENQASM 3.0; include "stdgates.inc"; qubit[2] q; bit[2] c; h q[0]; c[0] = measure q[0]; '
        "if (c[0]) { x q[1]; } c[1] = measure q[1];",
        'OPENQASM 3.0; include "stdgates.inc"; qubit[2] q; bit[2] c; c[0:1] = measure q[0:1];',
        'OPENQASM 3.0; include "stdgates.inc"; qreg q[2]; creg c[2]; h q[0]; measure q -> c;',
        'OPENQASM 3.0; include "stdgates.inc"; qubit[2] q; bit[2] c; barrier; c = measure q;',
    ],
)
def test_programs_outside_the_subset_take_the_reference_path(text):
    assert not fast_path_eligible(text)
    assert circuits._parse_qasm3_fast(text) is None
    assert parse_circuit(text) == circuits._parse_qasm3_reference(text)


@pytest.mark.parametrize(
    "text",
    [
        'OPENQASM 3.0; include "stdgates.inc"; qubit[2] q; bit[2] c; h q[2]; c = measure q;',  # index out of range
        'OPENQASM 3.0; include "stdgates.inc"; qubit[2] q; bit[2] c; h r[0]; c = measure q;',  # undeclared
        'OPENQASM 3.0; include "stdgates.inc"; qubit[2] q; bit[2] c; cx q[0], q[0]; c = measure q;',
        'OPENQASM 3.0; include "stdgates.inc"; qubit[2] q; bit[2] c; cx q, q; c = measure q;',
        'OPENQASM 3.0; include "stdgates.inc"; qubit[2] q; bit[3] c; c = measure q;',  # size mismatch
        'OPENQASM 3.0; include "stdgates.inc"; qubit[2] q; qubit[2] q; bit[2] c; c = measure q;',
        'OPENQASM 3.0; include "stdgates.inc"; qubit[2] q; bit[2] c; h q[0] c = measure q;',  # missing ';'
        'OPENQASM 3.0; include "stdgates.inc"; qubit[2] q; bit[2] c; h q[0]; c = measure q',
    ],
)
def test_invalid_programs_keep_the_reference_parsers_errors(text):
    assert not fast_path_eligible(text)
    with pytest.raises(circuits.CircuitError) as fast_or_not:
        parse_circuit(text)
    with pytest.raises(circuits.CircuitError) as reference:
        circuits._parse_qasm3_reference(text)
    assert (fast_or_not.value.line, fast_or_not.value.column, fast_or_not.value.message) == (
        reference.value.line, reference.value.column, reference.value.message,
    )


def test_a_native_importer_failure_falls_back(monkeypatch):
    # "barrier;" makes the native importer panic (pyo3's PanicException is a BaseException):
    # force it through the fast path and check the reference circuit still comes back.
    text = 'OPENQASM 3.0; include "stdgates.inc"; qubit[2] q; bit[2] c; h q[0]; barrier; c = measure q;'
    monkeypatch.setattr(circuits, "fast_path_eligible", lambda _text: True)
    assert circuits._parse_qasm3_fast(text) is None
    assert parse_circuit(text) == circuits._parse_qasm3_reference(text)
