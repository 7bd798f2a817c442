from __future__ import annotations

from django.contrib import admin

from qcos.tenancy.admin import TenantScopedAdmin

from .models import QuantumJob


@admin.register(QuantumJob)
class QuantumJobAdmin(TenantScopedAdmin):
    """Read-only: jobs change state through services only (API, workers, approvals)."""

    list_display = ["id", "tenant", "project", "backend", "shots", "status", "attempts", "submitted_at"]
    list_select_related = ["tenant", "project"]
    list_filter = ["status", "backend", "tenant"]
    search_fields = ["id", "circuit_hash"]
    date_hierarchy = "submitted_at"
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
