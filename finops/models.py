"""FinOps records: price-sheet versions, budget policies, budget windows, charges, approval
decisions and chargeback reports.

Money columns are integer micro-dollars (``*_micros``): exact, cheap to add in one SQL statement,
and the unit ``finops.pricing`` quantizes to. ``usd()`` turns them back into Decimals.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from qcos.jobs.models import QuantumJob
from qcos.tenancy.models import Project, Tenant

MICROS = Decimal(1_000_000)


def usd(micros: int | None) -> Decimal | None:
    return None if micros is None else (Decimal(micros) / MICROS).quantize(Decimal("0.000001"))


def micros(amount: Decimal) -> int:
    return int((Decimal(amount) * MICROS).to_integral_value())


class PriceSheetVersion(models.Model):
    """One immutable version of a price sheet (``finops.catalog.PriceSheet`` as a row).

    Rows are never edited: saving a change in the admin creates the next version, so every
    estimate and charge stamped ``(sheet_id, version)`` can be re-priced years later.
    """

    sheet_id = models.CharField(max_length=64)
    version = models.PositiveIntegerField()
    family = models.CharField(max_length=32)
    effective_from = models.DateField(help_text="UTC date from which this version prices new jobs.")
    parameters = models.JSONField(help_text="Prices as decimal strings, e.g. {\"per_shot_usd\": \"0.03\"}.")
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sheet_id", "-version"]
        constraints = [models.UniqueConstraint(fields=["sheet_id", "version"], name="price_sheet_version_unique")]

    def __str__(self) -> str:
        return f"{self.sheet_id} v{self.version}"


class ExceededAction(models.TextChoices):
    BLOCK = "block", "block: refuse the job"
    NOTIFY = "notify", "notify: admit the job and notify"
    SOFT_BLOCK = "soft_block", "soft_block: hold the job for an approver's override"


class PerJobAction(models.TextChoices):
    REQUIRE_APPROVAL = "require_approval"
    BLOCK = "block"
    NOTIFY = "notify"


class BudgetPolicy(models.Model):
    """Limits and what happens at them, for a tenant (``project`` empty) or one project.

    A job is checked against every policy that covers it: its tenant's and its project's.
    The shape is the Ledger seed's ``budget-policy.yaml`` (see ``finops.policy``).
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="budget_policies")
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="budget_policies",
        help_text="Empty: the policy covers the whole tenant.",
    )
    monthly_limit_usd = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    daily_limit_usd = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    per_job_limit_usd = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    warning_threshold_percent = models.PositiveSmallIntegerField(default=80)
    warning_notify = models.JSONField(default=list, blank=True, help_text="E-mail addresses.")
    webhook_url = models.URLField(blank=True, help_text="Optional: warnings and exceedances are POSTed here.")
    on_exceeded = models.CharField(max_length=16, choices=ExceededAction.choices, default=ExceededAction.BLOCK)
    exceeded_message = models.CharField(max_length=500, blank=True)
    on_per_job_exceeded = models.CharField(
        max_length=20, choices=PerJobAction.choices, default=PerJobAction.REQUIRE_APPROVAL
    )
    approvers = models.JSONField(
        default=list, blank=True,
        help_text="E-mail addresses allowed to approve; empty: any approver or admin of the tenant.",
    )
    cost_tiers = models.JSONField(
        default=dict, blank=True, help_text='{"standard": {"multiplier": 1.0}, "priority": {"multiplier": 1.5}, …}'
    )
    source = models.TextField(blank=True, help_text="The YAML this policy was last applied from.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "budget policies"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant"], condition=Q(project__isnull=True), name="budget_policy_one_per_tenant"
            ),
            models.UniqueConstraint(fields=["tenant", "project"], name="budget_policy_one_per_project"),
            models.CheckConstraint(
                condition=Q(warning_threshold_percent__gte=1) & Q(warning_threshold_percent__lte=100),
                name="budget_policy_threshold_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant.slug}/{self.project.slug}" if self.project_id else f"{self.tenant.slug} (tenant)"


class WindowKind(models.TextChoices):
    MONTH = "month"
    DAY = "day"


class BudgetWindow(models.Model):
    """What a policy's month or day (UTC) has spent and holds in reservations.

    ``hard`` windows (policy action ``block``) carry the database guarantee
    ``spent + reserved <= limit``; reservations are conditional UPDATEs that re-check it on the
    locked row, and the CHECK constraint stops any other write from breaking it.
    """

    policy = models.ForeignKey(BudgetPolicy, on_delete=models.CASCADE, related_name="windows")
    kind = models.CharField(max_length=8, choices=WindowKind.choices)
    period_start = models.DateField()
    limit_micros = models.BigIntegerField()
    spent_micros = models.BigIntegerField(default=0)
    reserved_micros = models.BigIntegerField(default=0)
    hard = models.BooleanField(default=True)
    warned = models.BooleanField(default=False, help_text="The warning threshold was crossed and notified.")
    exceeded_notified = models.BooleanField(
        default=False, help_text="A notify window went past its limit and that was announced (once per window)."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["policy", "kind", "period_start"], name="budget_window_unique"),
            models.CheckConstraint(
                condition=Q(spent_micros__gte=0) & Q(reserved_micros__gte=0), name="budget_window_nonnegative"
            ),
            models.CheckConstraint(
                condition=Q(hard=False) | Q(spent_micros__lte=F("limit_micros") - F("reserved_micros")),
                name="budget_window_never_overspent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy} {self.kind} {self.period_start}"


class ChargeStatus(models.TextChoices):
    PENDING = "PENDING", "pending approval (nothing reserved)"
    HELD = "HELD", "reserved"
    SETTLED = "SETTLED"
    RELEASED = "RELEASED"


class Charge(models.Model):
    """The money side of one job or benchmark run: estimate, reservation, settlement.

    One row per resource. Reserve -> capture -> release: ``reserved_micros`` is held in every
    window listed in ``windows`` until the charge is settled (``settled_micros <= reserved_micros``)
    or released. Chargeback reports aggregate settled charges.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="charges")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="charges")
    resource_type = models.CharField(max_length=32)
    resource_id = models.CharField(max_length=64)
    backend = models.CharField(max_length=64)
    shots = models.PositiveIntegerField(default=0)
    tier = models.CharField(max_length=16, default="standard")
    tags = models.JSONField(default=dict, blank=True)
    price_sheet_id = models.CharField(max_length=64)
    price_sheet_version = models.CharField(max_length=16)
    estimate = models.JSONField(help_text="finops.pricing.Estimate.as_dict(): inputs for settlement.")
    estimated_micros = models.BigIntegerField()
    reserved_micros = models.BigIntegerField(
        default=0, help_text="Amount held in each of ``windows`` while HELD (the estimate; 0 while PENDING)."
    )
    settled_micros = models.BigIntegerField(null=True, blank=True)
    breakdown = models.JSONField(default=dict, blank=True, help_text="Settled queue/compute/storage (USD strings).")
    windows = models.JSONField(default=list, blank=True, help_text="Ids of the budget windows holding the reservation.")
    over_limit = models.BooleanField(default=False, help_text="Admitted past a limit (notify or approved soft_block).")
    hold_reason = models.CharField(
        max_length=16, blank=True, help_text="Why a PENDING charge waits: per_job_limit or soft_block."
    )
    status = models.CharField(max_length=10, choices=ChargeStatus.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "settled_at"], name="charge_tenant_settled"),
            # Chargeback reports (finops.reports) aggregate from this index alone on PostgreSQL
            # (an index-only scan: a charge row with its estimate JSON is ~1.5 kB, this entry ~70 B).
            models.Index(
                fields=["tenant", "settled_at"], include=["project", "backend", "shots", "settled_micros"],
                condition=Q(status="SETTLED"), name="charge_settled_report",
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["resource_type", "resource_id"], name="charge_one_per_resource"),
            models.CheckConstraint(
                condition=Q(settled_micros__isnull=True) | Q(settled_micros__lte=F("estimated_micros")),
                name="charge_settled_within_reservation",
            ),
            models.CheckConstraint(condition=Q(status__in=ChargeStatus.values), name="charge_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.resource_type} {self.resource_id}"


class Decision(models.TextChoices):
    APPROVE = "approve"
    REJECT = "reject"


class ApprovalDecision(models.Model):
    """The one decision on a job that waited in PENDING_APPROVAL.

    Four-eyes is a database fact: ``decided_by`` can never equal ``submitted_by``; and a job has at
    most one decision (the one-to-one key), so of two concurrent decisions exactly one commits.
    """

    job = models.OneToOneField(QuantumJob, on_delete=models.PROTECT, related_name="approval", primary_key=True)
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=8, choices=Decision.choices)
    reason = models.TextField(blank=True)
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(decided_by=F("submitted_by")), name="approval_four_eyes"),
            models.CheckConstraint(condition=Q(decision__in=Decision.values), name="approval_decision_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.decision} {self.job_id}"


class PendingApproval(QuantumJob):
    """Jobs waiting for a decision: the approvers' queue in the admin."""

    class Meta:
        proxy = True
        verbose_name = "job awaiting approval"
        verbose_name_plural = "approval queue"


class ReportStatus(models.TextChoices):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    READY = "READY"
    FAILED = "FAILED"


class ChargebackReport(models.Model):
    """A generated report and its file. Large ranges are built by a Celery task."""

    id = models.CharField(primary_key=True, max_length=40, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="reports")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    report_type = models.CharField(max_length=32, default="chargeback")
    start_date = models.DateField()
    end_date = models.DateField()
    group_by = models.JSONField(default=list)
    format = models.CharField(max_length=8)
    status = models.CharField(max_length=10, choices=ReportStatus.choices, default=ReportStatus.PENDING)
    rows = models.PositiveIntegerField(default=0)
    content = models.BinaryField(null=True, blank=True, editable=False)
    content_sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set by each claim: a RUNNING report whose claim is older than the task's hard time limit
    # was lost with its worker and may be claimed again (finops.report_services).
    started_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.id


class CostDashboard(ChargebackReport):
    """The admin's cost dashboard (spend per tenant and per backend over time); no rows of its own,
    it is a proxy so the dashboard has an entry on the admin index (``finops.admin_reports``)."""

    class Meta:
        proxy = True
        verbose_name = "cost dashboard"
        verbose_name_plural = "cost dashboard"
