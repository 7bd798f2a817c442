"""Every job is priced before it runs and settled when it completes: cost_usd, cost_breakdown
(queue, compute, storage) and the price-sheet version, on the job, the charge and the window."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from finops.models import BudgetPolicy, BudgetWindow, Charge, PriceSheetVersion
from ledger.models import AuditEntry
from qcos.jobs import services
from qcos.jobs.models import QuantumJob
from tests.factories import job_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def priced_simulator(db):
    PriceSheetVersion.objects.create(sheet_id="local-simulator", version=2, family="local",
                                     effective_from=date(2025, 6, 1), parameters={"evidence_storage_usd": "0.10"})


def test_a_completed_job_carries_its_settled_cost(alice, priced_simulator, django_capture_on_commit_callbacks):
    BudgetPolicy.objects.create(tenant=alice.tenant, monthly_limit_usd=Decimal("10"))
    with django_capture_on_commit_callbacks(execute=True):  # the job runs in-process after commit
        job_id = alice.client.post("/api/v2.1/jobs", job_body(), format="json").json()["job_id"]
    job = alice.client.get(f"/api/v2.1/jobs/{job_id}").json()
    assert job["status"] == "COMPLETED"
    assert job["estimated_cost_usd"] == job["cost_usd"] == "0.100000"
    assert job["cost_breakdown"] == {"queue": "0.000000", "compute": "0.000000", "storage": "0.100000"}
    assert job["price_sheet"] == "local-simulator@2"
    charge = Charge.objects.get(resource_id=job_id)
    assert (charge.status, charge.settled_micros, charge.price_sheet_version) == ("SETTLED", 100_000, "2")
    window = BudgetWindow.objects.get()
    assert (window.spent_micros, window.reserved_micros) == (100_000, 0)


def test_hardware_names_are_priced_at_the_hardware_sheet_with_the_tier_surcharge(
    alice, django_capture_on_commit_callbacks
):
    """ibm_brisbane without credentials runs in DEV MODE on its calibration snapshot, but is priced
    (and reserved) at IBM's $1.60/s, so budgets behave as in production; the priority tier of the
    tenant's policy adds its surcharge under ``queue``."""
    BudgetPolicy.objects.create(tenant=alice.tenant, monthly_limit_usd=Decimal("1000"),
                                cost_tiers={"standard": {"multiplier": "1.0"}, "priority": {"multiplier": "1.5"}})
    body = {**job_body(backend="ibm_brisbane", shots=100), "priority": "priority"}
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.client.post("/api/v2.1/jobs", body, format="json")
    assert response.status_code == 202, response.json()
    job = alice.client.get(f"/api/v2.1/jobs/{response.json()['job_id']}").json()
    assert job["status"] == "COMPLETED", job
    parts = {k: Decimal(v) for k, v in job["cost_breakdown"].items()}
    assert parts["compute"] >= Decimal("3.20")  # at least IBM's 2 s sub-job overhead
    assert parts["queue"] == (parts["compute"] * Decimal("0.5")).quantize(Decimal("0.000001"))
    assert Decimal(job["cost_usd"]) == parts["compute"] + parts["queue"] + parts["storage"]
    assert Decimal(job["cost_usd"]) <= Decimal(job["estimated_cost_usd"])
    assert job["price_sheet"] == "ibm-payg@1"
    # The response says the results are simulated (the SDK and CLI show it; the evidence records it).
    assert job["warning"].startswith("DEV MODE: ibm_brisbane is simulated locally")


def test_estimates_use_the_published_version_and_the_tenant_tiers(alice, priced_simulator):
    response = alice.client.post("/api/v2.1/estimates", {"circuit": job_body()["circuit"], "backend": "simulator",
                                                         "shots": 10}, format="json")
    body = response.json()
    assert (body["price_sheet_id"], body["price_sheet_version"], body["cost_usd"]) == ("local-simulator", "2", "0.100000")


def test_a_refused_submit_leaves_only_its_audit_entry(alice, priced_simulator):
    BudgetPolicy.objects.create(tenant=alice.tenant, daily_limit_usd=Decimal("0.05"), exceeded_message="Ask Ada.")
    response = alice.client.post("/api/v2.1/jobs", job_body(), format="json")
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "BUDGET_EXCEEDED" and error["message"].startswith("Ask Ada.")
    assert error["details"]["window"] == "day" and error["details"]["remaining_usd"] == "0.050000"
    assert not QuantumJob.objects.exists() and not Charge.objects.exists()
    assert not BudgetWindow.objects.filter(reserved_micros__gt=0).exists()
    refusal = AuditEntry.objects.filter(action="BUDGET_EXCEEDED").get()
    assert refusal.outcome == "DENIED"


def test_failure_and_cancellation_release_the_reservation(alice, priced_simulator, monkeypatch):
    monkeypatch.setattr("qcos.jobs.services._enqueue", lambda job_id, queue: None)
    BudgetPolicy.objects.create(tenant=alice.tenant, monthly_limit_usd=Decimal("1"))
    cancelled = alice.client.post("/api/v2.1/jobs", job_body(), format="json").json()["job_id"]
    failed = alice.client.post("/api/v2.1/jobs", job_body(), format="json").json()["job_id"]
    assert BudgetWindow.objects.get().reserved_micros == 200_000
    assert alice.client.post(f"/api/v2.1/jobs/{cancelled}/cancel").status_code == 200
    job = services.job_claim(job_id=failed, worker="w1")
    assert services.job_fail(job_id=failed, attempt=job.attempts, code="BOOM", message="x", transient=False) == "FAILED"
    window = BudgetWindow.objects.get()
    assert (window.spent_micros, window.reserved_micros) == (0, 0)
    assert set(Charge.objects.values_list("status", flat=True)) == {"RELEASED"}


