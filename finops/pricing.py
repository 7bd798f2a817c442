"""Pre-submit cost estimates and post-run settlement, from versioned price sheets.

Breakdown (the Ledger seed's ``cost_breakdown``), all in USD:
- ``compute``: what the provider charges for the job, by the sheet's family formula.
- ``queue``: QCOS's priority surcharge, ``compute * (multiplier - 1)`` for the job's cost tier
  (``standard`` 1.0, ``priority`` 1.5, ``urgent`` 2.0 by default, as in the seed's budget policy).
  Queue *time* is free at every provider; what a tenant pays for is being scheduled ahead.
- ``storage``: the sheet's ``evidence_storage_usd``, QCOS's per-job fee for keeping the signed
  evidence bundle (default $0). It is not multiplied by the tier.
``cost_usd`` is exactly ``compute + queue + storage``.

Rounding: arithmetic is exact Decimal (a 50-digit local context, so products of prices and counts
never round), then each component is quantized to micro-dollars (6 places: the unit of an integer
micro-dollar column). Estimates round UP (``ROUND_CEILING``) because an estimate is the amount
reserved against a budget and must cover the charge; settlements round HALF_EVEN (unbiased over
many jobs). Metered units round as the providers meter them: IBM seconds and Rigetti 10 ms
increments are rounded up to whole increments, Braket simulators are billed per millisecond with
a 3,000 ms minimum, HQCs and gate-shots are exact.

Settlement never exceeds the estimate: the estimate was reserved inside the job's transaction and
the budget invariant ``spent + reserved <= limit`` only holds if capture <= reservation (card-style
reserve -> capture -> release). If a provider's actual charge is higher (a longer simulation than
reserved for), ``actual_cost`` reports ``capped=True`` and the uncapped figure, so the overrun is
visible for reconciliation, but the budget is charged the reserved amount.

The per-provider formulas are in ``finops.formulas``; the prices they read are versioned sheets in
``finops.catalog``; the circuit counts they need come from ``finops.counts``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal, localcontext
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .catalog import PriceSheet, current_sheet, get_backend, get_sheet, sheet_family
from .counts import circuit_counts
from .formulas import ESTIMATORS, OPTIONS, ZERO_COST_STATUSES, Job, PricingError, actual_charge, to_decimal

if TYPE_CHECKING:
    from qiskit import QuantumCircuit
__all__ = [
    "DEFAULT_TIER_MULTIPLIERS",
    "Estimate",
    "PricingError",
    "Settlement",
    "actual_cost",
    "estimate",
    "settle",
    "tier_multiplier",
]

D = Decimal
MICRO = D("0.000001")
DEFAULT_TIER_MULTIPLIERS: Mapping[str, Decimal] = MappingProxyType(
    {"standard": D("1.0"), "priority": D("1.5"), "urgent": D("2.0")}
)


def _money(value: Decimal, rounding: str) -> Decimal:
    return value.quantize(MICRO, rounding=rounding)


def tier_multiplier(tier: str, tier_multipliers: Mapping[str, Any] | None = None) -> Decimal:
    """The multiplier for ``tier``. Accepts ``{"priority": 1.5}`` or the seed's YAML shape
    ``{"priority": {"multiplier": 1.5}}``. Below 1.0 is refused: a discount is not a surcharge."""
    table = DEFAULT_TIER_MULTIPLIERS if tier_multipliers is None else tier_multipliers
    if tier not in table:
        raise PricingError(f"unknown cost tier {tier!r}; known: {', '.join(sorted(table))}")
    raw = table[tier]
    if isinstance(raw, Mapping):
        raw = raw.get("multiplier")
    value = to_decimal(raw, f"cost tier {tier} multiplier")
    if value < 1:
        raise PricingError(f"cost tier {tier} multiplier {value} is below 1.0")
    return value


@dataclass(frozen=True)
class Estimate:
    """A priced job, stamped with the sheet that priced it. ``inputs`` hold everything settlement
    needs to recompute the charge (counts, shots, tier multiplier, metered-unit estimates)."""

    cost_usd: Decimal
    breakdown: Mapping[str, Decimal]
    price_sheet_id: str
    price_sheet_version: str
    inputs: Mapping[str, Any]
    formula: str
    backend: str
    tier: str
    currency: str = "USD"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with every Decimal as a string (floats would lose cents)."""

        def plain(v: Any) -> Any:
            return str(v) if isinstance(v, Decimal) else v

        return {
            "cost_usd": str(self.cost_usd),
            "currency": self.currency,
            "breakdown": {k: str(v) for k, v in self.breakdown.items()},
            "price_sheet_id": self.price_sheet_id,
            "price_sheet_version": self.price_sheet_version,
            "backend": self.backend,
            "tier": self.tier,
            "inputs": {k: plain(v) for k, v in self.inputs.items()},
            "formula": self.formula,
        }


@dataclass(frozen=True)
class Settlement:
    """The actual cost of a finished job; ``cost_usd`` is what the budget is charged."""

    cost_usd: Decimal
    breakdown: Mapping[str, Decimal]
    uncapped_usd: Decimal
    capped: bool
    inputs: Mapping[str, Any]
    formula: str


