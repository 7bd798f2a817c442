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

Windows are UTC calendar days and months, per policy. Money is integer micro-dollars.
"""

from __future__ import annotations

import json
import logging
from contextlib import nullcontext
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from ledger.audit import Outcome, audit_append, system_principal
from qcos.errors import ApprovalRequired, BudgetExceeded, PricingFailed
from qcos.rowload import Pending, insert_row
from qcos.tenancy.models import Project, Tenant

from .catalog import BACKENDS as PRICED_BACKENDS
from .counts import UnpricableCircuit
from .formulas import PricingError
from .models import (
    BudgetPolicy,
    BudgetWindow,
    Charge,
    ChargeStatus,
    ExceededAction,
    PerJobAction,
    WindowKind,
    micros,
    usd,
)
from .pricing import Estimate, actual_cost, estimate
from .sheets import sheet_current, sheet_get

logger = logging.getLogger(__name__)

D = Decimal
LOCAL_PRICING_BACKEND = "simulator"


# --- pricing -------------------------------------------------------------------------------------


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


# --- policies and windows ------------------------------------------------------------------------


class PolicyList(list):
    """The policies covering a job, plus the windows of the current UTC day and month that
    already exist (``windows``, for ``periods``): read together in one statement, so the
    reservation needs no second lookup."""

    windows: list[BudgetWindow]
    periods: dict[str, date]


_POLICY_SQL: dict[str, tuple] = {}


def _policy_statement(by_project_slug: bool = False):
    """The one statement that reads the policies covering a job and their current windows,
    written once per process from the models' metadata (rowload turns rows back into models
    through the ORM's own converters). ``by_project_slug``: the project is named by its slug
    (a subquery), so the read need not wait for the project's own."""
    from qcos.rowload import Shape

    key = (connection.vendor, by_project_slug)
    if key not in _POLICY_SQL:
        policy, window = Shape(connection, BudgetPolicy, "p"), Shape(connection, BudgetWindow, "w")
        project = ("(SELECT pr.id FROM tenancy_project pr WHERE pr.tenant_id = %s AND pr.slug = %s)"
                   if by_project_slug else "%s")
        sql = (
            f"SELECT {', '.join(policy.columns)}, {', '.join(window.columns)} FROM finops_budgetpolicy p "
            "LEFT JOIN finops_budgetwindow w ON w.policy_id = p.id AND "
            "((w.kind = 'month' AND w.period_start = %s) OR (w.kind = 'day' AND w.period_start = %s)) "
            f"WHERE p.tenant_id = %s AND (p.project_id IS NULL OR p.project_id = {project}) ORDER BY p.id, w.id"
        )
        _POLICY_SQL[key] = (sql, policy, window)
    return _POLICY_SQL[key]


def policies_for(*, tenant: Tenant | int, project: Project | int | None, moment: datetime | None = None) -> PolicyList:
    """The tenant's policy and the project's, with their current windows (one statement)."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    project_id = project if isinstance(project, int) or project is None else project.pk
    periods = window_periods(moment or timezone.now())
    sql, policy_shape, window_shape = _policy_statement()
    with _hot_cursor() as cursor:
        cursor.execute(sql, [periods[WindowKind.MONTH], periods[WindowKind.DAY], tenant_id, project_id])
        rows = cursor.fetchall()
    return _policy_list(rows, periods, policy_shape, window_shape)


def policies_send(*, tenant: Tenant, project_slug: str, moment: datetime | None = None) -> Callable[[], PolicyList]:
    """``policies_for`` the tenant's project named ``project_slug``, sent now and read when the
    returned callable is called: in a pipeline (``qcos.rowload.pipeline``) it shares the round
    trip of the project's own read (``qcos.tenancy.selectors.project_send``)."""
    periods = window_periods(moment or timezone.now())
    sql, policy_shape, window_shape = _policy_statement(by_project_slug=True)
    pending = Pending(connection, sql, [periods[WindowKind.MONTH], periods[WindowKind.DAY], tenant.pk, tenant.pk,
                                        project_slug])
    return lambda: _policy_list(pending.fetchall(), periods, policy_shape, window_shape)


