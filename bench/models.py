"""Benchmark runs and their signed reports."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from qcos.tenancy.models import ApiKey, Project, Tenant


class BenchmarkStatus(models.TextChoices):
    """Lower case because the seed's run response says ``"status": "queued"``."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class BenchmarkRun(models.Model):
    """One benchmark request: a suite of catalogue workloads on one backend, costed and reserved
    like a job, executed by a worker, and finished with a signed report and a Bench V3 evidence
    bundle. ``report_body`` holds the exact JSON text that was hashed and signed (``jsonb`` would
    reorder keys and re-encode numbers); the bundle's lives in ``ledger.BundleRecord``, with its
    registry leaf. ``attempts`` is the fencing token: only the attempt that claimed the run may
    finish it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="benchmark_runs")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="benchmark_runs")
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    backend_id = models.CharField(max_length=64)
    workloads = models.JSONField(help_text="Workload ids in request order.")
    shots = models.PositiveIntegerField()
    seed = models.BigIntegerField(help_text="The run seed (given, or generated at submission).")
    seed_source = models.CharField(max_length=16, default="request")
    dev_mode = models.BooleanField(default=False)
    warning = models.TextField(blank=True)

    status = models.CharField(max_length=16, choices=BenchmarkStatus.choices, default=BenchmarkStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Workloads finished so far.")
    attempts = models.PositiveIntegerField(default=0)
    claimed_by = models.CharField(max_length=200, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)

    priced_as = models.CharField(max_length=64, help_text="finops backend whose price sheet priced the run.")
    estimated_cost_usd = models.DecimalField(max_digits=18, decimal_places=6)
    actual_cost_usd = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    estimate = models.JSONField(default=dict, blank=True)

    idempotency_key = models.CharField(max_length=255, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True)

    report_body = models.TextField(blank=True)
    content_hash = models.CharField(max_length=71, blank=True)
    evidence_hash = models.CharField(max_length=71, blank=True)
    signature = models.JSONField(null=True, blank=True)
    bundle_id = models.CharField(max_length=48, blank=True)
    # Where runs completed before ledger migration 0005 kept their bundle; that migration copied
    # it into ledger.BundleRecord, and runs completed since leave it empty.
    bundle_body = models.TextField(blank=True)

    submitted_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-submitted_at", "-id"]
        verbose_name = "benchmark run"
        indexes = [models.Index(fields=["tenant", "-submitted_at"], name="bench_tenant_submitted")]
        constraints = [
            models.CheckConstraint(condition=Q(shots__gte=1) & Q(shots__lte=100_000), name="bench_shots_in_range"),
            models.CheckConstraint(condition=Q(status__in=BenchmarkStatus.values), name="bench_status_valid"),
            models.CheckConstraint(condition=Q(estimated_cost_usd__gte=0), name="bench_estimate_non_negative"),
            models.UniqueConstraint(fields=["tenant", "submitted_by", "idempotency_key"],
                                    condition=~Q(idempotency_key=""), name="bench_idempotency_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.id} on {self.backend_id}"