def estimate(
    circuit: QuantumCircuit,
    backend: str,
    shots: int,
    tier: str = "standard",
    tier_multipliers: Mapping[str, Any] | None = None,
    *,
    options: Mapping[str, Any] | None = None,
    sheet: PriceSheet | None = None,
    on: date | None = None,
) -> Estimate:
    """Price ``circuit`` on ``backend`` for ``shots`` before it is submitted.

    ``options`` refine what cannot be read from the circuit (``error_mitigation`` for IonQ,
    ``duration_ms`` for Braket simulators, ``rep_delay_s``/``sub_jobs``/``circuit_duration_s`` for
    IBM, ``execution_ms`` for Rigetti). ``sheet`` prices with a given sheet (e.g. a tenant's
    contracted rates) instead of the catalogue's current one; ``on`` picks the version in force.
    """
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
        raise PricingError(f"shots must be a positive integer, got {shots!r}")
    try:
        spec = get_backend(backend)
        price = sheet or current_sheet(spec.sheet_id, on)
    except LookupError as exc:
        raise PricingError(str(exc)) from None
    if price.family != sheet_family(spec.sheet_id):
        raise PricingError(f"{backend} is priced by a {sheet_family(spec.sheet_id)} sheet, not {price.family}")
    opts = dict(options or {})
    if unknown := set(opts) - OPTIONS:
        raise PricingError(f"unknown pricing options {sorted(unknown)}")
    multiplier = tier_multiplier(tier, tier_multipliers)
    if spec.num_qubits is not None and circuit.num_qubits > spec.num_qubits:
        raise PricingError(f"{backend} has {spec.num_qubits} qubits; the circuit needs {circuit.num_qubits}")
    counts = circuit_counts(circuit)
    with localcontext() as ctx:
        ctx.prec = 50
        charge = ESTIMATORS[price.family](Job(price.parameters, spec, circuit, counts, shots, opts))
        compute = _money(charge.compute, ROUND_CEILING)
        queue = _money(compute * (multiplier - 1), ROUND_CEILING)
        storage = _money(price.parameters["evidence_storage_usd"], ROUND_CEILING)
        total = compute + queue + storage
    inputs: dict[str, Any] = {
        "backend": spec.name,
        "provider": spec.provider,
        "target": spec.target,
        "family": price.family,
        "sheet_effective_from": price.effective_from.isoformat(),
        "shots": shots,
        "tier": tier,
        "tier_multiplier": multiplier,
        **counts.as_inputs(),
        **charge.quantities,
    }
    formula = (
        f"compute: {charge.formula}; queue = compute * (tier multiplier - 1) = {compute} * ({multiplier} - 1); "
        f"storage = evidence_storage_usd = {storage}; total = {compute} + {queue} + {storage} = {total} USD"
    )
    return Estimate(
        cost_usd=total,
        breakdown=MappingProxyType({"queue": queue, "compute": compute, "storage": storage}),
        price_sheet_id=price.sheet_id,
        price_sheet_version=price.version,
        inputs=MappingProxyType(inputs),
        formula=formula,
        backend=spec.name,
        tier=tier,
        currency=price.currency,
    )


# --- settlement ----------------------------------------------------------------------------------


def actual_cost(estimate: Estimate, actual_inputs: Mapping[str, Any], *, sheet: PriceSheet | None = None) -> Settlement:
    """The actual cost of a finished job from the provider's execution data, capped at the
    estimate. Uses the estimate's own sheet version: prices may have changed since submission.

    ``actual_inputs``: ``status`` (COMPLETED by default; FAILED/CANCELLED cost 0 unless a metered
    quantity is reported), and per family ``shots``, ``duration_ms`` (Braket simulators),
    ``usage_seconds`` (IBM), ``execution_ms`` (Rigetti), ``hqc`` (Quantinuum, if reported),
    ``error_mitigation`` (IonQ), ``has_reservation`` (Braket), ``evidence_stored``.
    """
    try:
        price = sheet or get_sheet(estimate.price_sheet_id, estimate.price_sheet_version)
    except LookupError as exc:
        raise PricingError(f"{exc}: pass the sheet the estimate was priced with") from None
    if price.key != (estimate.price_sheet_id, estimate.price_sheet_version):
        raise PricingError(
            f"estimate was priced with {estimate.price_sheet_id} v{estimate.price_sheet_version}, not {price.key}"
        )
    status = str(actual_inputs.get("status", "COMPLETED")).upper()
    multiplier = to_decimal(estimate.inputs["tier_multiplier"], "tier_multiplier")
    stored = actual_inputs.get("evidence_stored", status not in ZERO_COST_STATUSES)
    with localcontext() as ctx:
        ctx.prec = 50
        charge = actual_charge(price.parameters, price.family, estimate.inputs, actual_inputs)
        compute = _money(charge.compute, ROUND_HALF_EVEN)
        queue = _money(compute * (multiplier - 1), ROUND_HALF_EVEN)
        storage = _money(price.parameters["evidence_storage_usd"], ROUND_HALF_EVEN) if stored else D("0.000000")
        total = compute + queue + storage
    capped = total > estimate.cost_usd
    breakdown = (
        estimate.breakdown if capped else MappingProxyType({"queue": queue, "compute": compute, "storage": storage})
    )
    return Settlement(
        cost_usd=estimate.cost_usd if capped else total,
        breakdown=breakdown,
        uncapped_usd=total,
        capped=capped,
        inputs=MappingProxyType({"status": status, **charge.quantities}),
        formula=f"compute: {charge.formula}; total = {compute} + {queue} + {storage} = {total} USD"
        + (f", capped at the estimate {estimate.cost_usd}" if capped else ""),
    )


def settle(estimate: Estimate, actual_inputs: Mapping[str, Any], *, sheet: PriceSheet | None = None) -> Decimal:
    """What the budget is charged for a finished job: ``actual_cost(...).cost_usd``, never above
    ``estimate.cost_usd`` (see the module docstring for why)."""
    return actual_cost(estimate, actual_inputs, sheet=sheet).cost_usd
