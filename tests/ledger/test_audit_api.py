"""The audit query API, the SDK's ledger.query_audit and the CLI's ledger commands."""

import pytest
from django.core.management import CommandError, call_command

from qcos_sdk import QCOSClient
from qcos_sdk.cli import main as qcos_main
from tests.factories import job_body

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def auditor(db):
    from tests.conftest import _actor

    return _actor("research-alpha", "aud@alpha.example", "auditor")


def test_auditor_queries_with_the_seeds_filters(alice, auditor, carol):
    job_id = alice.client.post("/api/v2.1/jobs", job_body(), format="json").json()["job_id"]
    carol.client.post("/api/v2.1/jobs", job_body(ledger={"tenant_id": "research-beta"}), format="json")
    response = auditor.client.get(
        "/api/v2.1/audit?tenant_id=research-alpha&start_date=2000-01-01&actions=JOB_SUBMITTED,JOB_COMPLETED&limit=10"
    )
    assert response.status_code == 200
    entries = response.json()["entries"]
    assert [e["action"] for e in entries] == ["JOB_SUBMITTED", "JOB_COMPLETED"]
    assert all(e["resource"]["id"] == job_id and e["tenant_id"] == "research-alpha" for e in entries)
    assert set(entries[0]) >= {"audit_id", "timestamp", "action", "principal", "resource", "details", "outcome"}
    assert auditor.client.get("/api/v2.1/audit?end_date=2000-01-01").json()["entries"] == []
    # The same day at both ends is that whole day; an end before the start is refused, not empty.
    today = entries[0]["timestamp"][:10]
    assert auditor.client.get(f"/api/v2.1/audit?start_date={today}&end_date={today}").json()["entries"]
    reversed_range = auditor.client.get("/api/v2.1/audit?start_date=2026-02-01&end_date=2026-01-31")
    assert reversed_range.status_code == 400 and reversed_range.json()["error"]["code"] == "INVALID_DATE_RANGE"


def test_pages_follow_the_cursor_and_other_tenants_are_invisible(alice, auditor, carol):
    for _ in range(3):
        alice.client.post("/api/v2.1/jobs", job_body(), format="json")
    carol_job = carol.client.post("/api/v2.1/jobs", job_body(ledger={"tenant_id": "research-beta"}), format="json")
    seen, cursor = [], None
    while True:
        page = auditor.client.get("/api/v2.1/audit", {"limit": 4, **({"cursor": cursor} if cursor else {})}).json()
        seen += page["entries"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len({e["audit_id"] for e in seen}) == len(seen) >= 9
    assert carol_job.json()["job_id"] not in str(seen)
    assert all(e["tenant_id"] == "research-alpha" for e in seen)


def test_researchers_cannot_read_the_audit_log_and_tenant_must_match(alice, auditor):
    assert alice.client.get("/api/v2.1/audit").json()["error"]["code"] == "PERMISSION_DENIED"
    assert auditor.client.get("/api/v2.1/audit?tenant_id=research-beta").json()["error"]["code"] == "TENANT_MISMATCH"
    assert auditor.client.get("/api/v2.1/audit?start_date=yesterday").json()["error"]["code"] == "VALIDATION_ERROR"


def test_sdk_query_audit_yields_entries_like_the_seed(live_server, alice, auditor):
    alice.client.post("/api/v2.1/jobs", job_body(), format="json")
    client = QCOSClient(api_key=auditor.key, base_url=live_server.url)
    logs = client.ledger.query_audit(tenant_id="research-alpha", start_date="2000-01-01",
                                     actions=["JOB_SUBMITTED", "JOB_COMPLETED", "BUDGET_EXCEEDED"], limit=100)
    lines = [f"{entry.timestamp}: {entry.action} by {entry.principal.user_id}" for entry in logs]
    assert len(lines) == 2 and lines[0].endswith(f"JOB_SUBMITTED by user-{alice.user.pk}")
    assert client.ledger.verify_audit().ok


def test_cli_verify_audit_and_audit_listing(live_server, auditor, monkeypatch, capsys):
    monkeypatch.setenv("QCOS_API_KEY", auditor.key)
    monkeypatch.setenv("QCOS_BASE_URL", live_server.url)
    assert qcos_main(["ledger", "verify-audit"]) == 0
    assert "audit log OK" in capsys.readouterr().out
    assert qcos_main(["ledger", "audit", "--actions", "API_KEY_CREATED"]) == 0
    assert "API_KEY_CREATED" in capsys.readouterr().out


def test_management_command_verifies_and_fails_loudly(alice, capsys):
    call_command("verify_audit")
    assert "audit log OK" in capsys.readouterr().out
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE ledger_auditentry DISABLE TRIGGER USER")
        cursor.execute("UPDATE ledger_auditentry SET payload = payload || ' ' WHERE seq = 1")
        cursor.execute("ALTER TABLE ledger_auditentry ENABLE TRIGGER USER")
    with pytest.raises(CommandError, match="BROKEN at seq 1"):
        call_command("verify_audit")
