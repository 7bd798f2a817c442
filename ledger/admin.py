from __future__ import annotations

from django.contrib import admin
from django.core.paginator import Paginator
from django.utils.functional import cached_property

from .models import AuditCheckpoint, AuditEntry


class NoCountPaginator(Paginator):
    """The audit table grows without bound: never COUNT(*) it for the change list."""

    @cached_property
    def count(self) -> int:
        return 10**9


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the log is append-only (and the database refuses changes anyway)."""

    list_display = ["seq", "timestamp", "tenant_slug", "action", "resource_type", "resource_id", "outcome"]
    list_filter = ["action", "outcome"]
    search_fields = ["=audit_id", "=resource_id", "=tenant_slug"]
    paginator = NoCountPaginator
    show_full_result_count = False
    list_per_page = 100

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        tenants = request.user.memberships.filter(role__in=["admin", "auditor"]).values_list("tenant__slug", flat=True)
        return queryset.filter(tenant_slug__in=list(tenants))

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser or request.user.memberships.filter(role__in=["admin", "auditor"]).exists()


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(admin.ModelAdmin):
    list_display = ["seq", "head_hash", "created_at"]
    paginator = NoCountPaginator
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
