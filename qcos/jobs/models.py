"""Quantum jobs, their results and idempotency records."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from qcos.tenancy.models import ApiKey, Project, Tenant

from .states import JobStatus, Priority


def new_job_id() -> str:
    return f"job-{secrets.token_hex(12)}"


class QuantumJob(models.Model):
    """One circuit submitted to one backend. The row is the truth about the job's state; the broker
    only wakes workers up. ``attempts`` counts claims by a worker and is the fencing token: a worker
    may only finish the attempt it claimed.
    """

    id = models.CharField(primary_key=True, max_length=40, default=new_job_id, editable=False)
    # No index of its own: the (tenant, submitted_at) and (tenant, status) indexes lead with it,
    # and every status change would write a third entry.
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="jobs", db_index=False)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="jobs")
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="submitted_jobs"
    )
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    backend = models.CharField(max_length=64)
    provider = models.CharField(max_length=32)
    shots = models.PositiveIntegerField()
    priority = models.CharField(max_length=16, choices=Priority.choices, default=Priority.STANDARD)
    tags = models.JSONField(default=dict, blank=True)
    ledger_enabled = models.BooleanField(default=True)

    circuit = models.TextField()
    circuit_hash = models.CharField(max_length=71)
    qasm_version = models.PositiveSmallIntegerField()
    num_qubits = models.PositiveIntegerField()
    num_clbits = models.PositiveIntegerField()
    depth = models.PositiveIntegerField()
    gate_counts = models.JSONField(default=dict)

    # Money (finops): the estimate reserved at submit and the settled cost, both in USD; the
    # breakdown is {"queue", "compute", "storage"} as decimal strings (finops.pricing).
    estimated_cost_usd = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    cost_breakdown = models.JSONField(default=dict, blank=True)
    price_sheet = models.CharField(max_length=80, blank=True, help_text="sheet_id@version that priced the job.")

    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    claimed_by = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)

    submitted_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-submitted_at", "-id"]
        verbose_name = "quantum job"
        indexes = [
            models.Index(fields=["tenant", "-submitted_at"], name="job_tenant_submitted"),
            models.Index(fields=["tenant", "status"], name="job_tenant_status"),
            models.Index(
                fields=["status", "enqueued_at"],
                name="job_reconcile",
                condition=Q(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(shots__gte=1) & Q(shots__lte=100_000), name="job_shots_in_range"
            ),
            models.CheckConstraint(condition=Q(status__in=JobStatus.values), name="job_status_valid"),
            models.CheckConstraint(condition=Q(priority__in=Priority.values), name="job_priority_valid"),
        ]

    def __str__(self) -> str:
        return self.id


class JobResult(models.Model):
    """The outcome of the one attempt that completed the job. One row per job at most: the
    one-to-one key is what makes "completed exactly once" a database fact.
    """

    job = models.OneToOneField(QuantumJob, on_delete=models.PROTECT, related_name="result", primary_key=True)
    attempt = models.PositiveIntegerField()
    counts = models.JSONField()
    execution_ms = models.FloatField(help_text="Time the backend reports for executing the circuit.")
    execution_ms_source = models.CharField(max_length=64)
    backend_version = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=200)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"result of {self.job_id}"


class IdempotencyRecord(models.Model):
    """The first response to a submit carrying an ``Idempotency-Key``, replayed for repeats.

    Keys are scoped to the tenant and user; the request fingerprint is SHA-256 of the canonical
    request body, so the same key with another body is refused instead of replayed.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    job = models.ForeignKey(QuantumJob, on_delete=models.CASCADE, related_name="+")
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user", "key"], name="idempotency_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key} → {self.job_id}"
