"""The Django admin as RBAC console: staff see only their tenants' objects."""

import pytest
from django.test import Client

from qcos.jobs.models import QuantumJob
from tests.factories import job_body

pytestmark = pytest.mark.django_db(transaction=True)


def login(actor) -> Client:
    client = Client()
    actor.user.refresh_from_db()
    client.force_login(actor.user)
    return client


def test_an_approver_sees_only_their_tenants_jobs(alice, bob, carol):
    mine = alice.client.post("/api/v2.1/jobs", job_body(), format="json").json()["job_id"]
    theirs = carol.client.post(
        "/api/v2.1/jobs", job_body(ledger={"tenant_id": "research-beta"}), format="json"
    ).json()["job_id"]
    page = login(bob).get("/admin/jobs/quantumjob/")
    assert page.status_code == 200
    assert mine in page.content.decode() and theirs not in page.content.decode()
    assert login(bob).get(f"/admin/jobs/quantumjob/{theirs}/change/").status_code in (302, 404)


def test_a_researcher_has_no_admin_access(alice):
    assert login(alice).get("/admin/jobs/quantumjob/").status_code == 302  # to the login page


def test_jobs_cannot_be_edited_or_deleted_in_the_admin(alice, adam):
    job_id = alice.client.post("/api/v2.1/jobs", job_body(), format="json").json()["job_id"]
    client = login(adam)
    assert client.post(f"/admin/jobs/quantumjob/{job_id}/delete/", {"post": "yes"}).status_code == 403
    client.post(f"/admin/jobs/quantumjob/{job_id}/change/", {"status": "CANCELLED"})
    assert QuantumJob.objects.get(pk=job_id).status == "COMPLETED"


def test_an_admin_issues_a_key_in_the_admin_and_it_is_shown_once(adam):
    from qcos.tenancy.models import ApiKey

    client = login(adam)
    response = client.post(
        "/admin/tenancy/apikey/add/",
        {"tenant": adam.tenant.pk, "user": adam.user.pk, "name": "ci"},
        follow=True,
    )
    assert response.status_code == 200
    message = next(str(m) for m in response.context["messages"] if "qcos_" in str(m))
    plaintext = message[message.index("qcos_"):].split()[0]
    assert ApiKey.objects.get(name="ci").key_hash != plaintext
    from qcos.tenancy.selectors import api_key_lookup

    assert api_key_lookup(plaintext=plaintext).name == "ci"


def test_the_audit_log_is_visible_to_auditors_of_the_tenant_only_and_never_editable(alice, carol):
    from ledger.models import AuditEntry
    from tests.conftest import _actor

    auditor = _actor("research-alpha", "aud@alpha.example", "auditor")
    carol.client.post("/api/v2.1/jobs", job_body(ledger={"tenant_id": "research-beta"}), format="json")
    client = login(auditor)
    page = client.get("/admin/ledger/auditentry/")
    assert page.status_code == 200
    assert "research-beta" not in page.content.decode() and "research-alpha" in page.content.decode()
    entry = AuditEntry.objects.filter(tenant_slug="research-alpha").first()
    assert client.post(f"/admin/ledger/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert login(alice).get("/admin/ledger/auditentry/").status_code == 302


def test_role_and_key_changes_made_in_the_admin_are_audited_as_the_signed_in_user(adam, alice):
    """The audit log must name the person who acted in the console, not the command line."""
    import orjson
    from django.contrib.auth import get_user_model

    from ledger.models import AuditEntry
    from qcos.tenancy.models import ApiKey, Membership

    before = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    client = login(adam)
    newcomer = get_user_model().objects.create_user(username="nia@alpha.example", email="nia@alpha.example")
    assert client.post("/admin/tenancy/membership/add/",
                       {"tenant": adam.tenant.pk, "user": newcomer.pk, "role": "viewer"}).status_code == 302
    membership = Membership.objects.get(user=newcomer)
    assert client.post(f"/admin/tenancy/membership/{membership.pk}/change/",
                       {"tenant": adam.tenant.pk, "user": newcomer.pk, "role": "auditor"}).status_code == 302
    assert client.post(f"/admin/tenancy/membership/{membership.pk}/delete/", {"post": "yes"}).status_code == 302
    client.post("/admin/tenancy/apikey/add/", {"tenant": adam.tenant.pk, "user": alice.user.pk, "name": "ci"})
    key = ApiKey.objects.get(name="ci")
    client.post("/admin/tenancy/apikey/", {"action": "revoke_keys", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None

    actions = ["ROLE_GRANTED", "ROLE_CHANGED", "ROLE_REVOKED", "API_KEY_CREATED", "API_KEY_REVOKED"]
    entries = AuditEntry.objects.filter(id__gt=before, action__in=actions).order_by("id")
    assert [entry.action for entry in entries] == actions
    for entry in entries:
        principal = orjson.loads(entry.payload)["principal"]
        assert principal["user_id"] == f"user-{adam.user.pk}", (entry.action, principal)
        assert principal["roles"] == ["admin"] and principal["channel"] == "admin"
        assert principal["tenant_id"] == "research-alpha"
