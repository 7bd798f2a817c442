"""The one-statement API-key lookup must load every field into the right attribute."""

import pytest

from qcos.tenancy import services
from qcos.tenancy.selectors import api_key_lookup

pytestmark = pytest.mark.django_db


def test_lookup_loads_each_field_where_it_belongs():
    tenant, _ = services.tenant_get_or_create(slug="fields-tenant")
    user, _ = services.user_get_or_create(email="fields@example.com")
    services.membership_set(tenant=tenant, user=user, role="researcher")
    issued = services.api_key_create(tenant=tenant, user=user)
    key = api_key_lookup(plaintext=issued.plaintext)
    assert key.user.pk == user.pk
    assert key.user.email == "fields@example.com"
    assert key.user.username == user.username
    assert key.user.is_superuser is False and key.user.is_staff is user.is_staff and key.user.is_active is True
    assert (key.tenant.pk, key.tenant.slug, key.tenant.name) == (tenant.pk, tenant.slug, tenant.name)
    stored = type(key).objects.get(pk=key.pk)
    for field in type(key)._meta.concrete_fields:
        assert getattr(key, field.attname) == getattr(stored, field.attname), field.attname
    assert key.member_role == "researcher"


def test_a_superuser_is_loaded_as_one():
    tenant, _ = services.tenant_get_or_create(slug="fields-tenant")
    user, _ = services.user_get_or_create(email="root@example.com")
    user.is_superuser = True
    user.save()
    services.membership_set(tenant=tenant, user=user, role="viewer")
    key = api_key_lookup(plaintext=services.api_key_create(tenant=tenant, user=user).plaintext)
    assert key.user.is_superuser is True and key.user.email == "root@example.com"