def _policy_list(rows, periods: dict[str, date], policy_shape, window_shape) -> PolicyList:
    result, windows, seen = PolicyList(), [], {}
    n = len(policy_shape)
    for row in rows:
        policy = seen.get(row[0])
        if policy is None:
            seen[row[0]] = policy = policy_shape.load(connection, row[:n])
            result.append(policy)
        window = window_shape.load(connection, row[n:])
        if window is not None:
            window.policy = policy
            windows.append(window)
    result.windows, result.periods = sorted(windows, key=lambda w: w.pk), periods
    return result


def window_periods(moment: datetime) -> dict[str, date]:
    day = moment.astimezone(UTC).date() if timezone.is_aware(moment) else moment.date()
    return {WindowKind.MONTH: day.replace(day=1), WindowKind.DAY: day}


def _limits(policy: BudgetPolicy) -> dict[str, Decimal]:
    limits = {}
    if policy.monthly_limit_usd is not None:
        limits[WindowKind.MONTH] = policy.monthly_limit_usd
    if policy.daily_limit_usd is not None:
        limits[WindowKind.DAY] = policy.daily_limit_usd
    return limits


def windows_open(policies: Iterable[BudgetPolicy], moment: datetime) -> list[BudgetWindow]:
    """The current day and month windows of ``policies`` in primary-key order (the order
    reservations lock them in, so two submitters can never deadlock), each with its ``policy``.

    One SELECT in the common case; a window's first use in a period also INSERTs it (ignoring a
    row another transaction created first) and reads again.
    """
    periods = window_periods(moment)
    by_policy = {policy.pk: policy for policy in policies}
    wanted = {
        (policy.pk, kind, periods[kind]): micros(limit)
        for policy in by_policy.values()
        for kind, limit in _limits(policy).items()
    }
    if not wanted:
        return []

    def select() -> list[BudgetWindow]:
        rows = BudgetWindow.objects.filter(policy_id__in=list(by_policy), period_start__in=set(periods.values()))
        return [w for w in rows if (w.policy_id, w.kind, w.period_start) in wanted]

    known = getattr(policies, "windows", None)
    if known is not None and getattr(policies, "periods", None) == periods:
        have = [w for w in known if (w.policy_id, w.kind, w.period_start) in wanted]
        if len(have) == len(wanted):
            return have
    found = select()
    if len(found) < len(wanted):
        have = {(w.policy_id, w.kind, w.period_start) for w in found}
        BudgetWindow.objects.bulk_create(
            [BudgetWindow(policy_id=policy_id, kind=kind, period_start=start, limit_micros=limit,
                          hard=by_policy[policy_id].on_exceeded == ExceededAction.BLOCK)
             for (policy_id, kind, start), limit in wanted.items() if (policy_id, kind, start) not in have],
            ignore_conflicts=True,
        )
        found = select()
    for window in found:
        window.policy = by_policy[window.policy_id]
    return sorted(found, key=lambda w: w.pk)


@dataclass
class Admission:
    """What the budget decided for one job."""

    charge: Charge
    held_for_approval: bool = False
    hold_reason: str = ""
    messages: list[str] = field(default_factory=list)


def _remaining(window: BudgetWindow) -> int:
    return window.limit_micros - window.spent_micros - window.reserved_micros


def _window_label(window: BudgetWindow) -> str:
    kind = "monthly" if window.kind == WindowKind.MONTH else "daily"
    scope = f"project {window.policy.project.slug}" if window.policy.project_id else "tenant"
    return f"{scope} {kind} budget ({window.period_start.isoformat()})"


