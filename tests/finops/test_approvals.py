"""Approvals: four-eyes on every path (API, admin action, admin form, service, database), one
winner of concurrent decisions, the budget re-checked on approval, every decision audited."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from finops.models import ApprovalDecision, BudgetPolicy, BudgetWindow, Charge, PriceSheetVersion
from ledger.models import AuditEntry
from qcos.errors import ApprovalConflict, BudgetExceeded, SelfApprovalForbidden
from qcos.jobs.approvals import job_decide
from qcos.jobs.models import QuantumJob
from tests.factories import job_body

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    monkeypatch.setattr("qcos.jobs.services._enqueue", lambda job_id, queue: None)


@pytest.fixture
def priced_simulator(db):
    """Each simulator job costs $0.10 (evidence storage), so budgets have something to count."""
    PriceSheetVersion.objects.create(sheet_id="local-simulator", version=2, family="local",
                                     effective_from=date(2025, 6, 1), parameters={"evidence_storage_usd": "0.10"})


def _pending_job(actor, **policy):
    BudgetPolicy.objects.update_or_create(
        tenant=actor.tenant, project=None,
        defaults={"per_job_limit_usd": Decimal("0.05"), "on_per_job_exceeded": "require_approval", **policy},
    )
    response = actor.client.post("/api/v2.1/jobs", job_body(), format="json")
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "PENDING_APPROVAL"
    return response.json()["job_id"]


def _actions(job_id):
    return list(AuditEntry.objects.filter(resource_id=job_id).order_by("id").values_list("action", flat=True))


def test_over_the_per_job_limit_waits_with_nothing_reserved(alice, priced_simulator):
    job_id = _pending_job(alice, monthly_limit_usd=Decimal("1"))
    charge = Charge.objects.get(resource_id=job_id)
    assert charge.status == "PENDING" and charge.windows == [] and charge.hold_reason == "per_job_limit"
    assert not BudgetWindow.objects.filter(reserved_micros__gt=0).exists()
    assert _actions(job_id) == ["JOB_SUBMITTED", "JOB_APPROVAL_REQUIRED"]


def test_approve_over_the_api_reserves_and_queues(alice, bob, priced_simulator):
    job_id = _pending_job(alice, monthly_limit_usd=Decimal("1"))
    assert [j["job_id"] for j in bob.client.get("/api/v2.1/approvals").json()["results"]] == [job_id]
    response = bob.client.post(f"/api/v2.1/jobs/{job_id}/approve", {"reason": "worth it"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "QUEUED"
    charge = Charge.objects.get(resource_id=job_id)
    assert charge.status == "HELD" and len(charge.windows) == 1
    assert BudgetWindow.objects.get().reserved_micros == 100_000
    decision = ApprovalDecision.objects.get(job_id=job_id)
    assert (decision.decided_by, decision.decision, decision.reason) == (bob.user, "approve", "worth it")
    assert _actions(job_id)[-1] == "JOB_APPROVED"
    assert bob.client.get("/api/v2.1/approvals").json()["results"] == []


def test_reject_needs_a_reason_and_releases(alice, bob, priced_simulator):
    job_id = _pending_job(alice)
    response = bob.client.post(f"/api/v2.1/jobs/{job_id}/reject", {}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert QuantumJob.objects.get(pk=job_id).status == "PENDING_APPROVAL"
    response = bob.client.post(f"/api/v2.1/jobs/{job_id}/reject", {"reason": "too dear"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "REJECTED"
    assert Charge.objects.get(resource_id=job_id).status == "RELEASED"
    assert _actions(job_id)[-1] == "JOB_REJECTED"


def test_self_approval_refused_over_the_api(adam, priced_simulator):
    job_id = _pending_job(adam)  # an admin may approve, but not their own job
    response = adam.client.post(f"/api/v2.1/jobs/{job_id}/approve", {"reason": "mine"}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "SELF_APPROVAL_FORBIDDEN"
    assert QuantumJob.objects.get(pk=job_id).status == "PENDING_APPROVAL"
    assert not ApprovalDecision.objects.exists()


def test_self_approval_refused_by_the_service_even_for_a_superuser(adam, priced_simulator):
    job_id = _pending_job(adam)
    adam.user.is_superuser = True
    adam.user.save()
    with pytest.raises(SelfApprovalForbidden):
        job_decide(user=adam.user, job=QuantumJob.objects.get(pk=job_id), decision="approve")
    assert QuantumJob.objects.get(pk=job_id).status == "PENDING_APPROVAL"


def test_self_approval_refused_by_the_database(alice, bob, priced_simulator):
    job_id = _pending_job(alice)
    with pytest.raises(IntegrityError), transaction.atomic():
        ApprovalDecision.objects.create(job_id=job_id, submitted_by=alice.user, decided_by=alice.user,
                                        decision="approve")


def test_researchers_cannot_decide(alice, priced_simulator):
    from tests.conftest import _actor

    job_id = _pending_job(alice)
    rita = _actor("research-alpha", "rita@alpha.example", "researcher")
    response = rita.client.post(f"/api/v2.1/jobs/{job_id}/approve", {}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "PERMISSION_DENIED"


def test_listed_approvers_only(alice, bob, adam, priced_simulator):
    job_id = _pending_job(alice, approvers=["adam@alpha.example"])
    response = bob.client.post(f"/api/v2.1/jobs/{job_id}/approve", {}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "NOT_AN_APPROVER"
    assert adam.client.post(f"/api/v2.1/jobs/{job_id}/approve", {}, format="json").status_code == 200


def test_a_second_decision_gets_409(alice, bob, adam, priced_simulator):
    job_id = _pending_job(alice)
    assert bob.client.post(f"/api/v2.1/jobs/{job_id}/approve", {}, format="json").status_code == 200
    response = adam.client.post(f"/api/v2.1/jobs/{job_id}/reject", {"reason": "late"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "APPROVAL_CONFLICT"
    assert ApprovalDecision.objects.count() == 1


def test_approving_when_the_budget_no_longer_suffices_changes_nothing(alice, bob, priced_simulator):
    job_id = _pending_job(alice, monthly_limit_usd=Decimal("0.15"), on_exceeded="block")
    # Meanwhile the budget is spent by a job under the per-job limit... (raise it for one submit)
    BudgetPolicy.objects.filter(tenant=alice.tenant).update(per_job_limit_usd=None)
    assert alice.client.post("/api/v2.1/jobs", job_body(), format="json").json()["status"] == "QUEUED"
    windows_before = list(BudgetWindow.objects.values())
    charges_before = list(Charge.objects.order_by("id").values())
    response = bob.client.post(f"/api/v2.1/jobs/{job_id}/approve", {"reason": "go"}, format="json")
    assert response.status_code == 402 and response.json()["error"]["code"] == "BUDGET_EXCEEDED"
    assert QuantumJob.objects.get(pk=job_id).status == "PENDING_APPROVAL"
    assert not ApprovalDecision.objects.exists()
    assert list(BudgetWindow.objects.values()) == windows_before
    assert list(Charge.objects.order_by("id").values()) == charges_before
    assert _actions(job_id)[-1] == "BUDGET_EXCEEDED"


def test_soft_block_holds_and_the_approval_overrides(alice, bob, priced_simulator):
    BudgetPolicy.objects.create(tenant=alice.tenant, daily_limit_usd=Decimal("0.10"), on_exceeded="soft_block")
    first = alice.client.post("/api/v2.1/jobs", job_body(), format="json").json()
    assert first["status"] == "QUEUED"
    held = alice.client.post("/api/v2.1/jobs", job_body(), format="json").json()
    assert held["status"] == "PENDING_APPROVAL"
    assert Charge.objects.get(resource_id=held["job_id"]).hold_reason == "soft_block"
    assert bob.client.post(f"/api/v2.1/jobs/{held['job_id']}/approve", {"reason": "deadline"},
                           format="json").json()["status"] == "QUEUED"
    window = BudgetWindow.objects.get()
    assert window.reserved_micros == 200_000 > window.limit_micros and not window.hard
    assert Charge.objects.get(resource_id=held["job_id"]).over_limit
    assert _actions(held["job_id"])[-2:] == ["JOB_APPROVED", "BUDGET_OVERRIDE"]


def test_admin_queue_actions_and_form_keep_four_eyes(alice, adam, priced_simulator, client):
    mine = _pending_job(adam)  # adam (tenant admin) submitted this one himself
    theirs = _pending_job(alice)
    client.force_login(adam.user)
    url = "/admin/finops/pendingapproval/"
    listing = client.get(url)
    assert listing.status_code == 200 and theirs in listing.content.decode()
    # The action asks for a reason first, then applies it; adam's own job is refused.
    page = client.post(url, {"action": "approve_selected", "_selected_action": [mine, theirs]})
    assert page.status_code == 200 and b"reason" in page.content
    done = client.post(url, {"action": "approve_selected", "_selected_action": [mine, theirs], "apply": "1",
                             "reason": "ok"}, follow=True)
    assert b"SELF_APPROVAL_FORBIDDEN" in done.content
    assert QuantumJob.objects.get(pk=theirs).status == "QUEUED"
    assert QuantumJob.objects.get(pk=mine).status == "PENDING_APPROVAL"
    # The decision form calls the same service: adam deciding on his own job is a form error.
    response = client.post("/admin/finops/approvaldecision/add/", {"job": mine, "decision": "approve", "reason": "x"})
    assert response.status_code == 200 and b"SELF_APPROVAL_FORBIDDEN" in response.content
    assert QuantumJob.objects.get(pk=mine).status == "PENDING_APPROVAL"
    assert not ApprovalDecision.objects.filter(job_id=mine).exists()


def test_admin_form_decides(alice, bob, priced_simulator, client):
    job_id = _pending_job(alice)
    client.force_login(bob.user)  # approvers are staff: the admin is their console
    response = client.post("/admin/finops/approvaldecision/add/",
                           {"job": job_id, "decision": "reject", "reason": "not now"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert QuantumJob.objects.get(pk=job_id).status == "REJECTED"
    assert _actions(job_id)[-1] == "JOB_REJECTED"


@pytest.mark.django_db(transaction=True)
def test_concurrent_approve_and_reject_one_wins(alice, bob, adam, priced_simulator):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    job_id = _pending_job(alice, monthly_limit_usd=Decimal("5"))
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def decide(user, decision):
        try:
            barrier.wait()
            job_decide(user=user, job=QuantumJob.objects.get(pk=job_id), decision=decision, reason="race")
            outcomes[decision] = "won"
        except (ApprovalConflict, BudgetExceeded) as exc:
            outcomes[decision] = exc.code
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(bob.user, "approve")),
               threading.Thread(target=decide, args=(adam.user, "reject"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes.values()) == ["APPROVAL_CONFLICT", "won"]
    assert ApprovalDecision.objects.count() == 1
    winner = ApprovalDecision.objects.get().decision
    status = QuantumJob.objects.get(pk=job_id).status
    charge = Charge.objects.get(resource_id=job_id)
    assert (status, charge.status) == (("QUEUED", "HELD") if winner == "approve" else ("REJECTED", "RELEASED"))
    assert _actions(job_id).count("JOB_APPROVED") + _actions(job_id).count("JOB_REJECTED") == 1
