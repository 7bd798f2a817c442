from __future__ import annotations

from django.contrib import admin
from django.core.paginator import Paginator
from django.utils.functional import cached_property

from .models import AuditCheckpoint, AuditEntry, BundleRecord, RegistryCheckpoint, SigningKey


class NoCountPaginator(Paginator):
    """Append-only tables grow without bound: never COUNT(*) them for a change list."""

    @cached_property
    def count(self) -> int:
        return 10**9


class ReadOnlyAdmin(admin.ModelAdmin):
    """Ledger records are written by services only (and the database refuses edits to the log)."""

    paginator = NoCountPaginator
    show_full_result_count = False
    list_per_page = 100

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def _audit_tenants(request) -> list[str]:
    return list(request.user.memberships.filter(role__in=["admin", "auditor"]).values_list("tenant__slug", flat=True))


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["seq", "timestamp", "tenant_slug", "action", "resource_type", "resource_id", "outcome"]
    list_filter = ["action", "outcome"]
    search_fields = ["=audit_id", "=resource_id", "=tenant_slug"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(tenant_slug__in=_audit_tenants(request))

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser or bool(_audit_tenants(request))


@admin.register(BundleRecord)
class BundleRecordAdmin(ReadOnlyAdmin):
    list_display = ["bundle_id", "job", "benchmark", "tenant_slug", "created_at"]
    search_fields = ["=bundle_id", "=job__id"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(tenant_slug__in=_audit_tenants(request))

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser or bool(_audit_tenants(request))


@admin.register(SigningKey)
class SigningKeyAdmin(ReadOnlyAdmin):
    list_display = ["key_id", "role", "backend", "host", "status", "not_before", "not_after"]
    list_filter = ["role", "status"]


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ["seq", "head_hash", "created_at"]


@admin.register(RegistryCheckpoint)
class RegistryCheckpointAdmin(ReadOnlyAdmin):
    list_display = ["tree_size", "root", "created_at"]
