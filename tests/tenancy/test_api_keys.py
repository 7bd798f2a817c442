import math

import pytest
from django.utils import timezone

from qcos.tenancy import keys, services
from qcos.tenancy.models import ApiKey
from qcos.tenancy.selectors import api_key_lookup

pytestmark = pytest.mark.django_db


def test_key_shape_entropy_and_only_the_hash_is_stored(alice):
    prefix = keys.parse_prefix(alice.key)
    stored = ApiKey.objects.get(prefix=prefix)
    secret = alice.key.split("_", 2)[2]
    assert len(secret) * math.log2(64) >= 128
    assert stored.key_hash == keys.hash_key(alice.key) and alice.key not in str(ApiKey.objects.values().get())
    assert secret not in stored.key_hash


def test_lookup_finds_only_the_exact_active_key(alice):
    assert api_key_lookup(plaintext=alice.key).user == alice.user
    assert api_key_lookup(plaintext=alice.key + "x") is None
    assert api_key_lookup(plaintext="qcos_deadbeef_whatever") is None
    assert api_key_lookup(plaintext="not-a-key") is None
    services.api_key_revoke(api_key=ApiKey.objects.get(user=alice.user))
    assert api_key_lookup(plaintext=alice.key) is None


def test_revoking_twice_reports_the_second_as_a_no_op(alice):
    key = ApiKey.objects.get(user=alice.user)
    assert services.api_key_revoke(api_key=key) is True
    assert services.api_key_revoke(api_key=key) is False


def test_last_use_is_recorded_at_most_once_per_interval(alice, settings):
    settings.QCOS = {**settings.QCOS, "API_KEY_TOUCH_SECONDS": 3600}
    alice.client.get("/api/v2.1/jobs")
    first = ApiKey.objects.get(user=alice.user).last_used_at
    assert first is not None and (timezone.now() - first).total_seconds() < 60
    alice.client.get("/api/v2.1/jobs")
    assert ApiKey.objects.get(user=alice.user).last_used_at == first


def test_a_key_stops_working_when_its_user_leaves_the_tenant(alice):
    services.membership_remove(membership=alice.user.memberships.get())
    response = alice.client.get("/api/v2.1/jobs")
    assert response.status_code == 401


def test_keys_are_issued_only_to_members(alice, carol):
    with pytest.raises(ValueError, match="not a member"):
        services.api_key_create(tenant=alice.tenant, user=carol.user)


def test_roles_map_to_django_groups_and_staff(alice, bob, adam):
    assert [g.name for g in alice.user.groups.all()] == ["qcos:researcher"]
    assert not alice.user.is_staff
    bob.user.refresh_from_db()
    assert bob.user.is_staff and bob.user.has_perm("jobs.view_quantumjob")
    adam.user.refresh_from_db()
    assert adam.user.has_perm("tenancy.add_membership") and not bob.user.has_perm("tenancy.add_membership")
    services.membership_set(tenant=bob.tenant, user=bob.user, role="viewer")
    bob.user.refresh_from_db()
    assert [g.name for g in bob.user.groups.all()] == ["qcos:viewer"] and not bob.user.is_staff


def test_unknown_role_is_refused(alice):
    with pytest.raises(ValueError, match="unknown role"):
        services.membership_set(tenant=alice.tenant, user=alice.user, role="overlord")
