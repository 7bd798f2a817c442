"""Budget notifications: a window's warning threshold crossed, or a ``notify`` window past its
limit, is announced once per window (an audit entry, then e-mail and webhook from a worker)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db import transaction

from ledger.audit import Outcome, audit_append, system_principal
from qcos.tenancy.models import Tenant

from .models import BudgetPolicy, BudgetWindow, usd
from .windows import window_label

logger = logging.getLogger(__name__)

D = Decimal


def thresholds_notify(windows: list[BudgetWindow], over: list[BudgetWindow], *, tenant: Tenant,
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
    message = (f"{window_label(window)} of {tenant.slug}: ${usd(used)} of ${usd(window.limit_micros)} "
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