def _exceeded(window: BudgetWindow, amount: int, *, message: str = "", per_job: bool = False,
              details: dict[str, Any] | None = None) -> BudgetExceeded:
    text = message or (
        f"this job's estimated cost ${usd(amount)} exceeds the {_window_label(window)}: "
        f"${usd(max(_remaining(window), 0))} of ${usd(window.limit_micros)} remains"
    )
    if window.policy.exceeded_message and not per_job:
        text = f"{window.policy.exceeded_message} ({text})"
    return BudgetExceeded(text, details={
        "window": window.kind, "period_start": window.period_start.isoformat(),
        "limit_usd": str(usd(window.limit_micros)), "remaining_usd": str(usd(max(_remaining(window), 0))),
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
            if _remaining(window) < 0:
                over.append(window)
    return [w.pk for w in windows], over


def _reserve_windows_pg(windows: list[BudgetWindow], amount: int, *, override: bool):
    ids = [w.pk for w in windows]
    conditional = [w.pk for w in windows if _is_conditional(w, override)]
    with _hot_cursor() as cursor:
        cursor.execute(_RESERVE_SQL_PG, [min(ids), ids, amount, conditional, amount])
        rows = {row[0]: row[1:] for row in cursor.fetchall()}
    if len(rows) < len(windows):
        _refuse([w for w in windows if w.pk not in rows], amount)
    over = []
    for window in windows:
        (window.spent_micros, window.reserved_micros, window.limit_micros, window.warned,
         window.exceeded_notified) = rows[window.pk]
        if _remaining(window) < 0:
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
            if _remaining(window) < amount:
                raise _exceeded(window, amount) from None
        admission.held_for_approval, admission.hold_reason = True, "soft_block"
        admission.messages.append(str(_exceeded(blocked.window, amount)))
        return _hold(admission)
    if over:
        charge.over_limit = True
        Charge.objects.filter(resource_type=resource_type, resource_id=resource_id).update(over_limit=True)
        for window in over:
            admission.messages.append(str(_exceeded(window, amount)))
    _notify_thresholds(windows, over, tenant=tenant, resource_id=resource_id, amount=amount)
    return admission


class _hot_cursor:
    """A cursor for the few statements every reservation runs. On PostgreSQL it binds parameters
    on the server and prepares each statement once per connection (psycopg's ``prepare=True``),
    so PostgreSQL skips parsing and planning them again (Django's own cursors do the same
    unless QCOS_DB_PREPARED_STATEMENTS is off).
    Same connection, same transaction. Elsewhere it is Django's cursor."""

    def __enter__(self):
        if connection.vendor != "postgresql":
            self._cursor = connection.cursor()
            return self._cursor
        import psycopg

        connection.ensure_connection()
        self._cursor = psycopg.Cursor(connection.connection)
        return self

    def execute(self, sql: str, params) -> None:
        self._cursor.execute(sql, params, prepare=True)

    def fetchone(self):
        return self._cursor.fetchone()

    def fetchall(self):
        return self._cursor.fetchall()

    def __exit__(self, *exc):
        self._cursor.close()
        return False


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
    _notify_thresholds(windows, over, tenant=charge.tenant, resource_id=resource_id,
                       amount=charge.estimated_micros)
    return charge


# --- capture and release -------------------------------------------------------------------------


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


# --- the generic API other apps call (benchmarks) --------------------------------------------------


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


def reservation_settle(*, resource_type: str, resource_id: str, actual: Decimal | Mapping[str, Any] | None = None):
    """``charge_settle`` for other apps: ``actual`` is the metered quantities, or a Decimal amount
    already priced by the caller (a benchmark run's sum of estimates)."""
    return charge_settle(resource_type=resource_type, resource_id=resource_id, actual=actual)


def reservation_release(*, resource_type: str, resource_id: str, reason: str = "") -> bool:
    return charge_release(resource_type=resource_type, resource_id=resource_id)


# --- budget checks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetCheck:
    can_proceed: bool
    message: str
    remaining_usd: Decimal | None
    requires_approval: bool = False
    windows: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "can_proceed": self.can_proceed,
            "message": self.message,
            "remaining_usd": None if self.remaining_usd is None else str(self.remaining_usd),
            "requires_approval": self.requires_approval,
            "windows": self.windows,
        }


def _current_window(policy: BudgetPolicy, kind: str, limit: Decimal, periods: dict[str, date],
                    stored: Mapping[tuple[int, str], BudgetWindow]) -> BudgetWindow:
    """This period's window of ``policy`` as stored, or an empty one (not saved) before its first use."""
    window = stored.get((policy.pk, kind)) or BudgetWindow(
        policy=policy, kind=kind, period_start=periods[kind], limit_micros=micros(limit)
    )
    window.limit_micros = micros(limit)
    return window


def _window_row(window: BudgetWindow) -> dict[str, str]:
    return {"window": window.kind, "period_start": window.period_start.isoformat(),
            "limit_usd": str(usd(window.limit_micros)), "spent_usd": str(usd(window.spent_micros)),
            "reserved_usd": str(usd(window.reserved_micros)), "remaining_usd": str(usd(_remaining(window)))}


def budget_check(*, tenant: Tenant, project: Project | None, estimated_cost: Decimal) -> BudgetCheck:
    """Would a job of ``estimated_cost`` be admitted right now? Read-only: it reserves nothing,
    so a later submit can still be refused if others spend first."""
    policies = policies_for(tenant=tenant, project=project)
    if not policies:
        return BudgetCheck(True, "no budget policy applies; the job can proceed", None)
    stored = {(w.policy_id, w.kind): w for w in policies.windows}
    amount = micros(estimated_cost)
    rows, blocking, holding, notifying = [], [], [], []
    for policy in policies:
        if policy.per_job_limit_usd is not None and estimated_cost > policy.per_job_limit_usd:
            text = f"${estimated_cost} is over the per-job limit ${policy.per_job_limit_usd} ({policy})"
            {PerJobAction.BLOCK: blocking, PerJobAction.REQUIRE_APPROVAL: holding,
             PerJobAction.NOTIFY: notifying}[policy.on_per_job_exceeded].append(text)
        exceeded = []  # this policy's windows the job would overrun; its message is said once
        for kind, limit in _limits(policy).items():
            window = _current_window(policy, kind, limit, policies.periods, stored)
            remaining = _remaining(window)
            rows.append({"policy_id": policy.pk, "scope": str(policy), **_window_row(window)})
            if amount > remaining:
                exceeded.append(f"${estimated_cost} exceeds the {_window_label(window)}: "
                                f"${usd(max(remaining, 0))} remains")
        if exceeded:
            text = (policy.exceeded_message + " " if policy.exceeded_message else "") + "; ".join(exceeded)
            {ExceededAction.BLOCK: blocking, ExceededAction.SOFT_BLOCK: holding,
             ExceededAction.NOTIFY: notifying}[policy.on_exceeded].append(text)
    remaining = min((D(r["remaining_usd"]) for r in rows), default=None)
    if blocking:
        return BudgetCheck(False, "; ".join(blocking), remaining, windows=rows)
    if holding:
        return BudgetCheck(False, "needs approval: " + "; ".join(holding), remaining, True, rows)
    message = "within budget" if not notifying else "admitted past a limit (notify): " + "; ".join(notifying)
    return BudgetCheck(True, message, remaining, windows=rows)


def budget_status(*, tenant: Tenant) -> list[dict[str, Any]]:
    """Every policy of the tenant (tenant-wide and per project) with this day's and month's window."""
    policies = list(tenant.budget_policies.select_related("project").order_by("id"))
    periods = window_periods(timezone.now())
    stored = {
        (w.policy_id, w.kind): w
        for w in BudgetWindow.objects.filter(policy__in=policies, period_start__in=list(periods.values()))
        if w.period_start == periods[w.kind]
    }

    def text(value):
        return None if value is None else str(value)

    return [{
        "policy_id": policy.pk,
        "project": policy.project.slug if policy.project_id else None,
        "monthly_limit_usd": text(policy.monthly_limit_usd),
        "daily_limit_usd": text(policy.daily_limit_usd),
        "per_job_limit_usd": text(policy.per_job_limit_usd),
        "warning_threshold_percent": policy.warning_threshold_percent,
        "on_budget_exceeded": policy.on_exceeded,
        "on_per_job_exceeded": policy.on_per_job_exceeded,
        "cost_tiers": policy.cost_tiers or None,
        "windows": [_window_row(_current_window(policy, kind, limit, periods, stored))
                    for kind, limit in _limits(policy).items()],
    } for policy in policies]


# --- notifications ---------------------------------------------------------------------------------


def _notify_thresholds(windows: list[BudgetWindow], over: list[BudgetWindow], *, tenant: Tenant,
                       resource_id: str, amount: int) -> None:
    """Announce (audit entry, e-mail, webhook) once per window when its warning threshold is first
    crossed, and once when a ``notify`` window first goes past its limit. Each flag (``warned``,
    ``exceeded_notified``) is set by a conditional UPDATE, so of many concurrent submitters exactly
    one announces, and releases that bring the window back under do not re-arm it."""
    over_ids = {w.pk for w in over}
    for window in windows:
        used = window.spent_micros + window.reserved_micros
        if window.pk in over_ids and not window.exceeded_notified and BudgetWindow.objects.filter(
            pk=window.pk, exceeded_notified=False
        ).update(exceeded_notified=True):
            _announce(window.policy, window, "BUDGET_EXCEEDED", tenant=tenant, resource_id=resource_id)
        if window.warned or used * 100 < window.limit_micros * window.policy.warning_threshold_percent:
            continue
        if BudgetWindow.objects.filter(pk=window.pk, warned=False).update(warned=True):
            _announce(window.policy, window, "BUDGET_WARNING", tenant=tenant, resource_id=resource_id)


def _announce(policy: BudgetPolicy, window: BudgetWindow, event: str, *, tenant: Tenant, resource_id: str) -> None:
    used = window.spent_micros + window.reserved_micros
    percent = (D(used) * 100 / window.limit_micros).quantize(D("0.1")) if window.limit_micros else D(100)
    message = (f"{_window_label(window)} of {tenant.slug}: ${usd(used)} of ${usd(window.limit_micros)} "
               f"spent or reserved ({percent}%), threshold {policy.warning_threshold_percent}%")
    audit_append(
        action=event, principal=system_principal("finops", tenant.slug), resource_type="budget_window",
        resource_id=str(window.pk), tenant_slug=tenant.slug,
        outcome=Outcome.SUCCESS,
        details={"policy_id": policy.pk, "window": window.kind, "period_start": window.period_start.isoformat(),
                 "used_usd": str(usd(used)), "limit_usd": str(usd(window.limit_micros)), "job_id": resource_id},
    )
    if policy.warning_notify or policy.webhook_url:
        payload = {"event": event, "tenant_id": tenant.slug, "message": message, "policy_id": policy.pk,
                   "window": window.kind, "period_start": window.period_start.isoformat(),
                   "used_usd": str(usd(used)), "limit_usd": str(usd(window.limit_micros))}
        transaction.on_commit(lambda: _enqueue_notification(policy.pk, payload))


def _enqueue_notification(policy_id: int, payload: dict[str, Any]) -> None:
    from workers.tasks import notify_budget

    try:
        notify_budget.apply_async(args=[policy_id, payload], queue="maintenance", retry=False)
    except Exception:  # the broker is down: the audit entry stands; e-mail is best effort
        logger.warning("could not enqueue a budget notification for policy %s", policy_id, exc_info=True)


def budget_notify(*, policy_id: int, payload: Mapping[str, Any]) -> None:
    """Send one budget notification: e-mail to the policy's list and a POST to its webhook."""
    import urllib.request

    from django.conf import settings
    from django.core.mail import send_mail

    policy = BudgetPolicy.objects.filter(pk=policy_id).first()
    if policy is None:
        return
    subject = f"[QCOS] {payload['event'].replace('_', ' ').lower()}: {payload['tenant_id']}"
    if policy.warning_notify:
        send_mail(subject, payload["message"], settings.DEFAULT_FROM_EMAIL, list(policy.warning_notify))
    if policy.webhook_url:
        request = urllib.request.Request(
            policy.webhook_url, data=json.dumps(payload).encode(), method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "qcos-budget-notifier"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (admin-configured URL)
            response.read()
