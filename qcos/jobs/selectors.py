"""Reads for jobs. Everything the API returns comes through here, scoped to one tenant."""

from __future__ import annotations

from django.db.models import QuerySet

from qcos.errors import NotFound
from qcos.tenancy.principal import Principal

from .models import QuantumJob


def jobs_for(*, principal: Principal) -> QuerySet[QuantumJob]:
    """The one place tenant scoping happens for jobs: every API read starts here."""
    return (
        QuantumJob.objects.filter(tenant=principal.tenant)
        .select_related("tenant", "project", "result", "provenance")
        .defer("circuit")
    )


def job_get(*, principal: Principal, job_id: str) -> QuantumJob:
    """A job of the caller's tenant. Another tenant's job is NOT_FOUND, exactly like a missing one."""
    job = jobs_for(principal=principal).filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"job {job_id} not found", details={"job_id": job_id})
    return job


def backend_queue_minutes(*, backend: str, sample: int = 50) -> float | None:
    """Median submitted→started time of the backend's most recent jobs (all tenants: it is a
    property of the backend's queue, and no job of any tenant is revealed), or None without data."""
    from statistics import median

    recent = (
        QuantumJob.objects.filter(backend=backend, started_at__isnull=False)
        .order_by("-started_at")
        .values_list("submitted_at", "started_at")[:sample]
    )
    waits = [(started - submitted).total_seconds() / 60 for submitted, started in recent]
    return round(median(waits), 3) if waits else None
