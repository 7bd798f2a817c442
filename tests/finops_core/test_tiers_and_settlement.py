"""Cost tiers, Decimal-only results, and settlement that never exceeds the reservation."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from qiskit import QuantumCircuit

from finops.catalog import BACKENDS
from finops.pricing import DEFAULT_TIER_MULTIPLIERS, PricingError, actual_cost, estimate, settle, tier_multiplier


def bell() -> QuantumCircuit:
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure([0, 1], [0, 1])
    return qc


def test_tiers_add_a_queue_surcharge_on_compute():
    # IQM Garnet, 1000 shots: compute = 0.30 + 0.00145 * 1000 = 1.75
    standard = estimate(bell(), "iqm_garnet", 1000)
    priority = estimate(bell(), "iqm_garnet", 1000, "priority")  # queue = 1.75 * (1.5 - 1) = 0.875
    urgent = estimate(bell(), "iqm_garnet", 1000, "urgent")  # queue = 1.75 * (2.0 - 1) = 1.75
    assert dict(standard.breakdown) == {"queue": D(0), "compute": D("1.75"), "storage": D(0)}
    assert (priority.breakdown["queue"], priority.cost_usd) == (D("0.875"), D("2.625"))
    assert (urgent.breakdown["queue"], urgent.cost_usd) == (D("1.75"), D("3.50"))
    assert urgent.inputs["tier_multiplier"] == D("2.0")
    assert urgent.tier == "urgent"


def test_tier_multipliers_from_the_budget_policy_yaml_shape():
    # yaml.safe_load of the seed's cost_tiers block gives floats inside {"multiplier": ...}
    policy = {"standard": {"multiplier": 1.0}, "priority": {"multiplier": 1.25}, "urgent": {"multiplier": 3}}
    assert tier_multiplier("priority", policy) == D("1.25")  # via repr(1.25), not the binary expansion
    e = estimate(bell(), "iqm_garnet", 1000, "priority", policy)
    # queue = 1.75 * 0.25 = 0.4375
    assert (e.breakdown["queue"], e.cost_usd) == (D("0.4375"), D("2.1875"))
    assert dict(DEFAULT_TIER_MULTIPLIERS) == {"standard": D("1.0"), "priority": D("1.5"), "urgent": D("2.0")}


def test_unknown_or_discounting_tiers_are_refused():
    with pytest.raises(PricingError, match="unknown cost tier"):
        estimate(bell(), "iqm_garnet", 10, "express")
    with pytest.raises(PricingError, match=r"below 1\.0"):
        estimate(bell(), "iqm_garnet", 10, "standard", {"standard": "0.5"})
    with pytest.raises(PricingError):
        tier_multiplier("standard", {"standard": True})


def _floats(value: Any, path: str = "") -> list[str]:
    if isinstance(value, float):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _floats(v, f"{path}.{k}")]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in _floats(v, f"{path}[{i}]")]
    return []


@pytest.mark.parametrize("tier", ["standard", "priority", "urgent"])
@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_money_is_decimal_micro_dollars_everywhere(backend, tier):
    e = estimate(bell(), backend, 1000, tier)
    money = [e.cost_usd, *e.breakdown.values()]
    assert all(type(m) is D and m.as_tuple().exponent == -6 for m in money)
    assert e.cost_usd == sum(e.breakdown.values())
    assert set(e.breakdown) == {"queue", "compute", "storage"}
    assert not _floats(dict(e.inputs)), "a float leaked into the estimate's inputs"
    assert not _floats(e.as_dict())
    assert all(isinstance(v, str) for v in e.as_dict()["breakdown"].values())
    assert e.price_sheet_id == BACKENDS[backend].sheet_id
    assert e.price_sheet_version == "1"
    assert e.formula.endswith(f"= {e.cost_usd} USD")


# Actual execution data far above anything reserved, per family.
HUGE = {
    "shots": 10_000_000,
    "duration_ms": 10**9,
    "usage_seconds": 10**6,
    "execution_ms": 10**9,
    "hqc": 10**6,
    "error_mitigation": True,
}


@pytest.mark.parametrize("tier", ["standard", "urgent"])
@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_settlement_never_exceeds_the_estimate(backend, tier):
    e = estimate(bell(), backend, 1000, tier, options={"error_mitigation": False} if "ionq_" in backend else None)
    over = actual_cost(e, HUGE)
    assert settle(e, HUGE) == over.cost_usd <= e.cost_usd
    if e.cost_usd > 0:
        assert over.capped
        assert over.uncapped_usd > e.cost_usd
        assert over.breakdown == e.breakdown
        assert "capped at the estimate" in over.formula
    for status in ("FAILED", "CANCELLED"):
        assert settle(e, {"status": status}) == 0
    assert all(type(v) is D for v in (over.cost_usd, over.uncapped_usd, *over.breakdown.values()))


def test_settlement_from_actual_execution_data():
    # IBM: reported usage 2.2 s -> 3 whole seconds * 1.60 = 4.80 (estimate was 6.40, see test_formulas)
    ibm = estimate(bell(), "ibm_brisbane", 4000)
    assert settle(ibm, {"usage_seconds": "2.2"}) == D("4.80")
    assert settle(ibm, {"usage_seconds": 0}) == 0  # IBM reports no usage for a system-error failure
    with pytest.raises(PricingError, match="usage_seconds"):
        settle(ibm, {"status": "COMPLETED"})
    # Braket SV1 reserved a minute (0.075); it ran 3,001 ms: 0.075 * 3001 / 60000 = 0.00375125 -> 0.003751
    # (half-even); priority queue = 0.003751 * 0.5 = 0.0018755 -> 0.001876 (half-even: 5 rounds to even 6)
    sv1 = estimate(bell(), "braket_sv1", 100, "priority")
    s = actual_cost(sv1, {"duration_ms": 3001})
    assert (s.breakdown["compute"], s.breakdown["queue"], s.cost_usd) == (D("0.003751"), D("0.001876"), D("0.005627"))
    assert not s.capped
    assert s.cost_usd < sv1.cost_usd
    # Braket QPU ran fewer shots than requested: 0.30 + 0.00145 * 400 = 0.88
    assert settle(estimate(bell(), "iqm_garnet", 1000), {"shots": 400}) == D("0.88")
    # IonQ on Azure, error mitigation off, 50 of 100 shots: 12.4166 + 0.000220 * 50 + 0.000975 * 50 = 12.47635
    ionq = estimate(bell(), "ionq_aria", 100, options={"error_mitigation": False})
    assert settle(ionq, {"shots": 50}) == D("12.476350")
    # Quantinuum reported 7.5 HQC: 7.5 * 13.50 = 101.25
    assert settle(estimate(bell(), "quantinuum_h2", 1000), {"hqc": "7.5"}) == D("101.25")
    # Rigetti on Azure ran 95 ms: ceil(9.5) = 10 increments * 0.02 = 0.20
    assert settle(estimate(bell(), "rigetti_ankaa_azure", 1000), {"execution_ms": 95}) == D("0.20")


def test_settlement_uses_the_sheet_the_estimate_was_stamped_with():
    e = estimate(bell(), "iqm_garnet", 10)
    forged = type(e)(**{**e.__dict__, "price_sheet_version": "99"})
    with pytest.raises(PricingError, match="pass the sheet"):
        settle(forged, {})
