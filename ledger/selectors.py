"""Reads of the audit log, scoped to one tenant."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from qcos.tenancy.principal import Principal

from .models import AuditEntry


def audit_entries_for(
    *,
    principal: Principal,
    start: datetime | None = None,
    end: datetime | None = None,
    actions: list[str] | None = None,
    after_id: int | None = None,
) -> QuerySet[AuditEntry]:
    """The caller's tenant's entries in append order; ``end`` is exclusive."""
    entries = AuditEntry.objects.filter(tenant_slug=principal.tenant.slug)
    if start is not None:
        entries = entries.filter(timestamp__gte=start)
    if end is not None:
        entries = entries.filter(timestamp__lt=end)
    if actions:
        entries = entries.filter(action__in=actions)
    if after_id is not None:
        entries = entries.filter(id__gt=after_id)
    return entries.order_by("id")
