"""Budget policies in the Ledger seed's ``budget-policy.yaml`` format.

```yaml
tenant: research-alpha
project: quantum-ml            # optional: without it the policy covers the whole tenant
budget:
  monthly_limit_usd: 1000.00   # each limit optional; absent = no limit of that kind
  daily_limit_usd: 100.00
  per_job_limit_usd: 50.00
policies:
  on_budget_warning:
    threshold_percent: 80
    action: notify
    notify: [alice@example.com, budget-alerts@example.com]
    webhook: https://hooks.example.com/qcos   # optional (QCOS extension)
  on_budget_exceeded:
    action: block              # block | notify | soft_block
    message: "Monthly budget exceeded. Contact admin."
  on_per_job_exceeded:
    action: require_approval   # require_approval | block | notify
    approvers: [admin@example.com]
cost_tiers:
  standard: {multiplier: 1.0}
  priority: {multiplier: 1.5}
  urgent: {multiplier: 2.0}
```

Parsing is strict: an unknown key, a negative limit or an unknown action is an
``INVALID_BUDGET_POLICY`` error naming the key, and nothing is applied. Applying is one
transaction: the policy row, the limits of the current day/month windows, and a
``BUDGET_POLICY_APPLIED`` audit entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import transaction
from django.db.models import Case, F, Value, When

from ledger.audit import audit_append, system_principal
from qcos.errors import InvalidBudgetPolicy
from qcos.tenancy.models import Project, Tenant

from .models import BudgetPolicy, BudgetWindow, ExceededAction, PerJobAction, WindowKind, micros
from .pricing import tier_multiplier

TOP_KEYS = {"tenant", "project", "budget", "policies", "cost_tiers"}
BUDGET_KEYS = {"monthly_limit_usd", "daily_limit_usd", "per_job_limit_usd"}
POLICY_KEYS = {"on_budget_warning", "on_budget_exceeded", "on_per_job_exceeded"}


def _fail(message: str, path: str) -> InvalidBudgetPolicy:
    return InvalidBudgetPolicy(f"{path}: {message}", details={"path": path})


def _mapping(value: Any, path: str, allowed: set[str]) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail("must be a mapping", path)
    if unknown := set(value) - allowed:
        raise _fail(f"unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}", path)
    return value


def _money(value: Any, path: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise _fail("must be a number", path)
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise _fail(f"{value!r} is not a number", path) from None
    if not amount.is_finite() or amount < 0:
        raise _fail("must be a finite amount >= 0", path)
    if amount != amount.quantize(Decimal("0.000001")):
        raise _fail("has more than 6 decimal places", path)
    return amount


def _emails(value: Any, path: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail("must be a list of e-mail addresses", path)
    for item in value:
        try:
            validate_email(item)
        except (ValidationError, TypeError):
            raise _fail(f"{item!r} is not an e-mail address", path) from None
    return [str(item) for item in value]


@dataclass(frozen=True)
class PolicySpec:
    tenant: str
    project: str | None
    fields: dict[str, Any]


def policy_parse(text: str) -> PolicySpec:
    """Parse and validate a policy document; raises InvalidBudgetPolicy."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "document"
        raise _fail(f"not valid YAML ({getattr(exc, 'problem', exc)})", where) from None
    doc = _mapping(data, "(document)", TOP_KEYS)
    tenant = doc.get("tenant")
    if not isinstance(tenant, str) or not tenant:
        raise _fail("is required (the tenant's slug)", "tenant")
    project = doc.get("project")
    if project is not None and not isinstance(project, str):
        raise _fail("must be a project slug", "project")
    budget = _mapping(doc.get("budget"), "budget", BUDGET_KEYS)
    policies = _mapping(doc.get("policies"), "policies", POLICY_KEYS)
    warning = _mapping(policies.get("on_budget_warning"), "policies.on_budget_warning",
                       {"threshold_percent", "action", "notify", "webhook"})
    exceeded = _mapping(policies.get("on_budget_exceeded"), "policies.on_budget_exceeded", {"action", "message"})
    per_job = _mapping(policies.get("on_per_job_exceeded"), "policies.on_per_job_exceeded", {"action", "approvers"})

    threshold = warning.get("threshold_percent", 80)
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 1 <= threshold <= 100:
        raise _fail("must be a whole number from 1 to 100", "policies.on_budget_warning.threshold_percent")
    if warning.get("action", "notify") != "notify":
        raise _fail("the only warning action is notify", "policies.on_budget_warning.action")
    webhook = warning.get("webhook") or ""
    if webhook:
        try:
            URLValidator(schemes=["https", "http"])(webhook)
        except ValidationError:
            raise _fail(f"{webhook!r} is not an http(s) URL", "policies.on_budget_warning.webhook") from None
    on_exceeded = exceeded.get("action", ExceededAction.BLOCK)
    if on_exceeded not in ExceededAction.values:
        raise _fail(f"must be one of {ExceededAction.values}", "policies.on_budget_exceeded.action")
    on_per_job = per_job.get("action", PerJobAction.REQUIRE_APPROVAL)
    if on_per_job not in PerJobAction.values:
        raise _fail(f"must be one of {PerJobAction.values}", "policies.on_per_job_exceeded.action")
    message = exceeded.get("message") or ""
    if not isinstance(message, str) or len(message) > 500:
        raise _fail("must be text of at most 500 characters", "policies.on_budget_exceeded.message")

    tiers = doc.get("cost_tiers") or {}
    if not isinstance(tiers, Mapping):
        raise _fail("must be a mapping of tier to {multiplier: x}", "cost_tiers")
    clean_tiers: dict[str, dict[str, str]] = {}
    for name, spec in tiers.items():
        raw = spec.get("multiplier") if isinstance(spec, Mapping) else spec
        try:
            value = tier_multiplier(str(name), {str(name): str(raw)})
        except Exception as exc:  # PricingError: below 1.0, not a number
            raise _fail(str(exc), f"cost_tiers.{name}") from None
        clean_tiers[str(name)] = {"multiplier": str(value)}
    if clean_tiers and "standard" not in clean_tiers:
        raise _fail("must define the standard tier", "cost_tiers")

    return PolicySpec(
        tenant=tenant,
        project=project,
        fields={
            "monthly_limit_usd": _money(budget.get("monthly_limit_usd"), "budget.monthly_limit_usd"),
            "daily_limit_usd": _money(budget.get("daily_limit_usd"), "budget.daily_limit_usd"),
            "per_job_limit_usd": _money(budget.get("per_job_limit_usd"), "budget.per_job_limit_usd"),
            "warning_threshold_percent": threshold,
            "warning_notify": _emails(warning.get("notify"), "policies.on_budget_warning.notify"),
            "webhook_url": webhook,
            "on_exceeded": on_exceeded,
            "exceeded_message": message,
            "on_per_job_exceeded": on_per_job,
            "approvers": _emails(per_job.get("approvers"), "policies.on_per_job_exceeded.approvers"),
            "cost_tiers": clean_tiers,
        },
    )


