"""The audit log: entries in the same transaction as the change, a verifiable chain, append-only."""

from __future__ import annotations

import threading
import time

import orjson
import pytest
from django.db import DatabaseError, connection, transaction
from rest_framework.test import APIClient

from ledger.audit import audit_append, audit_sequence, audit_verify, system_principal
from ledger.models import AuditEntry
from qcos.tenancy import services as tenancy
from tests.factories import job_body

pytestmark = pytest.mark.django_db(transaction=True)


def actions_for(resource_id: str) -> list[str]:
    return list(AuditEntry.objects.filter(resource_id=resource_id).order_by("id").values_list("action", flat=True))


def test_a_job_leaves_submitted_started_completed_entries(alice):
    job_id = alice.client.post("/api/v2.1/jobs", job_body(), format="json").json()["job_id"]
    assert actions_for(job_id) == ["JOB_SUBMITTED", "JOB_STARTED", "JOB_COMPLETED"]
    submitted = orjson.loads(AuditEntry.objects.get(resource_id=job_id, action="JOB_SUBMITTED").payload)
    assert submitted["principal"]["user_id"] == f"user-{alice.user.pk}"
    assert submitted["principal"]["tenant_id"] == "research-alpha" and submitted["principal"]["roles"] == ["researcher"]
    assert submitted["resource"] == {"type": "quantum_job", "id": job_id}
    assert submitted["details"]["circuit_hash"].startswith("sha256:") and submitted["outcome"] == "SUCCESS"


def test_refused_input_leaves_no_entry(alice):
    before = AuditEntry.objects.count()
    assert alice.client.post("/api/v2.1/jobs", job_body(shots=0), format="json").status_code == 400
    assert AuditEntry.objects.count() == before


def test_an_entry_rolls_back_with_its_change(alice):
    before = AuditEntry.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        tenancy.api_key_create(tenant=alice.tenant, user=alice.user)
        raise RuntimeError("the change fails after its entry was written")
    assert AuditEntry.objects.count() == before


def test_cancellation_key_and_role_changes_and_failed_auth_are_audited(alice, adam, monkeypatch):
    monkeypatch.setattr("qcos.jobs.services._enqueue", lambda job_id, queue: None)
    job_id = alice.client.post("/api/v2.1/jobs", job_body(), format="json").json()["job_id"]
    adam.client.post(f"/api/v2.1/jobs/{job_id}/cancel")
    assert actions_for(job_id) == ["JOB_SUBMITTED", "JOB_CANCELLED"]
    tenancy.membership_set(tenant=alice.tenant, user=alice.user, role="viewer")
    key = alice.user.api_keys.get()
    tenancy.api_key_revoke(api_key=key)
    actions = set(AuditEntry.objects.filter(tenant_slug="research-alpha").values_list("action", flat=True))
    assert {"ROLE_GRANTED", "ROLE_CHANGED", "API_KEY_CREATED", "API_KEY_REVOKED"} <= actions
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=alice.key)  # revoked now
    assert client.get("/api/v2.1/jobs").status_code == 401
    failed = AuditEntry.objects.filter(action="AUTH_FAILED").get()
    assert failed.tenant_slug == "research-alpha" and failed.outcome == "DENIED" and failed.resource_id == key.prefix


def test_the_chain_verifies_and_new_entries_extend_it(alice):
    alice.client.post("/api/v2.1/jobs", job_body(), format="json")
    first = audit_verify()
    assert first.ok and first.entries_checked == AuditEntry.objects.count() and first.unsequenced == 0
    audit_append(action="REPORT_GENERATED", principal=system_principal("test", "research-alpha"))
    second = audit_verify()
    assert second.ok and second.head_seq == first.head_seq + 1
    entry = AuditEntry.objects.get(seq=second.head_seq)
    assert entry.prev_hash == first.head_hash


def test_sequencing_twice_changes_nothing(alice):
    audit_sequence()
    hashes = list(AuditEntry.objects.order_by("seq").values_list("seq", "entry_hash"))
    assert audit_sequence() == 0
    assert list(AuditEntry.objects.order_by("seq").values_list("seq", "entry_hash")) == hashes


# --- PostgreSQL: append-only and tamper detection -------------------------------------------------

pg_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="triggers are PostgreSQL's")


def _sql(statement: str, params=()):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)


