"""Each provider formula against an example computed by hand (the arithmetic is in the comments)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from qiskit import QuantumCircuit

from finops.catalog import PriceSheet, get_sheet
from finops.pricing import PricingError, estimate


def bell() -> QuantumCircuit:
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure([0, 1], [0, 1])
    return qc


def ghz3() -> QuantumCircuit:
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.cx(0, 1)
    qc.cx(1, 2)
    qc.measure_all()  # adds a barrier and 3 measurements: neither is billed by IonQ
    return qc


def layered(n1q: int, n2q: int) -> QuantumCircuit:
    qc = QuantumCircuit(2)
    for _ in range(n1q):
        qc.h(0)
    for _ in range(n2q):
        qc.cx(0, 1)
    return qc


def ionq_floor_sheet() -> PriceSheet:
    """The same Aria prices with the other reading of Microsoft's minimum: a floor."""
    aria = get_sheet("azure-ionq-aria", "1")
    return PriceSheet(
        "azure-ionq-aria", "1-floor", "azure_ionq", date(2025, 1, 1), {**aria.parameters, "minimum_added": D(0)}
    )


def test_local_simulator_is_free():
    e = estimate(ghz3(), "simulator", 100_000)
    assert e.cost_usd == D("0")
    assert e.price_sheet_id == "local-simulator"


def test_braket_qpu_per_task_plus_per_shot():
    # IQM Garnet: 0.30 + 0.00145 * 1000 = 0.30 + 1.45 = 1.75
    assert estimate(bell(), "iqm_garnet", 1000).cost_usd == D("1.75")
    # IonQ Forte on Braket: 0.30 + 0.08 * 100 = 8.30
    assert estimate(bell(), "ionq_forte_braket", 100).cost_usd == D("8.30")
    # IonQ Aria on Braket: 0.30 + 0.03 * 1000 = 30.30
    assert estimate(bell(), "ionq_aria_braket", 1000).cost_usd == D("30.30")
    # Rigetti Ankaa on Braket: 0.30 + 0.0009 * 1000 = 1.20
    assert estimate(bell(), "rigetti_ankaa", 1000).cost_usd == D("1.20")


def test_braket_simulator_per_millisecond_with_a_three_second_minimum():
    # 4,500 ms: 0.075 $/min * 4500 ms / 60000 ms = 0.005625
    assert estimate(bell(), "braket_sv1", 100, options={"duration_ms": 4500}).cost_usd == D("0.005625")
    # 1,200 ms is billed as the 3,000 ms minimum: 0.075 * 3000 / 60000 = 0.00375
    assert estimate(bell(), "braket_dm1", 100, options={"duration_ms": 1200}).cost_usd == D("0.00375")
    # 3,001 ms: 0.075 * 3001 / 60000 = 0.00375125 -> rounded UP to micro-dollars: 0.003752
    assert estimate(bell(), "braket_sv1", 100, options={"duration_ms": 3001}).cost_usd == D("0.003752")
    # No duration given: reserve one billed minute, 0.075 * 60000 / 60000 = 0.075
    assert estimate(bell(), "braket_sv1", 100).cost_usd == D("0.075")


def test_ibm_pay_as_you_go_documented_pre_run_estimate():
    # ibm_brisbane defaults: sx 60 ns, ECR 660 ns, measure 1300 ns, rep_delay 250 us.
    # Bell duration: h 60 ns, then cx 660 ns (ends 720 ns), then measure 1300 ns -> 2020 ns.
    # seconds = 2 s * 1 sub-job + (250e-6 + 2.02e-6) * 4000 executions = 2 + 1.00808 = 3.00808
    # billed in whole seconds: 4 s * $1.60 = $6.40
    e = estimate(bell(), "ibm_brisbane", 4000)
    assert e.inputs["circuit_duration_s"] == D("2.02E-6")
    assert e.inputs["quantum_seconds"] == D("3.00808")
    assert e.inputs["billed_seconds"] == 4
    assert e.cost_usd == D("6.40")
    # With backend data given: 2 * 2 sub-jobs + (0.0001 + 0.0004) * 2000 = 4 + 1 = 5 s -> $8.00
    options = {"rep_delay_s": "0.0001", "circuit_duration_s": "0.0004", "sub_jobs": 2}
    assert estimate(bell(), "ibm_torino", 2000, options=options).cost_usd == D("8.00")
    # Heron r1 (ibm_torino): sx 32 ns + CZ 68 ns + measure 1560 ns = 1660 ns per shot;
    # 2 + (250e-6 + 1.66e-6) * 100 = 2.025166 s -> 3 s -> $4.80
    assert estimate(bell(), "ibm_torino", 100).cost_usd == D("4.80")


def test_azure_ionq_minimum_is_added_by_default():
    # GHZ-3: N1q = 1 (h), N2q = 2 (cx, cx); measurements and the barrier are free. C = 100.
    # gate-shots = 0.000220 * 1 * 100 + 0.000975 * 2 * 100 = 0.022 + 0.195 = 0.217
    # error mitigation off: 12.4166 + 0.217 = 12.6336
    e = estimate(ghz3(), "ionq_aria", 100, options={"error_mitigation": False})
    assert (e.inputs["gate_shots_1q"], e.inputs["gate_shots_2q"]) == (100, 200)
    assert e.cost_usd == D("12.6336")
    # Azure's default is error mitigation on: 97.50 + 0.217 = 97.717
    assert estimate(ghz3(), "ionq_aria", 100).cost_usd == D("97.717")


