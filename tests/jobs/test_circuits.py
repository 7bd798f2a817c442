import hashlib

import pytest

from qcos.jobs.circuits import CircuitError, circuit_hash, parse_circuit, qasm_version
from tests.factories import BELL_QASM2, BELL_QASM3


def test_qasm2_and_qasm3_parse_to_the_same_bell_circuit():
    for text in (BELL_QASM2, BELL_QASM3):
        circuit = parse_circuit(text)
        assert circuit.num_qubits == 2
        assert dict(circuit.count_ops()) == {"h": 1, "cx": 1, "measure": 2}


def test_the_seed_quickstart_runs_as_written():
    # No include and a bare measure: QCOS adds stdgates and an implicit bit register.
    circuit = parse_circuit("OPENQASM 3.0; qubit q; h q; measure q;")
    assert circuit.num_qubits == 1 and circuit.num_clbits == 1
    assert dict(circuit.count_ops()) == {"h": 1, "measure": 1}


def test_bare_measure_of_a_register_and_a_slice_mirror_into_meas_registers():
    circuit = parse_circuit("OPENQASM 3.0;\nqubit[3] q;\nh q[0];\nmeasure q[0];\nmeasure q[1:2];\n")
    assert [creg.name for creg in circuit.cregs] == ["meas_q"]
    assert circuit.count_ops()["measure"] == 3


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncx q[0],q[1;\n', 4, 12),
        ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nfoo q[0];\n', 4, 1),
        ("OPENQASM 3.0;\nqubit[2] q;\ncx q[0], q[1;\n", 3, 13),
        ("OPENQASM 3.0;\nqubit[2] q;\nfoo q[0];\n", 3, 1),
    ],
)
def test_errors_carry_the_parsers_line_and_column(text, line, column):
    with pytest.raises(CircuitError) as caught:
        parse_circuit(text)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert caught.value.message


def test_version_comes_from_the_header_and_defaults_to_3():
    assert qasm_version("// comment\nOPENQASM 2.0;\n") == 2
    assert qasm_version("OPENQASM 3;") == 3
    assert qasm_version("qubit q;") == 3


def test_unsupported_version_is_refused():
    with pytest.raises(CircuitError, match="version 4"):
        parse_circuit("OPENQASM 4.0; qubit q;")


def test_hash_is_sha256_of_the_exact_bytes():
    text = BELL_QASM3 + " "
    assert circuit_hash(text) == "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    assert circuit_hash(text) != circuit_hash(BELL_QASM3)