def _tamper(statement: str, params=()):
    """What an owner of the table can do: disable the guard triggers, change rows, re-enable."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("ALTER TABLE ledger_auditentry DISABLE TRIGGER USER")
        cursor.execute(statement, params)
        cursor.execute("ALTER TABLE ledger_auditentry ENABLE TRIGGER USER")


@pytest.fixture
def chain(alice):
    for _ in range(3):
        alice.client.post("/api/v2.1/jobs", job_body(), format="json")
    audit_sequence()
    return list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True))


@pg_only
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_auditentry SET action = 'JOB_COMPLETED' WHERE seq = 2",
        "UPDATE ledger_auditentry SET seq = seq + 100 WHERE seq = 2",
        "DELETE FROM ledger_auditentry WHERE seq = 2",
    ],
)
def test_direct_sql_changes_are_rejected(chain, statement):
    # TRUNCATE is refused too, except in test databases like this one: tests/ledger/test_audit_tamper.py.
    before = list(AuditEntry.objects.order_by("seq").values_list("seq", "payload", "entry_hash"))
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert list(AuditEntry.objects.order_by("seq").values_list("seq", "payload", "entry_hash")) == before


@pg_only
def test_a_changed_payload_is_detected_at_its_entry(chain):
    _tamper("UPDATE ledger_auditentry SET payload = replace(payload, 'SUCCESS', 'FAILURE') WHERE seq = 4")
    report = audit_verify()
    assert not report.ok and report.first_bad["seq"] == 4 and "changed" in report.first_bad["problem"]


@pg_only
def test_a_changed_column_is_detected_at_its_entry(chain):
    _tamper("UPDATE ledger_auditentry SET action = 'JOB_CANCELLED' WHERE seq = 5")
    report = audit_verify()
    assert not report.ok and report.first_bad["seq"] == 5 and "column" in report.first_bad["problem"]


@pg_only
def test_a_deleted_entry_is_detected_where_it_was(chain):
    _tamper("DELETE FROM ledger_auditentry WHERE seq = 3")
    report = audit_verify()
    assert not report.ok and report.first_bad["seq"] == 3 and "missing" in report.first_bad["problem"]


@pg_only
def test_a_reordered_pair_is_detected_at_the_first_of_them(chain):
    _tamper("UPDATE ledger_auditentry SET seq = -seq WHERE seq IN (6, 7)")
    _tamper("UPDATE ledger_auditentry SET seq = CASE WHEN seq = -6 THEN 7 ELSE 6 END WHERE seq IN (-6, -7)")
    report = audit_verify()
    assert not report.ok and report.first_bad["seq"] == 6


@pg_only
def test_an_inserted_entry_is_detected_where_it_was_inserted(chain):
    last = max(chain)
    _tamper("UPDATE ledger_auditentry SET seq = -seq WHERE seq >= 4")
    _tamper("UPDATE ledger_auditentry SET seq = -seq + 1 WHERE seq <= -4")
    forged = AuditEntry.objects.get(seq=3)
    _tamper(
        "INSERT INTO ledger_auditentry (audit_id, timestamp, tenant_slug, action, resource_type, resource_id, "
        "outcome, payload, seq, prev_hash, entry_hash) SELECT 'audit-forged', timestamp, tenant_slug, action, "
        "resource_type, resource_id, outcome, payload, 4, prev_hash, entry_hash FROM ledger_auditentry WHERE seq = 3"
    )
    assert AuditEntry.objects.filter(seq__isnull=False).count() == last + 1 and forged
    report = audit_verify()
    assert not report.ok and report.first_bad["seq"] == 4


@pg_only
def test_sixteen_concurrent_writers_for_ten_seconds_leave_a_gapless_verifiable_log(alice):
    from django.db import connections

    stop = time.monotonic() + 10
    counts = [0] * 16
    errors = []

    def writer(index: int):
        try:
            while time.monotonic() < stop:
                with transaction.atomic():
                    audit_append(action="LOAD_TEST", principal=system_principal(f"writer-{index}", "research-alpha"),
                                 details={"n": counts[index]})
                counts[index] += 1
                if index == 0 and counts[0] % 200 == 0:
                    audit_sequence()  # the sequencer runs while writers append
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    report = audit_verify()
    total = AuditEntry.objects.count()
    assert report.ok and report.unsequenced == 0 and report.entries_checked == total
    assert sum(counts) == AuditEntry.objects.filter(action="LOAD_TEST").count() > 16
    assert list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True)) == list(range(1, total + 1))
