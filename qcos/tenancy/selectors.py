"""Reads for tenancy."""

from __future__ import annotations

from django.db.models import OuterRef, Subquery

from .keys import matches, parse_prefix
from .models import ApiKey, Membership


def api_key_lookup(*, plaintext: str) -> ApiKey | None:
    """The active key matching ``plaintext``, with its tenant and user loaded; None otherwise."""
    prefix = parse_prefix(plaintext)
    if prefix is None:
        return None
    # The key, its user and tenant, and the user's role there, in one query.
    role = Membership.objects.filter(user=OuterRef("user"), tenant=OuterRef("tenant")).values("role")[:1]
    api_key = (
        ApiKey.objects.select_related("tenant", "user")
        .annotate(member_role=Subquery(role))
        .filter(prefix=prefix, revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if api_key is None or not matches(plaintext, api_key.key_hash):
        return None
    return api_key


def roles_of(*, user, tenant) -> frozenset[str]:
    return frozenset(Membership.objects.filter(user=user, tenant=tenant).values_list("role", flat=True))
