"""Budget reads: would a job of a given cost be admitted now (``budget_check``), and every policy
of a tenant with its current windows (``budget_status``). They reserve nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.utils import timezone

from qcos.tenancy.models import Project, Tenant

from .models import BudgetPolicy, BudgetWindow, ExceededAction, PerJobAction, micros, usd
from .windows import policies_for, policy_limits, window_label, window_periods, window_remaining

D = Decimal


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
            "reserved_usd": str(usd(window.reserved_micros)), "remaining_usd": str(usd(window_remaining(window)))}


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
        for kind, limit in policy_limits(policy).items():
            window = _current_window(policy, kind, limit, policies.periods, stored)
            remaining = window_remaining(window)
            rows.append({"policy_id": policy.pk, "scope": str(policy), **_window_row(window)})
            if amount > remaining:
                exceeded.append(f"${estimated_cost} exceeds the {window_label(window)}: "
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
                    for kind, limit in policy_limits(policy).items()],
    } for policy in policies]
