"""Gate counts and durations, as each pricing formula reads them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from qiskit import QuantumCircuit

from finops.counts import UnpricableCircuit, circuit_counts, circuit_duration_s


def test_barriers_and_delays_are_not_gates_and_measurements_are_apart():
    qc = QuantumCircuit(3, 3)
    qc.h(0)
    qc.barrier()
    qc.delay(100, 1, unit="ns")
    qc.cx(0, 1)
    qc.rz(0.3, 2)
    qc.measure([0, 1, 2], [0, 1, 2])
    c = circuit_counts(qc)
    assert (c.n1q, c.n2q, c.n_multi, c.measurements, c.resets) == (2, 1, 0, 3, 0)
    assert c.state_preparations == 3  # one implicit preparation per declared qubit
    assert c.depth == 3  # h -> cx -> measure; barrier and delay add no depth
    assert c.num_qubits == 3


def test_multi_controlled_gates_count_six_n_minus_two_two_qubit_gates():
    qc = QuantumCircuit(5)
    qc.ccx(0, 1, 2)  # N = 3 -> 6 * (3 - 2) = 6
    qc.mcx([0, 1, 2], 3)  # NOT with three controls, N = 4 -> 6 * (4 - 2) = 12 (Microsoft's own example)
    qc.mcx([0, 1, 2, 3], 4)  # N = 5 -> 6 * (5 - 2) = 18
    qc.cx(0, 1)  # an ordinary 2q gate: 1
    c = circuit_counts(qc)
    assert c.n2q == 1
    assert c.n_multi == 3
    assert c.multi_sizes == (3, 4, 5)
    assert c.two_qubit_equivalent == 1 + 6 + 12 + 18 == 37


def test_spam_counts_preparations_measurements_and_resets():
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.measure(0, 0)  # mid-circuit measurement
    qc.reset(0)
    qc.x(0)
    qc.measure([0, 1], [0, 1])
    c = circuit_counts(qc)
    # Nm = 2 implicit preparations + 3 measurements + 1 reset = 6
    assert (c.state_preparations, c.measurements, c.resets, c.spam) == (2, 3, 1, 6)


def test_control_flow_is_counted_for_the_worst_case():
    qc = QuantumCircuit(2, 1)
    qc.h(0)
    qc.measure(0, 0)
    with qc.for_loop(range(3)):
        qc.cx(0, 1)  # three iterations -> 3 two-qubit gates
    with qc.if_test((qc.clbits[0], 1)) as else_:
        qc.x(1)
    with else_:
        qc.h(1)
        qc.h(1)
    c = circuit_counts(qc)
    assert c.n2q == 3
    assert c.n1q == 1 + 1 + 2  # h, then both branches of the if (1 + 2)

    looping = QuantumCircuit(1, 1)
    with looping.while_loop((looping.clbits[0], 0)):
        looping.h(0)
        looping.measure(0, 0)
    with pytest.raises(UnpricableCircuit):
        circuit_counts(looping)


def test_duration_is_the_critical_path_with_virtual_phase_gates_free():
    durations = {
        "gate_1q_s": Decimal("6.0E-8"),
        "gate_2q_s": Decimal("6.6E-7"),
        "measure_s": Decimal("1.3E-6"),
        "reset_s": Decimal("1.86E-6"),
    }
    qc = QuantumCircuit(2, 2)
    qc.h(0)  # q0: 0 -> 60 ns
    qc.rz(0.1, 1)  # virtual: 0 ns
    qc.cx(0, 1)  # starts at 60 ns on both -> 720 ns
    qc.delay(80, 1, unit="ns")  # q1: 720 -> 800 ns
    qc.measure(0, 0)  # q0: 720 -> 2020 ns
    qc.measure(1, 1)  # q1: 800 -> 2100 ns
    assert circuit_duration_s(qc, durations) == Decimal("2.1E-6")

    toffoli = QuantumCircuit(3)
    toffoli.ccx(0, 1, 2)  # costed as 6 serial 2q gates: 6 * 660 ns
    assert circuit_duration_s(toffoli, durations) == Decimal("3.96E-6")
