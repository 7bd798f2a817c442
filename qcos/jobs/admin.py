from __future__ import annotations

from django.contrib import admin

from qcos.tenancy.admin import ServiceWrittenMixin, TenantScopedAdmin

from .models import QuantumJob


@admin.register(QuantumJob)
class QuantumJobAdmin(ServiceWrittenMixin, TenantScopedAdmin):
    """Read-only: jobs change state through services only (API, workers, approvals)."""

    list_display = ["id", "tenant", "project", "backend", "shots", "status", "attempts", "submitted_at"]
    list_select_related = ["tenant", "project"]
    list_filter = ["status", "backend", "tenant"]
    search_fields = ["id", "circuit_hash"]
    date_hierarchy = "submitted_at"
    show_full_result_count = False
