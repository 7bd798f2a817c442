"""A job's price before it runs: the catalogue entry that prices a backend, the tiers a policy sets,
the estimate from the price-sheet version in force, and an estimate read back from its charge."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from qcos.errors import PricingFailed

from .catalog import BACKENDS as PRICED_BACKENDS
from .counts import UnpricableCircuit
from .formulas import PricingError
from .models import BudgetPolicy
from .pricing import Estimate, estimate
from .sheets import sheet_current

D = Decimal
LOCAL_PRICING_BACKEND = "simulator"


def pricing_backend(backend: str) -> str:
    """The finops catalogue entry that prices ``backend``. Backends QCOS only simulates locally
    (``simulator`` and the fake IBM calibration backends) are priced by the local-simulator sheet;
    hardware names are priced at their hardware sheet even when they run in DEV MODE, so budgets
    and approvals behave as they will in production."""
    return backend if backend in PRICED_BACKENDS else LOCAL_PRICING_BACKEND


def cost_tiers_for(policies: Iterable[BudgetPolicy]) -> Mapping[str, Any] | None:
    """The project's policy's tiers, else the tenant's, else the defaults (None)."""
    chosen = None
    for policy in sorted(policies, key=lambda p: p.project_id is not None):
        if policy.cost_tiers:
            chosen = policy.cost_tiers
    return chosen


def price_estimate(*, circuit, backend: str, shots: int, tier: str = "standard",
                   tier_multipliers: Mapping[str, Any] | None = None, on: date | None = None) -> Estimate:
    """Price a parsed circuit with the price-sheet version in force (from the database)."""
    name = pricing_backend(backend)
    try:
        sheet = sheet_current(PRICED_BACKENDS[name].sheet_id, on)
        return estimate(circuit, name, shots, tier=tier, tier_multipliers=tier_multipliers, sheet=sheet)
    except (PricingError, UnpricableCircuit, LookupError) as exc:
        raise PricingFailed(str(exc), details={"backend": backend}) from None


_TEXT_INPUTS = frozenset({"backend", "provider", "target", "family", "sheet_effective_from", "tier"})


def estimate_from_dict(data: Mapping[str, Any]) -> Estimate:
    """Inverse of ``Estimate.as_dict``: decimal strings back to Decimals (text inputs stay text)."""
    inputs = {k: (_decimal_or_text(v) if k not in _TEXT_INPUTS else v) for k, v in data["inputs"].items()}
    return Estimate(
        cost_usd=D(data["cost_usd"]),
        breakdown=MappingProxyType({k: D(v) for k, v in data["breakdown"].items()}),
        price_sheet_id=data["price_sheet_id"],
        price_sheet_version=str(data["price_sheet_version"]),
        inputs=MappingProxyType(inputs),
        formula=data["formula"],
        backend=data["backend"],
        tier=data["tier"],
        currency=data.get("currency", "USD"),
    )


def _decimal_or_text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        number = D(value)
    except ArithmeticError:
        return value
    return number if number.is_finite() else value
