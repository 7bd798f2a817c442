"""Circuits and request bodies the tests share."""

from __future__ import annotations

BELL_QASM3 = """OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
bit[2] c;
h q[0];
cx q[0], q[1];
c = measure q;
"""

BELL_QASM2 = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""


def slow_circuit(qubits: int = 20, layers: int = 30) -> str:
    """A non-Clifford state-vector workload that takes seconds on Aer (for crash tests)."""
    lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', f"qreg q[{qubits}];", f"creg c[{qubits}];"]
    for layer in range(layers):
        lines += [f"rx({0.1 * (i + 1) + layer}) q[{i}];" for i in range(qubits)]
        lines += [f"cx q[{i}],q[{i + 1}];" for i in range(0, qubits - 1, 2)]
        lines += [f"cx q[{i}],q[{i + 1}];" for i in range(1, qubits - 1, 2)]
    lines.append("measure q -> c;")
    return "\n".join(lines) + "\n"


def job_body(circuit: str = BELL_QASM3, **overrides) -> dict:
    body = {
        "circuit": circuit,
        "backend": "simulator",
        "shots": 1024,
        "ledger": {
            "enabled": True,
            "tenant_id": "research-alpha",
            "project": "quantum-ml",
            "tags": {"experiment": "bell"},
        },
    }
    body.update(overrides)
    return body
