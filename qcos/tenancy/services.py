"""Writes for tenancy. Views, admin actions and commands call these; nothing else writes."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils import timezone

from ledger.audit import Outcome, audit_append, system_principal

from . import keys
from .models import ApiKey, Membership, Project, Tenant
from .roles import ROLE_GROUP_PERMISSIONS, STAFF_ROLES, Role, group_name

User = get_user_model()


def role_groups_sync() -> None:
    """Create one Django group per role with its admin permissions (idempotent; run after migrate)."""
    for role, perms in ROLE_GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name(role))
        wanted = []
        for dotted in perms:
            app_label, codename = dotted.split(".")
            perm = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if perm is not None:
                wanted.append(perm)
        group.permissions.set(wanted)


def _user_groups_sync(user) -> None:
    roles = set(Membership.objects.filter(user=user).values_list("role", flat=True))
    role_groups = Group.objects.filter(name__in=[group_name(r) for r in Role.values])
    user.groups.remove(*[g for g in role_groups if g.name not in {group_name(r) for r in roles}])
    user.groups.add(*[g for g in role_groups if g.name in {group_name(r) for r in roles}])
    is_staff = user.is_superuser or bool(roles & STAFF_ROLES)
    if user.is_staff != is_staff:
        user.is_staff = is_staff
        user.save(update_fields=["is_staff"])


@transaction.atomic
def tenant_get_or_create(*, slug: str, name: str | None = None) -> tuple[Tenant, bool]:
    tenant, created = Tenant.objects.get_or_create(slug=slug, defaults={"name": name or slug})
    if created:
        Project.objects.get_or_create(tenant=tenant, slug="default", defaults={"name": "Default"})
    return tenant, created


def project_get_or_create(*, tenant: Tenant, slug: str, name: str = "") -> tuple[Project, bool]:
    return Project.objects.get_or_create(tenant=tenant, slug=slug, defaults={"name": name or slug})


def user_get_or_create(*, email: str) -> tuple[object, bool]:
    return User.objects.get_or_create(username=email, defaults={"email": email})


def _actor(actor: dict | None, tenant: Tenant) -> dict:
    """Who made a change: the acting user's principal, or the command line when none is given."""
    return actor or system_principal("cli", tenant.slug)


def _user_ref(user) -> dict:
    return {"user_id": f"user-{user.pk}", "username": user.get_username()}


@transaction.atomic
def membership_set(*, tenant: Tenant, user, role: str, actor: dict | None = None) -> Membership:
    """Give ``user`` exactly ``role`` in ``tenant`` and keep their Django groups in step."""
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(Role.values)}")
    membership, created = Membership.objects.get_or_create(tenant=tenant, user=user, defaults={"role": role})
    previous = None if created else membership.role
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    if previous != role:
        audit_append(
            action="ROLE_GRANTED" if created else "ROLE_CHANGED", principal=_actor(actor, tenant),
            resource_type="membership", resource_id=str(membership.pk),
            details={**_user_ref(user), "role": role, "previous_role": previous}, tenant_slug=tenant.slug,
        )
    _user_groups_sync(user)
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor: dict | None = None) -> None:
    user, tenant = membership.user, membership.tenant
    audit_append(
        action="ROLE_REVOKED", principal=_actor(actor, tenant), resource_type="membership",
        resource_id=str(membership.pk), details={**_user_ref(user), "role": membership.role}, tenant_slug=tenant.slug,
    )
    membership.delete()
    _user_groups_sync(user)


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    plaintext: str


@transaction.atomic
def api_key_create(*, tenant: Tenant, user, name: str = "", actor: dict | None = None) -> IssuedKey:
    """Issue a key. The plaintext is returned once and never stored."""
    if not Membership.objects.filter(tenant=tenant, user=user).exists():
        raise ValueError(f"{user} is not a member of {tenant.slug}")
    generated = keys.generate_key()
    api_key = ApiKey.objects.create(
        tenant=tenant, user=user, name=name, prefix=generated.prefix, key_hash=generated.key_hash
    )
    audit_append(
        action="API_KEY_CREATED", principal=_actor(actor, tenant), resource_type="api_key",
        resource_id=api_key.prefix, details={**_user_ref(user), "name": name}, tenant_slug=tenant.slug,
    )
    return IssuedKey(api_key=api_key, plaintext=generated.plaintext)


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: dict | None = None) -> bool:
    """Revoke a key; returns False when it was already revoked."""
    revoked = bool(ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()))
    if revoked:
        audit_append(
            action="API_KEY_REVOKED", principal=_actor(actor, api_key.tenant), resource_type="api_key",
            resource_id=api_key.prefix, details=_user_ref(api_key.user), tenant_slug=api_key.tenant.slug,
        )
    return revoked


def auth_failure_record(*, presented_prefix: str | None, remote_addr: str | None, reason: str) -> None:
    """Audit a failed API authentication, filed under the tenant of the key it pretended to be."""
    tenant_slug = ""
    if presented_prefix:
        tenant_slug = ApiKey.objects.filter(prefix=presented_prefix).values_list("tenant__slug", flat=True).first() or ""
    audit_append(
        action="AUTH_FAILED", principal={"user_id": "anonymous", "username": "", "tenant_id": tenant_slug, "roles": []},
        resource_type="api_key", resource_id=presented_prefix or "", outcome=Outcome.DENIED,
        details={"remote_addr": remote_addr or "", "reason": reason}, tenant_slug=tenant_slug,
    )


def api_key_touch(*, api_key: ApiKey, min_interval_seconds: float) -> None:
    """Record use, at most once per interval, so authentication is not a write on every request."""
    now = timezone.now()
    if api_key.last_used_at and (now - api_key.last_used_at).total_seconds() < min_interval_seconds:
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now