def test_check_budget(alice, priced_simulator):
    assert alice.client.post("/api/v2.1/budget/check", {"estimated_cost": "5"}, format="json").json()["can_proceed"]
    BudgetPolicy.objects.create(tenant=alice.tenant, monthly_limit_usd=Decimal("1.00"), daily_limit_usd=Decimal("0.50"),
                                exceeded_message="Monthly budget exceeded. Contact admin.")
    alice.client.post("/api/v2.1/jobs", job_body(), format="json")  # spends 0.10 today
    exact = alice.client.post("/api/v2.1/budget/check", {"tenant_id": "research-alpha", "estimated_cost": "0.40"},
                              format="json").json()
    assert exact["can_proceed"] is True and exact["remaining_usd"] == "0.400000"
    over = alice.client.post("/api/v2.1/budget/check", {"estimated_cost": "0.41"}, format="json").json()
    assert over["can_proceed"] is False and "Contact admin" in over["message"]
    both = alice.client.post("/api/v2.1/budget/check", {"estimated_cost": "0.95"}, format="json").json()
    # Both windows overrun: the policy's message once, then each window's figures.
    assert both["message"].count("Contact admin") == 1
    assert "daily" in both["message"] and "monthly" in both["message"], both["message"]
    other = alice.client.post("/api/v2.1/budget/check", {"tenant_id": "research-beta", "estimated_cost": "1"},
                              format="json")
    assert other.status_code == 403 and other.json()["error"]["code"] == "TENANT_MISMATCH"
    status = alice.client.get("/api/v2.1/budgets").json()
    # The job is still QUEUED here (no worker ran it): reserved, not yet spent.
    assert [(w["window"], w["reserved_usd"], w["remaining_usd"]) for w in status["policies"][0]["windows"]] == [
        ("month", "0.100000", "0.900000"), ("day", "0.100000", "0.400000")]


def test_publishing_a_price_in_the_admin_adds_a_version(admin_client):
    sheet = PriceSheetVersion.objects.get(sheet_id="braket-qpu-ionq-aria", version=1)
    response = admin_client.post(f"/admin/finops/pricesheetversion/{sheet.pk}/change/", {
        "sheet_id": sheet.sheet_id, "family": sheet.family, "effective_from": "2026-01-01",
        "parameters": '{"per_task_usd": "0.30", "per_shot_usd": "0.025"}', "notes": "new price",
    })
    assert response.status_code == 302
    versions = dict(PriceSheetVersion.objects.filter(sheet_id="braket-qpu-ionq-aria").values_list("version", "parameters"))
    assert versions[1]["per_shot_usd"] == "0.03" and versions[2]["per_shot_usd"] == "0.025"
    bad = admin_client.post(f"/admin/finops/pricesheetversion/{sheet.pk}/change/", {
        "sheet_id": sheet.sheet_id, "family": sheet.family, "effective_from": "2026-01-01",
        "parameters": '{"per_task_usd": "0.30"}', "notes": "",
    })
    assert bad.status_code == 200 and b"lacks" in bad.content
    assert PriceSheetVersion.objects.filter(sheet_id="braket-qpu-ionq-aria").count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_sdk_reads_costs_as_decimals(live_server, alice, priced_simulator):
    from qcos_sdk import QCOSClient

    client = QCOSClient(api_key=alice.key, base_url=live_server.url, tenant_id="research-alpha", project="quantum-ml")
    result = client.execute(circuit=job_body()["circuit"], backend="simulator", shots=64)
    job = client.get_job(result.job_id)
    assert job.cost_breakdown.compute == Decimal("0") and job.cost_breakdown.storage == Decimal("0.1")
    assert f"{job.cost_usd:.4f}" == "0.1000"
    check = client.check_budget(tenant_id="research-alpha", estimated_cost=0.50)
    assert check.can_proceed is True and check.remaining_usd is None


def test_every_backend_names_its_provider_and_price_sheet(alice, priced_simulator):
    rows = {row["name"]: row for row in alice.client.get("/api/v2.1/backends").json()["results"]}
    for name in ("simulator", "ibm_brisbane", "ibm_heron", "ionq_aria", "rigetti_ankaa", "quantinuum_h2"):
        assert rows[name]["provider"] and rows[name]["price_sheet"]["sheet_id"], name
    assert rows["simulator"]["price_sheet"] == {"sheet_id": "local-simulator", "version": "2", "family": "local",
                                                "provider": "local"}
    assert rows["ibm_brisbane"]["price_sheet"]["family"] == "ibm_payg" and rows["ibm_brisbane"]["dev_mode"]
    assert rows["quantinuum_h2"]["price_sheet"]["sheet_id"] == "azure-quantinuum-hqc"
    assert rows["fake_brisbane"]["priced_as"] == "simulator"
    assert not rows["fake_brisbane"]["dev_mode"] and not rows["simulator"]["dev_mode"]