def test_azure_ionq_minimum_as_a_floor_below_and_above():
    floor = ionq_floor_sheet()
    off = {"error_mitigation": False}
    # Below the minimum: max(12.4166, 0.217) = 12.4166
    assert estimate(ghz3(), "ionq_aria", 100, options=off, sheet=floor).cost_usd == D("12.4166")
    # Above it: 10 h + 20 cx at 1000 shots: 0.000220 * 10 * 1000 + 0.000975 * 20 * 1000 = 2.2 + 19.5 = 21.7
    assert estimate(layered(10, 20), "ionq_aria", 1000, options=off, sheet=floor).cost_usd == D("21.7")
    # ... but below the error-mitigation minimum: max(97.50, 21.7) = 97.50
    assert estimate(layered(10, 20), "ionq_aria", 1000, sheet=floor).cost_usd == D("97.50")
    # The default (additive) reading of the same two jobs: 12.4166 + 21.7 = 34.1166; 97.50 + 21.7 = 119.20
    assert estimate(layered(10, 20), "ionq_aria", 1000, options=off).cost_usd == D("34.1166")
    assert estimate(layered(10, 20), "ionq_aria", 1000).cost_usd == D("119.20")


def test_azure_ionq_forte_prices():
    # 0.0001645 * 10 * 1000 + 0.001121 * 20 * 1000 = 1.645 + 22.42 = 24.065; + 12.4166 = 36.4816
    e = estimate(layered(10, 20), "ionq_forte", 1000, options={"error_mitigation": False})
    assert e.cost_usd == D("36.4816")


def test_azure_ionq_bills_a_multi_controlled_gate_as_six_n_minus_two():
    qc = QuantumCircuit(4)
    qc.mcx([0, 1, 2], 3)  # 3 controls, N = 4: 6 * (4 - 2) = 12 two-qubit gates
    qc.ccx(0, 1, 2)  # N = 3: 6 two-qubit gates
    qc.cx(0, 1)  # 1
    # N2q = 19; 0.000975 * 19 * 1000 = 18.525; floor reading: max(12.4166, 18.525) = 18.525
    e = estimate(qc, "ionq_aria", 1000, options={"error_mitigation": False}, sheet=ionq_floor_sheet())
    assert e.inputs["n2q_equivalent"] == 19
    assert e.cost_usd == D("18.525")


def test_quantinuum_hqc_with_measurements_and_resets():
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure(0, 0)
    qc.reset(0)
    qc.x(0)
    qc.measure([0, 1], [0, 1])
    # N1q = 2 (h, x), N2q = 1, Nm = 2 preparations + 3 measurements + 1 reset = 6, C = 500
    # HQC = 5 + 500 * (2 + 10 * 1 + 5 * 6) / 5000 = 5 + 500 * 42 / 5000 = 5 + 4.2 = 9.2
    # at the default $13.50 per HQC: 9.2 * 13.50 = 124.20
    e = estimate(qc, "quantinuum_h2", 500)
    assert e.inputs["hqc"] == D("9.2")
    assert e.cost_usd == D("124.20")
    # $/HQC is a sheet parameter: a contracted $10 per HQC gives 92.00
    h = get_sheet("azure-quantinuum-hqc", "1")
    contract = PriceSheet(h.sheet_id, "tenant-a", h.family, h.effective_from, {**h.parameters, "usd_per_hqc": D("10")})
    assert estimate(qc, "quantinuum_h2", 500, sheet=contract).cost_usd == D("92.00")


def test_rigetti_on_azure_bills_started_ten_millisecond_increments():
    # Given 123.4 ms of execution: ceil(123.4 / 10) = 13 increments * $0.02 = $0.26
    assert estimate(bell(), "rigetti_ankaa_azure", 1000, options={"execution_ms": "123.4"}).cost_usd == D("0.26")
    # Model: per shot = h 40 ns + cx 72 ns + measure 1500 ns + 200 us overhead = 201.612 us;
    # 1000 shots -> 201.612 ms -> ceil(20.1612) = 21 increments -> $0.42
    e = estimate(bell(), "rigetti_ankaa_azure", 1000)
    assert e.inputs["execution_ms"] == D("201.612")
    assert e.cost_usd == D("0.42")


def test_evidence_storage_is_charged_even_on_a_free_simulator():
    local = get_sheet("local-simulator", "1")
    paid = PriceSheet(local.sheet_id, "2", local.family, local.effective_from, {"evidence_storage_usd": D("0.05")})
    e = estimate(bell(), "simulator", 10, "urgent", sheet=paid)
    assert dict(e.breakdown) == {"queue": D("0"), "compute": D("0"), "storage": D("0.05")}
    assert e.cost_usd == D("0.05")  # storage is not multiplied by the tier


def test_bad_requests_are_pricing_errors():
    with pytest.raises(PricingError, match="unknown backend"):
        estimate(bell(), "nope", 10)
    with pytest.raises(PricingError, match="shots"):
        estimate(bell(), "simulator", 0)
    with pytest.raises(PricingError, match="shots"):
        estimate(bell(), "simulator", True)  # type: ignore[arg-type]
    with pytest.raises(PricingError, match="unknown pricing options"):
        estimate(bell(), "simulator", 10, options={"duration": 5})
    with pytest.raises(PricingError, match="qubits"):
        estimate(QuantumCircuit(21), "iqm_garnet", 10)
    with pytest.raises(PricingError, match="priced by a"):
        estimate(bell(), "ibm_torino", 10, sheet=get_sheet("braket-sim-sv1", "1"))
