"""``/api/v2.1/reports``: request, status, download; roles; tenant isolation; the build task's
claim, crash recovery and reconciliation."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from finops import report_services
from finops.models import ChargebackReport
from ledger.models import AuditEntry
from tests.conftest import _actor

from .reports_helpers import charge

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"report_type": "chargeback", "start_date": "2026-01-01", "end_date": "2026-01-31",
        "group_by": ["tenant", "project", "backend"], "format": "csv"}


@pytest.fixture
def aude(db):
    return _actor("research-alpha", "aude@alpha.example", "auditor")


@pytest.fixture
def cora(db):
    """An admin of the other tenant."""
    return _actor("research-beta", "cora@beta.example", "admin")


@pytest.fixture
def january(alice, carol):
    charge(alice, backend="ibm_brisbane", shots=1500, micros=45_000_000, settled_at=datetime(2026, 1, 4, tzinfo=UTC))
    charge(alice, project="chemistry", backend="ionq_aria", shots=750, micros=120_000_000,
           settled_at=datetime(2026, 1, 31, 23, 59, tzinfo=UTC))
    charge(carol, backend="simulator", shots=5000, micros=7_000_000, settled_at=datetime(2026, 1, 9, tzinfo=UTC))


def test_an_admin_gets_the_seed_report_ready_in_the_embedded_default(adam, january):
    response = adam.client.post("/api/v2.1/reports", BODY, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "READY" and body["rows"] == 2 and body["id"].startswith("rep-")
    assert response["Location"] == f"/api/v2.1/reports/{body['id']}"
    assert body["download_url"] == f"/api/v2.1/reports/{body['id']}/download"
    detail = adam.client.get(f"/api/v2.1/reports/{body['id']}").json()
    assert detail == body
    download = adam.client.get(body["download_url"])
    assert download.status_code == 200
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    assert download["Content-Disposition"] == (
        'attachment; filename="research-alpha-chargeback-20260101-20260131.csv"')
    assert hashlib.sha256(download.content).hexdigest() == body["content_sha256"]
    assert download.content.decode() == (
        "Tenant,Project,Backend,Jobs,Shots,Cost (USD)\n"
        "research-alpha,chemistry,ionq_aria,1,750,120.00\n"
        "research-alpha,quantum-ml,ibm_brisbane,1,1500,45.00\n"
    )
    actions = list(AuditEntry.objects.filter(resource_id=body["id"]).order_by("id").values_list("action", "outcome"))
    assert actions == [("REPORT_REQUESTED", "SUCCESS"), ("REPORT_GENERATED", "SUCCESS")]


@pytest.mark.parametrize(("fmt", "content_type", "suffix"), [
    ("json", "application/json", ".json"), ("focus", "text/csv; charset=utf-8", ".focus.csv")])
def test_json_and_focus_downloads(aude, january, fmt, content_type, suffix):
    body = aude.client.post("/api/v2.1/reports", {**BODY, "format": fmt}, format="json").json()
    download = aude.client.get(body["download_url"])
    assert download["Content-Type"] == content_type
    assert download["Content-Disposition"].endswith(f'{suffix}"')
    if fmt == "json":
        assert download.json()["totals"] == {"jobs": 2, "shots": 2250, "cost_usd": "165.00"}
    else:
        rows = list(csv.DictReader(io.StringIO(download.content.decode())))
        assert {r["x_TenantId"] for r in rows} == {"research-alpha"} and len(rows) == 2


def test_a_report_never_contains_another_tenants_costs_even_grouped_by_tenant(cora, january):
    body = cora.client.post("/api/v2.1/reports", BODY, format="json").json()
    text = cora.client.get(body["download_url"]).content.decode()
    assert "research-alpha" not in text and text.splitlines()[1] == "research-beta,quantum-ml,simulator,1,5000,7.00"


@pytest.mark.parametrize("who", ["alice", "bob", "vera"])
def test_researchers_approvers_and_viewers_may_not(request, who, adam):
    actor = request.getfixturevalue(who)
    report = adam.client.post("/api/v2.1/reports", BODY, format="json").json()
    for response in (actor.client.post("/api/v2.1/reports", BODY, format="json"),
                     actor.client.post("/api/v2.1/reports", {"start_date": "bad"}, format="json"),
                     actor.client.get(f"/api/v2.1/reports/{report['id']}"),
                     actor.client.get(report["download_url"])):
        assert response.status_code == 403 and response.json()["error"]["code"] == "PERMISSION_DENIED"
    assert ChargebackReport.objects.count() == 1


def test_another_tenants_report_is_not_found_like_a_missing_one(adam, cora, january):
    report_id = adam.client.post("/api/v2.1/reports", BODY, format="json").json()["id"]
    for suffix in ("", "/download"):
        foreign = cora.client.get(f"/api/v2.1/reports/{report_id}{suffix}")
        missing = cora.client.get(f"/api/v2.1/reports/rep-000000000000000000000000{suffix}")
        assert foreign.status_code == missing.status_code == 404
        assert foreign.json()["error"]["code"] == missing.json()["error"]["code"] == "NOT_FOUND"
        assert "research-alpha" not in foreign.content.decode()


@pytest.mark.parametrize(("change", "code"), [
    ({"end_date": "2025-12-31"}, "INVALID_DATE_RANGE"),
    ({"start_date": "2025-01-01", "end_date": "2026-01-31"}, "DATE_RANGE_TOO_LONG"),
    ({"group_by": ["region"]}, "INVALID_GROUP_BY"),
    ({"format": "xlsx"}, "UNKNOWN_FORMAT"),
    ({"report_type": "invoice"}, "UNKNOWN_REPORT_TYPE"),
    ({"start_date": "January"}, "VALIDATION_ERROR"),
])
def test_invalid_requests_answer_a_stable_code_and_persist_nothing(adam, change, code):
    response = adam.client.post("/api/v2.1/reports", {**BODY, **change}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == code
    assert ChargebackReport.objects.count() == 0
    assert not AuditEntry.objects.filter(action__startswith="REPORT_").exists()


def test_download_before_ready_is_a_conflict_with_a_stable_code(adam, monkeypatch):
    monkeypatch.setattr(report_services, "report_enqueue", lambda report_id: None)  # the broker is slow
    body = adam.client.post("/api/v2.1/reports", BODY, format="json").json()
    assert body["status"] == "PENDING" and body["download_url"] is None and body["rows"] is None
    response = adam.client.get(f"/api/v2.1/reports/{body['id']}/download")
    assert response.status_code == 409
    assert response.json()["error"] == {"code": "REPORT_NOT_READY", "message": response.json()["error"]["message"],
                                        "details": {"report_id": body["id"], "status": "PENDING"}}


def test_a_failed_build_is_recorded_and_audited(adam, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("finops.reports.build", boom)
    body = adam.client.post("/api/v2.1/reports", BODY, format="json").json()
    assert body["status"] == "FAILED" and "disk full" in body["error"]
    response = adam.client.get(f"/api/v2.1/reports/{body['id']}/download")
    assert response.status_code == 409 and response.json()["error"]["code"] == "REPORT_FAILED"
    entry = AuditEntry.objects.get(action="REPORT_GENERATED")
    assert entry.outcome == "FAILURE" and entry.resource_id == body["id"]


def _pending_report(adam, monkeypatch) -> str:
    monkeypatch.setattr(report_services, "report_enqueue", lambda report_id: None)
    return adam.client.post("/api/v2.1/reports", BODY, format="json").json()["id"]


def test_duplicate_deliveries_build_once(adam, monkeypatch, january):
    report_id = _pending_report(adam, monkeypatch)
    assert report_services.report_build(report_id=report_id) == "READY"
    assert report_services.report_build(report_id=report_id) is None
    assert AuditEntry.objects.filter(action="REPORT_GENERATED").count() == 1
    assert ChargebackReport.objects.get(pk=report_id).attempts == 1


def test_a_build_lost_with_its_worker_is_claimed_again_after_the_hard_time_limit(adam, monkeypatch, january):
    report_id = _pending_report(adam, monkeypatch)
    # A worker claimed it and died (SIGKILL): RUNNING, never finished.
    ChargebackReport.objects.filter(pk=report_id).update(status="RUNNING", attempts=1, started_at=timezone.now())
    assert report_services.report_build(report_id=report_id) is None  # the redelivery while it may still run
    long_ago = timezone.now() - timedelta(seconds=report_services.HARD_TIME_LIMIT_S + 1)
    ChargebackReport.objects.filter(pk=report_id).update(started_at=long_ago)
    enqueued = []
    monkeypatch.setattr(report_services, "report_enqueue", lambda report_id: enqueued.append(report_id))
    assert report_services.reports_reconcile() == {"reenqueued": 1, "failed": 0}
    assert enqueued == [report_id]
    assert report_services.report_build(report_id=report_id) == "READY"
    report = ChargebackReport.objects.get(pk=report_id)
    assert report.attempts == 2 and report.rows == 2


def test_reconcile_reenqueues_lost_messages_and_fails_exhausted_reports(adam, monkeypatch):
    lost = _pending_report(adam, monkeypatch)
    exhausted = _pending_report(adam, monkeypatch)
    old = timezone.now() - timedelta(seconds=report_services.HARD_TIME_LIMIT_S + 1)
    ChargebackReport.objects.filter(pk=lost).update(created_at=old)
    ChargebackReport.objects.filter(pk=exhausted).update(status="RUNNING", started_at=old,
                                                         attempts=report_services.MAX_ATTEMPTS)
    enqueued = []
    monkeypatch.setattr(report_services, "report_enqueue", lambda report_id: enqueued.append(report_id))
    assert report_services.reports_reconcile() == {"reenqueued": 1, "failed": 1}
    assert enqueued == [lost]
    assert ChargebackReport.objects.get(pk=exhausted).status == "FAILED"


def test_the_task_goes_to_the_maintenance_queue(adam, monkeypatch):
    from workers.tasks import build_report

    sent = []
    monkeypatch.setattr(build_report, "apply_async", lambda **kw: sent.append(kw))
    report_id = adam.client.post("/api/v2.1/reports", BODY, format="json").json()["id"]
    assert sent == [{"args": [report_id], "queue": "maintenance", "retry": False}]
