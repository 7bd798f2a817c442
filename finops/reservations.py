"""Budgets that never overspend: estimate, reserve, settle, release; budget checks.

The pattern is a card's: **reserve** the estimate inside the transaction that creates the job,
**capture** the actual cost on completion (never above the reservation) and **release** the rest,
or everything on failure, cancellation or rejection (REFERENCE.md §2–3).

Policy outcomes when a job would take a window past its limit (``BudgetPolicy.on_exceeded``):

* ``block``: refused with ``BUDGET_EXCEEDED``; no approval can override it. The reservation is a
  conditional UPDATE (``spent + reserved + x <= limit``), which PostgreSQL re-checks on the locked
  row, backed by the CHECK constraint ``budget_window_never_overspent``.
* ``soft_block``: the job is not refused but held in ``PENDING_APPROVAL`` with nothing reserved.
  An approver may override (four-eyes): the job is then admitted past the limit, the charge is
  marked ``over_limit`` and the override is audited (``BUDGET_OVERRIDE``). Jobs already admitted
  are never stopped. Use it where work must not be lost but spending past plan needs a second person.
* ``notify``: admitted past the limit; the policy's recipients are told once per window
  (a ``BUDGET_EXCEEDED`` audit entry with outcome SUCCESS: the policy did what it says).

A job over a policy's per-job limit follows ``on_per_job_exceeded``: ``require_approval`` (held in
PENDING_APPROVAL; approval reserves then, re-checking every window), ``block`` or ``notify``.

Capture and release are ``finops.settlements``; the windows are ``finops.windows``.

Windows are UTC calendar days and months, per policy. Money is integer micro-dollars.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from qcos.errors import ApprovalRequired, BudgetExceeded
from qcos.rowload import insert_row
from qcos.tenancy.models import Project, Tenant

from .models import (
    BudgetPolicy,
    BudgetWindow,
    Charge,
    ChargeStatus,
    ExceededAction,
    PerJobAction,
    micros,
    usd,
)
from .notifications import thresholds_notify
from .pricing import Estimate
from .windows import hot_cursor, policies_for, window_label, window_remaining, windows_open

D = Decimal


@dataclass
class Admission:
    """What the budget decided for one job."""

    charge: Charge
    held_for_approval: bool = False
    hold_reason: str = ""
    messages: list[str] = field(default_factory=list)


def _exceeded(window: BudgetWindow, amount: int, *, message: str = "", per_job: bool = False,
              details: dict[str, Any] | None = None) -> BudgetExceeded:
    text = message or (
        f"this job's estimated cost ${usd(amount)} exceeds the {window_label(window)}: "
        f"${usd(max(window_remaining(window), 0))} of ${usd(window.limit_micros)} remains"
    )
    if window.policy.exceeded_message and not per_job:
        text = f"{window.policy.exceeded_message} ({text})"
    return BudgetExceeded(text, details={
        "window": window.kind, "period_start": window.period_start.isoformat(),
        "limit_usd": str(usd(window.limit_micros)), "remaining_usd": str(usd(max(window_remaining(window), 0))),
        "estimated_cost_usd": str(usd(amount)), "policy_id": window.policy_id, **(details or {}),
    })


_RESERVE_SQL = (
    "UPDATE finops_budgetwindow SET reserved_micros = reserved_micros + %s WHERE id = %s{condition} "
    "RETURNING spent_micros, reserved_micros, limit_micros, warned, exceeded_notified"
)
_CONDITION = " AND spent_micros + reserved_micros + %s <= limit_micros"
# PostgreSQL: lock every window in id order with one statement, then reserve in all of them with a
# second (a new statement in READ COMMITTED sees what committed while it waited for the locks).
# ``queue`` first waits for a transaction-scoped advisory lock on the first window: PostgreSQL's
# lock manager grants it first come, first served and wakes one waiter per commit, where waiters
# on a row lock all wake at every commit and race for it again (with 32 submitters on one budget
# that herd cost more PostgreSQL CPU than the reservations: perf/budget.py, 1.9 -> 1.3 ms each).
# It is taken while no window is locked, so it adds no deadlock. ``locked`` then takes the row
# locks in id order; the UPDATE only touches rows ``locked`` holds (the join needs them), and for
# a row another transaction changed meanwhile PostgreSQL re-evaluates the WHERE on the newest
# version (READ COMMITTED's EvalPlanQual). The rows, their CHECK constraint and the condition are
# the guarantee; the advisory lock only orders the queue.
_RESERVE_SQL_PG = (
    "WITH queue AS MATERIALIZED (SELECT pg_advisory_xact_lock(7431, (%s::bigint %% 2147483647)::int)), "
    "locked AS (SELECT id FROM finops_budgetwindow, queue WHERE id = ANY(%s) ORDER BY id FOR UPDATE) "
    "UPDATE finops_budgetwindow w SET reserved_micros = w.reserved_micros + %s FROM locked "
    "WHERE w.id = locked.id "
    "AND (NOT (w.id = ANY(%s)) OR w.spent_micros + w.reserved_micros + %s <= w.limit_micros) "
    "RETURNING w.id, w.spent_micros, w.reserved_micros, w.limit_micros, w.warned, w.exceeded_notified"
)


def _is_conditional(window: BudgetWindow, override: bool) -> bool:
    action = window.policy.on_exceeded
    return action == ExceededAction.BLOCK or (action == ExceededAction.SOFT_BLOCK and not override)


def _reserve_windows(windows: list[BudgetWindow], amount: int, *, override: bool) -> tuple[list[int], list[BudgetWindow]]:
    """Add ``amount`` to the reservations of ``windows`` (locked in id order, so concurrent
    submitters cannot deadlock).

    Windows of ``block`` policies take the amount only while ``spent + reserved + amount <=
    limit``, evaluated on the locked row: if one refuses, BudgetExceeded propagates and the
    caller's transaction rolls back the others. ``soft_block`` windows refuse too unless
    ``override`` (an approver let the job through). ``notify`` windows always take the amount.
    Fresh totals come back with RETURNING, so no extra read is needed. On PostgreSQL this is
    one statement whatever the number of windows (lock in order, then reserve); elsewhere one per window.
    Returns the ids reserved in and the windows now past their limit.
    """
    if not windows:
        return [], []
    if connection.vendor == "postgresql":
        return _reserve_windows_pg(windows, amount, override=override)
    over: list[BudgetWindow] = []
    with connection.cursor() as cursor:
        for window in windows:
            if _is_conditional(window, override):
                cursor.execute(_RESERVE_SQL.format(condition=_CONDITION), [amount, window.pk, amount])
            else:
                cursor.execute(_RESERVE_SQL.format(condition=""), [amount, window.pk])
            row = cursor.fetchone()
            if row is None:
                _refuse([window], amount)
            (window.spent_micros, window.reserved_micros, window.limit_micros, window.warned,
             window.exceeded_notified) = row
            if window_remaining(window) < 0:
                over.append(window)
    return [w.pk for w in windows], over


def _reserve_windows_pg(windows: list[BudgetWindow], amount: int, *, override: bool):
    ids = [w.pk for w in windows]
    conditional = [w.pk for w in windows if _is_conditional(w, override)]
    with hot_cursor() as cursor:
        cursor.execute(_RESERVE_SQL_PG, [min(ids), ids, amount, conditional, amount])
        rows = {row[0]: row[1:] for row in cursor.fetchall()}
    if len(rows) < len(windows):
        _refuse([w for w in windows if w.pk not in rows], amount)
    over = []
    for window in windows:
        (window.spent_micros, window.reserved_micros, window.limit_micros, window.warned,
         window.exceeded_notified) = rows[window.pk]
        if window_remaining(window) < 0:
            over.append(window)
    return ids, over


def _refuse(refused: list[BudgetWindow], amount: int):
    """Raise for the windows that would not take ``amount``: block outranks soft_block (a job a
    block window cannot take is refused, not held for an approval that could never admit it)."""
    for window in refused:
        window.refresh_from_db(fields=["spent_micros", "reserved_micros", "limit_micros"])
    for window in refused:
        if window.policy.on_exceeded != ExceededAction.SOFT_BLOCK:
            raise _exceeded(window, amount)
    raise _SoftBlocked(refused[0])


class _SoftBlocked(Exception):
    def __init__(self, window: BudgetWindow):
        super().__init__(window)
        self.window = window


#: What a reservation inserts: every column but the key, which PostgreSQL assigns (and returns).
_CHARGE_COLUMNS = tuple(f.attname for f in Charge._meta.concrete_fields if not f.primary_key)


def budget_admit(
    *,
    tenant: Tenant,
    project: Project,
    estimate: Estimate,
    resource_type: str,
    resource_id: str,
    backend: str,
    shots: int,
    tags: Mapping[str, str] | None = None,
    policies: list[BudgetPolicy] | None = None,
    allow_hold: bool = True,
) -> Admission:
    """Decide and record the money side of a new job; call inside the job's transaction.

    Returns an Admission with a HELD charge (reserved in every window), or, when ``allow_hold``,
    a PENDING charge and ``held_for_approval`` (per-job limit with ``require_approval``, or a
    ``soft_block`` window). Raises BudgetExceeded (the caller's transaction must roll back);
    ApprovalRequired is the caller's translation when it cannot hold (``allow_hold=False``).
    """
    if policies is None:
        policies = policies_for(tenant=tenant, project=project)
    amount = micros(estimate.cost_usd)
    charge = Charge(
        tenant=tenant, project=project, resource_type=resource_type, resource_id=resource_id,
        backend=backend, shots=shots, tier=estimate.tier, tags=dict(tags or {}),
        price_sheet_id=estimate.price_sheet_id, price_sheet_version=estimate.price_sheet_version,
        estimate=estimate.as_dict(), estimated_micros=amount, reserved_micros=amount, status=ChargeStatus.HELD,
    )
    admission = Admission(charge=charge)
    for policy in policies:
        limit = policy.per_job_limit_usd
        if limit is None or estimate.cost_usd <= limit:
            continue
        text = (f"this job's estimated cost ${estimate.cost_usd} is over the per-job limit ${limit} "
                f"of {policy}")
        if policy.on_per_job_exceeded == PerJobAction.BLOCK:
            raise BudgetExceeded(text, details={"window": "per_job", "limit_usd": str(limit),
                                                "estimated_cost_usd": str(estimate.cost_usd), "policy_id": policy.pk})
        if policy.on_per_job_exceeded == PerJobAction.REQUIRE_APPROVAL:
            admission.held_for_approval, admission.hold_reason = True, "per_job_limit"
        admission.messages.append(text)
    if admission.held_for_approval:
        if not allow_hold:
            raise ApprovalRequired(
                "; ".join(admission.messages) + ". This kind of work cannot wait for an approval: ask an "
                "admin to raise the per-job limit.", details={"reason": admission.hold_reason},
            )
        return _hold(admission)
    windows = windows_open(policies, timezone.now())
    charge.windows = [w.pk for w in windows]
    try:
        with transaction.atomic() if _any_soft(windows) else nullcontext():
            # Insert before reserving: the window rows stay locked from the reservation until the
            # caller commits, so nothing else should run in between. Its key is not read back
            # (a charge is found by its resource): in a pipeline the INSERT need not wait.
            insert_row(connection, charge, _CHARGE_COLUMNS)
            _, over = _reserve_windows(windows, amount, override=False)
    except _SoftBlocked as blocked:
        charge.pk, charge._state.adding = None, True  # its insert was rolled back with the savepoint
        if not allow_hold:
            raise _exceeded(blocked.window, amount) from None
        # block outranks soft_block: a job that a block window (later in id order, so not reached
        # yet) cannot take is refused now, not held for an approval that could never admit it.
        hard_ids = [w.pk for w in windows if w.policy.on_exceeded == ExceededAction.BLOCK]
        for window in BudgetWindow.objects.filter(pk__in=hard_ids).select_related("policy").order_by("id"):
            if window_remaining(window) < amount:
                raise _exceeded(window, amount) from None
        admission.held_for_approval, admission.hold_reason = True, "soft_block"
        admission.messages.append(str(_exceeded(blocked.window, amount)))
        return _hold(admission)
    if over:
        charge.over_limit = True
        Charge.objects.filter(resource_type=resource_type, resource_id=resource_id).update(over_limit=True)
        for window in over:
            admission.messages.append(str(_exceeded(window, amount)))
    thresholds_notify(windows, over, tenant=tenant, resource_id=resource_id, amount=amount)
    return admission


def _any_soft(windows: list[BudgetWindow]) -> bool:
    return any(w.policy.on_exceeded == ExceededAction.SOFT_BLOCK for w in windows)


def _hold(admission: Admission) -> Admission:
    charge = admission.charge
    charge.status, charge.reserved_micros, charge.windows = ChargeStatus.PENDING, 0, []
    charge.hold_reason = admission.hold_reason
    charge.save(force_insert=True)
    return admission


def charge_reserve_on_approval(*, resource_type: str, resource_id: str) -> Charge:
    """Reserve a PENDING charge when its job is approved: every window is checked again (the
    budget may have been spent meanwhile). The approval overrides ``soft_block`` windows (they
    take the amount past their limit); ``block`` windows never do. Raises
    BudgetExceeded; the caller's transaction then changes nothing."""
    charge = Charge.objects.select_related("tenant", "project").get(
        resource_type=resource_type, resource_id=resource_id
    )
    if charge.status != ChargeStatus.PENDING:
        return charge
    policies = policies_for(tenant=charge.tenant_id, project=charge.project_id)
    windows = windows_open(policies, timezone.now())
    # The approval is the override of any soft_block window (the approver saw the job and its
    # cost); block windows still refuse.
    ids, over = _reserve_windows(windows, charge.estimated_micros, override=True)
    updated = Charge.objects.filter(pk=charge.pk, status=ChargeStatus.PENDING).update(
        status=ChargeStatus.HELD, reserved_micros=charge.estimated_micros, windows=ids,
        over_limit=bool(over),
    )
    if not updated:  # pragma: no cover - the job's conditional update already serialized deciders
        raise BudgetExceeded("the charge changed while it was being approved")
    charge.refresh_from_db()
    thresholds_notify(windows, over, tenant=charge.tenant, resource_id=resource_id,
                       amount=charge.estimated_micros)
    return charge


def budget_reserve(*, tenant: Tenant, project: Project, amount: Decimal | Estimate, resource_type: str,
                   resource_id: str, tier: str = "standard", backend: str = "", shots: int = 0,
                   tags: Mapping[str, str] | None = None, price_sheet: str = "", principal: Any = None) -> Charge:
    """Reserve for a resource that cannot wait for approval (a benchmark run), in the caller's
    transaction. ``amount`` is a priced Estimate, or a Decimal total of several estimates (then
    ``price_sheet`` should say which ``sheet_id@version`` priced them). Raises BudgetExceeded, or
    ApprovalRequired when a policy would hold it for a decision."""
    if isinstance(amount, Estimate):
        priced = amount
    else:
        total = D(amount).quantize(D("0.000001"))
        sheet_id, _, version = (price_sheet or "aggregate@-").partition("@")
        priced = Estimate(
            cost_usd=total, breakdown=MappingProxyType({"queue": D("0"), "compute": total, "storage": D("0")}),
            price_sheet_id=sheet_id, price_sheet_version=version or "-",
            inputs=MappingProxyType({"tier_multiplier": D(1), "shots": shots}),
            formula=f"sum of per-circuit estimates = {total} USD", backend=backend, tier=tier,
        )
    admission = budget_admit(tenant=tenant, project=project, estimate=priced, resource_type=resource_type,
                             resource_id=resource_id, backend=backend or priced.backend, shots=shots, tags=tags,
                             allow_hold=False)
    return admission.charge
