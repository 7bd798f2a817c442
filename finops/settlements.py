"""Capture and release: a finished job's actual cost is captured from its reservation (never
above it) and the rest released, exactly once; a failed, cancelled or rejected job's reservation
is released whole. In the caller's transaction, like the reservation (``finops.reservations``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import F
from django.utils import timezone

from qcos.rowload import Pending

from .estimates import estimate_from_dict
from .formulas import PricingError
from .models import BudgetWindow, Charge, ChargeStatus, micros, usd
from .pricing import Estimate, actual_cost
from .sheets import sheet_get


@dataclass(frozen=True)
class SettledCost:
    cost_usd: Decimal
    breakdown: dict[str, str]
    note: str


def settlement_send(*, resource_type: str, resource_id: str, lock: bool = True) -> Pending:
    """Send the read of a resource's HELD charge, for ``settlement_price``/``charge_settle(held=...)``:
    in a pipeline it shares the round trip of the statements around it (``qcos.rowload.pipeline``).
    ``lock`` (PostgreSQL): lock the row to the end of the transaction. An unlocked read (a worker
    reads it with its claim) is safe to settle from because ``settlement_write`` only captures a
    charge that is still HELD, and says whether it was."""
    suffix = " FOR UPDATE" if lock and connection.vendor == "postgresql" else ""
    return Pending(connection, _SETTLE_READ_SQL + suffix, [resource_type, resource_id])


@dataclass(frozen=True)
class Settlement:
    """What capturing a HELD charge will write: ``settlement_price``'s answer, ``settlement_write``'s input."""

    charge_id: int
    windows: list[int]
    reserved: int
    amount: int
    parts: dict[str, str]
    note: str

    @property
    def cost(self) -> SettledCost:
        return SettledCost(cost_usd=usd(self.amount), breakdown=self.parts, note=self.note)


def settlement_price(row: tuple | None, actual: Decimal | Mapping[str, Any] | None) -> Settlement | None:
    """The capture of the charge ``row`` (``settlement_send``'s) for what the provider metered:
    never above the reservation. Writes nothing; None without a HELD charge."""
    if row is None:
        return None
    charge_id, estimate_json, windows, reserved, estimated = row
    est = estimate_from_dict(json.loads(estimate_json) if isinstance(estimate_json, str | bytes) else estimate_json)
    windows = json.loads(windows) if isinstance(windows, str | bytes) else windows
    note = ""
    if isinstance(actual, Decimal):  # priced by the caller
        cost, breakdown = actual, dict(est.breakdown)
    else:
        cost, breakdown, note = _actual(est, actual)
    return Settlement(charge_id=charge_id, windows=sorted(windows or []), reserved=reserved,
                      amount=min(micros(cost), estimated), parts={k: str(v) for k, v in breakdown.items()}, note=note)


def settlement_write(settlement: Settlement, *, fenced: bool = False) -> Callable[[], bool]:
    """Send the capture, in the caller's transaction: the charge HELD → SETTLED and, only if it
    was still HELD, its windows' reservation released and the amount spent. The returned callable
    says whether it was (in a pipeline, reading it waits for the server).

    ``fenced`` (PostgreSQL): a charge no longer HELD fails the statement with ``qcos_fence``'s
    ``STALE_CHARGE`` instead, aborting the transaction, for a caller that commits in the same
    round trip (``qcos.rowload.commit_with_pipeline``); the callable is then always true."""
    now = timezone.now()
    if connection.vendor == "postgresql":
        # One statement: the windows follow only if the charge was captured; they are locked in id
        # order like reservations lock them.
        settled = Pending(connection, _SETTLE_PG_SQL.format(
            result="qcos_fence(count(*) = 1, %s)" if fenced else "id"), [
            settlement.amount, now, json.dumps(settlement.parts), settlement.charge_id,
            settlement.windows, settlement.reserved, settlement.amount, *([STALE_CHARGE] if fenced else []),
        ])
        return (lambda: True) if fenced else (lambda: settled.fetchone() is not None)
    with connection.cursor() as cursor:
        cursor.execute(_SETTLE_SQL, [settlement.amount, now, json.dumps(settlement.parts), settlement.charge_id])
        captured = cursor.rowcount == 1
        if captured and settlement.windows:
            cursor.execute(_SETTLE_WINDOWS_SQLITE, [settlement.reserved, settlement.amount, json.dumps(settlement.windows)])
    return lambda: captured


#: ``qcos_fence``'s SQLSTATE when a fenced capture finds its charge no longer HELD (jobs migration 0003).
STALE_CHARGE = "QC002"


def charge_settle(*, resource_type: str, resource_id: str,
                  actual: Decimal | Mapping[str, Any] | None = None, held: Pending | None = None) -> SettledCost | None:
    """Capture the actual cost of a finished resource (never above its reservation) and release
    the rest, in the caller's transaction. Exactly once: a HELD → SETTLED conditional update.

    ``actual``: what the provider metered (``usage_seconds``, ``duration_ms``, ``execution_ms``,
    ``hqc``…; see ``finops.pricing.actual_cost``). Without a meter for a time-billed family (a
    DEV MODE simulation of hardware), the estimate is charged: the reservation is what the job
    would have cost, and nothing measured says otherwise.
    """
    row = (held or settlement_send(resource_type=resource_type, resource_id=resource_id)).fetchone()
    settlement = settlement_price(row, actual)
    if settlement is None or not settlement_write(settlement)():
        return None
    return settlement.cost


def _actual(est: Estimate, actual: Mapping[str, Any] | None) -> tuple[Decimal, dict[str, Decimal], str]:
    """The settled cost and breakdown from what the provider metered, and a note when capped or
    when nothing metered the job (then the estimate is charged)."""
    note = ""
    try:
        sheet = sheet_get(est.price_sheet_id, est.price_sheet_version)
        settlement = actual_cost(est, {"status": "COMPLETED", **(actual or {})}, sheet=sheet)
        cost, breakdown = settlement.cost_usd, dict(settlement.breakdown)
        if settlement.capped:
            note = f"capped at the reservation; uncapped {settlement.uncapped_usd}"
    except (PricingError, LookupError) as exc:
        cost, breakdown = est.cost_usd, dict(est.breakdown)
        note = f"charged the estimate ({exc})"
    return cost, breakdown, note


_SETTLE_READ_SQL = (
    "SELECT id, estimate, windows, reserved_micros, estimated_micros FROM finops_charge "
    "WHERE resource_type = %s AND resource_id = %s AND status = 'HELD'"
)
_SETTLE_SQL = (
    "UPDATE finops_charge SET status = 'SETTLED', settled_micros = %s, settled_at = %s, breakdown = %s "
    "WHERE id = %s AND status = 'HELD'"
)
_SETTLE_PG_SQL = (
    "WITH s AS (UPDATE finops_charge SET status = 'SETTLED', settled_micros = %s, settled_at = %s, "
    "breakdown = %s::jsonb WHERE id = %s AND status = 'HELD' RETURNING id), "
    "locked AS (SELECT id FROM finops_budgetwindow WHERE id = ANY(%s) AND EXISTS (SELECT 1 FROM s) "
    "ORDER BY id FOR UPDATE), "
    "released AS (UPDATE finops_budgetwindow w SET reserved_micros = w.reserved_micros - %s, "
    "spent_micros = w.spent_micros + %s FROM locked WHERE w.id = locked.id) "
    "SELECT {result} FROM s"
)
_SETTLE_WINDOWS_SQLITE = (
    "UPDATE finops_budgetwindow SET reserved_micros = reserved_micros - %s, spent_micros = spent_micros + %s "
    "WHERE id IN (SELECT value FROM json_each(%s))"
)


def charge_release(*, resource_type: str, resource_id: str) -> bool:
    """Give back a HELD or PENDING charge's reservation (failure, cancellation, rejection)."""
    charge = Charge.objects.filter(
        resource_type=resource_type, resource_id=resource_id,
        status__in=[ChargeStatus.HELD, ChargeStatus.PENDING],
    ).first()
    if charge is None:
        return False
    won = Charge.objects.filter(pk=charge.pk, status=charge.status).update(
        status=ChargeStatus.RELEASED, settled_micros=0, settled_at=timezone.now()
    )
    if not won:
        return False
    if charge.status == ChargeStatus.HELD:
        for window_id in sorted(charge.windows):
            BudgetWindow.objects.filter(pk=window_id).update(
                reserved_micros=F("reserved_micros") - charge.reserved_micros
            )
    return True


def reservation_settle(*, resource_type: str, resource_id: str, actual: Decimal | Mapping[str, Any] | None = None):
    """``charge_settle`` for other apps: ``actual`` is the metered quantities, or a Decimal amount
    already priced by the caller (a benchmark run's sum of estimates)."""
    return charge_settle(resource_type=resource_type, resource_id=resource_id, actual=actual)


def reservation_release(*, resource_type: str, resource_id: str, reason: str = "") -> bool:
    return charge_release(resource_type=resource_type, resource_id=resource_id)
