"""The Django admin as the RBAC console. Staff see only the tenants they belong to (superusers see
all); every write goes through the tenancy services so groups stay in step with memberships."""

from __future__ import annotations

from django.contrib import admin, messages

from ledger.audit import user_principal

from . import services
from .models import ApiKey, Membership, Project, Tenant


class TenantScopedAdmin(admin.ModelAdmin):
    tenant_field = "tenant"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.tenant_field}__memberships__user": request.user}).distinct()

    def admin_actor(self, request, tenant: Tenant) -> dict:
        """The audit principal of a change made in the admin: the signed-in user, with their roles
        in ``tenant`` ("superuser" added for a superuser), through the channel "admin"."""
        roles = set(Membership.objects.filter(tenant=tenant, user=request.user).values_list("role", flat=True))
        if request.user.is_superuser:
            roles.add("superuser")
        return {**user_principal(request.user, tenant.slug, roles), "channel": "admin"}

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "tenant" and not request.user.is_superuser:
            kwargs["queryset"] = Tenant.objects.filter(memberships__user=request.user, memberships__role="admin")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ServiceWrittenMixin:
    """For records only services write: every field read-only, no add, no delete (actions and
    views may still call services)."""

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ProjectInline(admin.TabularInline):
    model = Project
    extra = 0
    fields = ["slug", "name", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    tenant_field = "pk"
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [ProjectInline]

    def get_queryset(self, request):
        queryset = admin.ModelAdmin.get_queryset(self, request)
        return queryset if request.user.is_superuser else queryset.filter(memberships__user=request.user).distinct()


@admin.register(Project)
class ProjectAdmin(TenantScopedAdmin):
    list_display = ["slug", "tenant", "name", "created_at"]
    list_select_related = ["tenant"]
    list_filter = ["tenant"]
    search_fields = ["slug", "name"]


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_select_related = ["user", "tenant"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__username", "user__email", "tenant__slug"]
    autocomplete_fields = ["user"]

    def save_model(self, request, obj, form, change):
        membership = services.membership_set(
            tenant=obj.tenant, user=obj.user, role=obj.role, actor=self.admin_actor(request, obj.tenant)
        )
        obj.pk = membership.pk

    def delete_model(self, request, obj):
        services.membership_remove(membership=obj, actor=self.admin_actor(request, obj.tenant))

    def delete_queryset(self, request, queryset):
        for membership in queryset:
            services.membership_remove(membership=membership, actor=self.admin_actor(request, membership.tenant))


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    list_display = ["prefix", "name", "user", "tenant", "created_at", "last_used_at", "revoked_at"]
    list_select_related = ["user", "tenant"]
    list_filter = ["tenant", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "name", "user__username"]
    fields = ["tenant", "user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke_keys"]

    def get_readonly_fields(self, request, obj=None):
        return ["prefix", "created_at", "last_used_at", "revoked_at"] + (["tenant", "user"] if obj else [])

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name"])
            return
        try:
            issued = services.api_key_create(
                tenant=obj.tenant, user=obj.user, name=obj.name, actor=self.admin_actor(request, obj.tenant)
            )
        except ValueError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        obj.pk = issued.api_key.pk
        self.message_user(
            request, f"API key created. Copy it now, it will not be shown again: {issued.plaintext}", messages.WARNING
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: the key's history stays

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke_keys(self, request, queryset):
        revoked = sum(
            services.api_key_revoke(api_key=key, actor=self.admin_actor(request, key.tenant))
            for key in queryset.select_related("tenant")
        )
        self.message_user(request, f"{revoked} key(s) revoked.")
