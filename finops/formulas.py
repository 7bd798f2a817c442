"""The providers' pricing formulas, one per price-sheet family, for estimates and settlement.

Each ``_est_*`` function prices a job before submission from the circuit and the backend's
inputs; ``actual_charge`` prices it afterwards from what the provider reported. Both return the
exact, unrounded charge: rounding, tiers and the settlement cap are ``finops.pricing``'s business,
so every family is rounded the same way. The arithmetic here runs inside ``finops.pricing``'s
50-digit Decimal context.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import TYPE_CHECKING, Any

from .catalog import Backend
from .counts import Counts, circuit_duration_s

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

D = Decimal
Prices = Mapping[str, Decimal]
# Braket, IonQ and IBM (system errors) charge nothing for a task that failed or was cancelled.
ZERO_COST_STATUSES = frozenset({"FAILED", "CANCELLED"})
OPTIONS = frozenset(
    {"duration_ms", "rep_delay_s", "sub_jobs", "circuit_duration_s", "error_mitigation", "execution_ms"}
)


class PricingError(ValueError):
    """The request cannot be priced (unknown backend or tier, bad shots, missing settlement data)."""


def to_decimal(value: Any, name: str) -> Decimal:
    """Exact Decimal from int, str or Decimal. A float (as YAML or JSON yield for ``1.5``) goes
    through ``repr``, its shortest round-trip text, so 1.5 becomes Decimal("1.5"), never the binary
    expansion."""
    if isinstance(value, bool):
        raise PricingError(f"{name} must be a number, not a boolean")
    if isinstance(value, float):
        value = repr(value)
    try:
        result = D(value)
    except (ArithmeticError, TypeError, ValueError):
        raise PricingError(f"{name} must be a number, got {value!r}") from None
    if not result.is_finite() or result < 0:
        raise PricingError(f"{name} must be a finite number >= 0, got {value!r}")
    return result


def _ceil_to(value: Decimal, increment: Decimal) -> Decimal:
    """Round ``value`` up to a whole number of ``increment``s (the provider's metering unit)."""
    if increment <= 0:
        return value
    return (value / increment).to_integral_value(rounding=ROUND_CEILING) * increment


@dataclass(frozen=True)
class Job:
    """What an estimator reads: the sheet's prices, the backend, the circuit and its counts."""

    p: Prices
    backend: Backend
    circuit: QuantumCircuit
    counts: Counts
    shots: int
    options: Mapping[str, Any]


@dataclass(frozen=True)
class Charge:
    compute: Decimal  # exact, before rounding
    quantities: dict[str, Any]
    formula: str


# --- estimates, one per family -------------------------------------------------------------------


def _est_local(j: Job) -> Charge:
    return Charge(D(0), {}, "compute = 0 (local simulator)")


def _braket_qpu_charge(p: Prices, shots: int) -> Charge:
    compute = p["per_task_usd"] + p["per_shot_usd"] * shots
    return Charge(compute, {}, f"per_task + per_shot * shots = {p['per_task_usd']} + {p['per_shot_usd']} * {shots}")


def _est_braket_qpu(j: Job) -> Charge:
    return _braket_qpu_charge(j.p, j.shots)


def _braket_sim_charge(p: Prices, duration_ms: Decimal) -> Charge:
    billed = max(duration_ms, p["minimum_billed_ms"])
    compute = p["per_minute_usd"] * billed / 60000
    formula = f"per_minute * max(duration_ms, minimum_ms) / 60000 = {p['per_minute_usd']} * {billed} / 60000"
    return Charge(compute, {"duration_ms": duration_ms, "billed_ms": billed}, formula)


def _est_braket_sim(j: Job) -> Charge:
    duration = j.options.get("duration_ms", j.backend.inputs["expected_duration_ms"])
    return _braket_sim_charge(j.p, to_decimal(duration, "duration_ms"))


def _ibm_charge(p: Prices, seconds: Decimal, quantities: dict[str, Any], how: str) -> Charge:
    billed = _ceil_to(seconds, p["billing_increment_s"])
    quantities |= {"quantum_seconds": seconds, "billed_seconds": billed}
    return Charge(
        billed * p["per_second_usd"], quantities, f"{how}; per_second * {billed} s = {p['per_second_usd']} * {billed}"
    )


def _est_ibm(j: Job) -> Charge:
    p, o = j.p, j.options
    rep_delay = to_decimal(o.get("rep_delay_s", j.backend.inputs["rep_delay_s"]), "rep_delay_s")
    sub_jobs = int(to_decimal(o.get("sub_jobs", 1), "sub_jobs"))
    if "circuit_duration_s" in o:
        duration = to_decimal(o["circuit_duration_s"], "circuit_duration_s")
    else:
        duration = circuit_duration_s(j.circuit, j.backend.inputs)
    seconds = sub_jobs * p["subjob_overhead_s"] + (rep_delay + duration) * j.shots
    how = (
        f"seconds = overhead * sub_jobs + (rep_delay + duration) * executions = "
        f"{p['subjob_overhead_s']} * {sub_jobs} + ({rep_delay} + {duration}) * {j.shots} = {seconds}"
    )
    quantities = {"sub_jobs": sub_jobs, "rep_delay_s": rep_delay, "circuit_duration_s": duration, "executions": j.shots}
    return _ibm_charge(p, seconds, quantities, how)


def _ionq_charge(p: Prices, c: Mapping[str, Any], shots: int, em: bool) -> Charge:
    gs1, gs2 = c["n1q"] * shots, c["n2q_equivalent"] * shots
    usage = p["per_1q_gate_shot_usd"] * gs1 + p["per_2q_gate_shot_usd"] * gs2
    minimum = p["minimum_em_usd"] if em else p["minimum_usd"]
    added = p["minimum_added"] != 0
    compute = minimum + usage if added else max(minimum, usage)
    formula = (
        f"{'m + gate_shots' if added else 'max(m, gate_shots)'}, gate_shots = p1 * N1q * C + p2 * N2q * C = "
        f"{p['per_1q_gate_shot_usd']} * {gs1} + {p['per_2q_gate_shot_usd']} * {gs2} = {usage}, "
        f"m = {minimum} (error mitigation {'on' if em else 'off'})"
    )
    quantities = {"gate_shots_1q": gs1, "gate_shots_2q": gs2, "error_mitigation": em, "minimum_usd": minimum}
    return Charge(compute, quantities, formula)


def _est_ionq(j: Job) -> Charge:
    em = j.options.get("error_mitigation", j.backend.inputs.get("error_mitigation_default", D(0)) != 0)
    if not isinstance(em, bool):
        raise PricingError("error_mitigation must be true or false")
    return _ionq_charge(j.p, j.counts.as_inputs(), j.shots, em)


def _hqc_charge(p: Prices, c: Mapping[str, Any], shots: int) -> Charge:
    weighted = p["weight_1q"] * c["n1q"] + p["weight_2q"] * c["n2q_equivalent"] + p["weight_spam"] * c["spam"]
    hqc = p["hqc_base"] + shots * weighted / p["hqc_divisor"]
    formula = (
        f"HQC = base + C * (N1q + w2 N2q + wm Nm) / divisor = {p['hqc_base']} + {shots} * ({c['n1q']} + "
        f"{p['weight_2q']} * {c['n2q_equivalent']} + {p['weight_spam']} * {c['spam']}) / {p['hqc_divisor']} = {hqc}; "
        f"usd_per_hqc * HQC = {p['usd_per_hqc']} * {hqc}"
    )
    return Charge(hqc * p["usd_per_hqc"], {"hqc": hqc}, formula)


def _est_hqc(j: Job) -> Charge:
    return _hqc_charge(j.p, j.counts.as_inputs(), j.shots)


def _rigetti_charge(p: Prices, execution_ms: Decimal, quantities: dict[str, Any]) -> Charge:
    increments = _ceil_to(execution_ms, p["increment_ms"]) / p["increment_ms"]
    quantities |= {"execution_ms": execution_ms, "increments": increments}
    formula = (
        f"usd_per_increment * ceil(execution_ms / increment_ms) = "
        f"{p['usd_per_increment']} * ceil({execution_ms} / {p['increment_ms']})"
    )
    return Charge(increments * p["usd_per_increment"], quantities, formula)


def _est_rigetti(j: Job) -> Charge:
    if "execution_ms" in j.options:
        return _rigetti_charge(j.p, to_decimal(j.options["execution_ms"], "execution_ms"), {})
    inputs = j.backend.inputs
    per_shot = circuit_duration_s(j.circuit, inputs) + inputs["shot_overhead_s"]
    execution_ms = (inputs["job_overhead_s"] + per_shot * j.shots) * 1000
    return _rigetti_charge(j.p, execution_ms, {"shot_seconds": per_shot})


ESTIMATORS: dict[str, Callable[[Job], Charge]] = {
    "local": _est_local,
    "braket_qpu": _est_braket_qpu,
    "braket_simulator": _est_braket_sim,
    "ibm_payg": _est_ibm,
    "azure_ionq": _est_ionq,
    "quantinuum_hqc": _est_hqc,
    "rigetti_azure": _est_rigetti,
}


def _metered(actual: Mapping[str, Any], name: str, status: str, family: str) -> Decimal | None:
    """A metered quantity the provider reported, or None when a zero-cost status makes it moot."""
    if name in actual:
        return to_decimal(actual[name], name)
    if status in ZERO_COST_STATUSES:
        return None
    raise PricingError(f"settling a {family} job needs actual {name!r}")


def actual_charge(p: Prices, family: str, inputs: Mapping[str, Any], actual: Mapping[str, Any]) -> Charge:
    """The provider's charge from what it reported. IBM reports no usage for a job failed by a
    system error, so passing IBM's reported ``usage_seconds`` (or none) applies its zero-cost rule."""
    status = str(actual.get("status", "COMPLETED")).upper()
    zero = Charge(D(0), {"status": status}, f"compute = 0 ({status})")
    if family == "local":
        return zero
    if actual.get("has_reservation") and family.startswith("braket"):
        return Charge(D(0), {}, "compute = 0 (billed through a Braket reservation)")
    shots_value = to_decimal(actual.get("shots", inputs["shots"]), "shots")
    if shots_value != shots_value.to_integral_value():
        raise PricingError(f"shots must be a whole number, got {shots_value}")
    shots = int(shots_value)
    if family == "braket_qpu":
        return zero if status in ZERO_COST_STATUSES else _braket_qpu_charge(p, shots)
    if family == "azure_ionq":
        if status in ZERO_COST_STATUSES:  # IonQ releases reserved credit on failure or cancel
            return zero
        em = actual.get("error_mitigation", inputs["error_mitigation"])
        if not isinstance(em, bool):
            raise PricingError("error_mitigation must be true or false")
        return _ionq_charge(p, inputs, shots, em)
    if family == "quantinuum_hqc":
        if "hqc" in actual:
            hqc = to_decimal(actual["hqc"], "hqc")
            return Charge(
                hqc * p["usd_per_hqc"], {"hqc": hqc}, f"usd_per_hqc * reported HQC = {p['usd_per_hqc']} * {hqc}"
            )
        return zero if status in ZERO_COST_STATUSES else _hqc_charge(p, inputs, shots)
    # Time-metered families: a reported duration is charged even for a failed task, as the
    # provider (and braket.tracking for simulators) does; no report plus a failure costs 0.
    name = {"braket_simulator": "duration_ms", "ibm_payg": "usage_seconds", "rigetti_azure": "execution_ms"}[family]
    quantity = _metered(actual, name, status, family)
    if quantity is None:
        return zero
    if family == "braket_simulator":
        return _braket_sim_charge(p, quantity)
    if family == "ibm_payg":
        return _ibm_charge(p, quantity, {}, f"reported usage {quantity} s")
    return _rigetti_charge(p, quantity, {})
