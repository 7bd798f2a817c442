"""Writes for tenancy. Views, admin actions and commands call these; nothing else writes."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils import timezone

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


@transaction.atomic
def membership_set(*, tenant: Tenant, user, role: str) -> Membership:
    """Give ``user`` exactly ``role`` in ``tenant`` and keep their Django groups in step."""
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(Role.values)}")
    membership, created = Membership.objects.get_or_create(tenant=tenant, user=user, defaults={"role": role})
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    _user_groups_sync(user)
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership) -> None:
    user = membership.user
    membership.delete()
    _user_groups_sync(user)


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    plaintext: str


def api_key_create(*, tenant: Tenant, user, name: str = "") -> IssuedKey:
    """Issue a key. The plaintext is returned once and never stored."""
    if not Membership.objects.filter(tenant=tenant, user=user).exists():
        raise ValueError(f"{user} is not a member of {tenant.slug}")
    generated = keys.generate_key()
    api_key = ApiKey.objects.create(
        tenant=tenant, user=user, name=name, prefix=generated.prefix, key_hash=generated.key_hash
    )
    return IssuedKey(api_key=api_key, plaintext=generated.plaintext)


def api_key_revoke(*, api_key: ApiKey) -> bool:
    """Revoke a key; returns False when it was already revoked."""
    return bool(ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()))


def api_key_touch(*, api_key: ApiKey, min_interval_seconds: float) -> None:
    """Record use, at most once per interval, so authentication is not a write on every request."""
    now = timezone.now()
    if api_key.last_used_at and (now - api_key.last_used_at).total_seconds() < min_interval_seconds:
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now
