"""What a benchmark run costs, priced by the finops sheets (Django-free).

A run is priced as the jobs it would be on the provider: one job per workload *circuit* (a GHZ
workload is two circuits, Z and X settings; Bell three; depth_stress one), each priced with
``finops.pricing.estimate`` at the requested shots, tier ``standard``.

Which sheet: a hardware name (``ibm_brisbane``, ``ibm_heron``, ``ionq_aria``, ``rigetti_ankaa``,
``quantinuum_h2``, …) is priced at **that hardware's sheet even in DEV MODE**, so reservations and
budgets behave exactly as they will once the provider's credentials are configured and the same
request runs on the device. ``simulator`` and the ``fake_<device>`` calibration snapshots are local
simulations and are priced with the local simulator's sheet. A DEV-MODE name finops has no sheet
for is refused (``PRICING_ERROR``) rather than priced as free.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from finops.catalog import BACKENDS as PRICED_BACKENDS
from finops.formulas import PricingError
from finops.pricing import estimate

from .backends import BackendInfo
from .runner import workload_circuits

LOCAL_PRICE_BACKEND = "simulator"
PRICING_TIER = "standard"


@dataclass(frozen=True)
class RunPrice:
    priced_as: str
    cost_usd: Decimal
    detail: dict[str, Any]


def priced_as(info: BackendInfo) -> str:
    """The finops backend whose sheet prices runs on ``info`` (see the module docstring)."""
    if info.name in PRICED_BACKENDS and info.name != LOCAL_PRICE_BACKEND:
        return info.name
    if info.dev_mode:
        raise PricingError(
            f"{info.name} runs in DEV MODE but has no price sheet; benchmarks on hardware names are "
            f"priced as on the hardware (priced names: {', '.join(sorted(PRICED_BACKENDS))})")
    return LOCAL_PRICE_BACKEND


Estimator = Callable[..., Any]
"""``(circuit, backend, shots) -> finops.pricing.Estimate``. The server passes
``finops.estimates.price_estimate`` (the price-sheet versions in force in the database, the
tenant's cost tiers), exactly what prices jobs; the default is the catalogue's sheets."""


def _catalogue_estimate(circuit: Any, backend: str, shots: int) -> Any:
    return estimate(circuit, backend, shots, tier=PRICING_TIER)


def price_run(info: BackendInfo, workload_ids: list[str], shots: int, run_seed: int,
              estimator: Estimator = _catalogue_estimate) -> RunPrice:
    """Sum of per-circuit estimates; raises ``PricingError`` when a circuit cannot be priced."""
    name = priced_as(info)
    total = Decimal("0")
    per_workload: dict[str, str] = {}
    sheets: set[tuple[str, str]] = set()
    circuits = 0
    for workload_id in workload_ids:
        built = workload_circuits(workload_id, run_seed)
        subtotal = Decimal("0")
        for circuit in built.circuits:
            priced = estimator(circuit, name, shots)
            subtotal += priced.cost_usd
            sheets.add((priced.price_sheet_id, priced.price_sheet_version))
            circuits += 1
        per_workload[workload_id] = str(subtotal)
        total += subtotal
    detail = {
        "priced_as": name, "tier": PRICING_TIER, "currency": "USD", "estimated_usd": str(total),
        "circuits": circuits, "per_workload_usd": per_workload,
        "price_sheets": [{"price_sheet_id": s, "price_sheet_version": v} for s, v in sorted(sheets)],
        "dev_mode_priced_as_hardware": info.dev_mode,
    }
    return RunPrice(name, total, detail)