def policy_apply(*, text: str, actor: dict[str, Any] | None = None) -> BudgetPolicy:
    """Create or replace the policy the document describes (tenant-wide or per project)."""
    spec = policy_parse(text)
    tenant = Tenant.objects.filter(slug=spec.tenant).first()
    if tenant is None:
        raise _fail(f"no tenant {spec.tenant!r}", "tenant")
    project = None
    if spec.project:
        project = Project.objects.filter(tenant=tenant, slug=spec.project).first()
        if project is None:
            raise _fail(f"tenant {spec.tenant!r} has no project {spec.project!r}", "project")
    with transaction.atomic():
        policy, created = BudgetPolicy.objects.update_or_create(
            tenant=tenant, project=project, defaults={**spec.fields, "source": text}
        )
        _applied(policy, actor or system_principal("apply_budget_policy", tenant.slug), {
            "created": created, "project": spec.project,
            **{k: (str(v) if isinstance(v, Decimal) else v) for k, v in spec.fields.items()},
        })
    return policy


def policy_save(*, policy: BudgetPolicy, actor: dict[str, Any], changed: list[str]) -> BudgetPolicy:
    """Save a policy edited elsewhere (the admin form): the same effects as applying a file."""
    with transaction.atomic():
        policy.save()
        _applied(policy, actor, {"changed": sorted(changed)})
    return policy


def _applied(policy: BudgetPolicy, actor: dict[str, Any], details: dict[str, Any]) -> None:
    windows_resize(policy)
    audit_append(action="BUDGET_POLICY_APPLIED", principal=actor, resource_type="budget_policy",
                 resource_id=str(policy.pk), tenant_slug=policy.tenant.slug, details=details)


def windows_resize(policy: BudgetPolicy) -> None:
    """Carry a changed policy into its open windows: new limits, and the database guarantee
    (``hard``) only for ``block`` windows that are within the new limit (a window already past a
    lowered limit refuses every new reservation anyway; its CHECK cannot hold retroactively)."""
    for kind, limit in ((WindowKind.MONTH, policy.monthly_limit_usd), (WindowKind.DAY, policy.daily_limit_usd)):
        windows = BudgetWindow.objects.filter(policy=policy, kind=kind)
        if limit is None:
            # No limit of this kind any more: future jobs open no such window; old rows stay as history.
            windows.update(hard=False)
            continue
        cap = micros(limit)
        windows.update(
            limit_micros=cap,
            hard=Case(
                When(spent_micros__lte=cap - F("reserved_micros"), then=Value(policy.on_exceeded == ExceededAction.BLOCK)),
                default=Value(False),
            ),
        )
