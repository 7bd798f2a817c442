"""The budget policies that cover a job and their current windows: read in one statement on the
job path, opened on a window's first use in its period, and described for messages.

Windows are UTC calendar days and months, per policy. Money is integer micro-dollars.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from qcos.rowload import Pending
from qcos.tenancy.models import Project, Tenant

from .models import BudgetPolicy, BudgetWindow, ExceededAction, WindowKind, micros


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
    with hot_cursor() as cursor:
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


def policy_limits(policy: BudgetPolicy) -> dict[str, Decimal]:
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
        for kind, limit in policy_limits(policy).items()
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


def window_remaining(window: BudgetWindow) -> int:
    return window.limit_micros - window.spent_micros - window.reserved_micros


def window_label(window: BudgetWindow) -> str:
    kind = "monthly" if window.kind == WindowKind.MONTH else "daily"
    scope = f"project {window.policy.project.slug}" if window.policy.project_id else "tenant"
    return f"{scope} {kind} budget ({window.period_start.isoformat()})"


class hot_cursor:
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
