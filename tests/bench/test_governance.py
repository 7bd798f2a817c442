"""A benchmark run is costed, reserved against the tenant's budget, settled or released, and
audited like a job (finops does the money; these tests check the run's side)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bench.models import BenchmarkRun
from finops.models import BudgetPolicy, BudgetWindow, Charge
from ledger.models import AuditEntry

from .conftest import completed, report, run

pytestmark = pytest.mark.django_db


def test_a_dev_mode_run_is_priced_reserved_and_settled_at_the_hardware_sheet(alice):
    BudgetPolicy.objects.create(tenant=alice.tenant, monthly_limit_usd=Decimal("1000"))
    accepted = run(alice, backend_id="ibm_brisbane", workloads=["bell_state"], shots=100, seed=1).json()
    estimated = Decimal(accepted["estimated_cost_usd"])
    assert accepted["priced_as"] == "ibm_brisbane" and estimated > 1  # three IBM sub-jobs, not free
    result = report(alice, accepted["benchmark_id"]).json()["report"]
    assert Decimal(result["cost"]["actual_usd"]) == estimated
    charge = Charge.objects.get(resource_type="benchmark_run", resource_id=accepted["benchmark_id"])
    assert charge.status == "SETTLED" and charge.settled_micros == int(estimated * 1_000_000)
    window = BudgetWindow.objects.get(kind="month")
    assert window.reserved_micros == 0 and window.spent_micros == charge.settled_micros


def test_a_run_over_budget_is_refused_and_only_the_refusal_is_audited(alice):
    BudgetPolicy.objects.create(tenant=alice.tenant, monthly_limit_usd=Decimal("5"))
    response = run(alice, backend_id="ibm_heron", workloads=["ghz_5q", "bell_state"], shots=1000)
    assert response.status_code == 402 and response.json()["error"]["code"] == "BUDGET_EXCEEDED"
    assert not BenchmarkRun.objects.exists() and not Charge.objects.exists()
    refusal = AuditEntry.objects.get(resource_type="benchmark_run")
    assert refusal.action == "BUDGET_EXCEEDED" and refusal.outcome == "DENIED"
    # The free local simulator still runs.
    assert completed(alice, backend_id="simulator", workloads=["bell_state"], shots=10)["report"]["id"]


def test_a_run_that_would_need_approval_is_refused(alice):
    BudgetPolicy.objects.create(tenant=alice.tenant, per_job_limit_usd=Decimal("1"),
                                on_per_job_exceeded="require_approval")
    response = run(alice, backend_id="ibm_brisbane", workloads=["bell_state"], shots=100)
    assert response.status_code == 403 and response.json()["error"]["code"] == "APPROVAL_REQUIRED"
    assert not BenchmarkRun.objects.exists()


def test_a_failed_run_releases_its_reservation(alice, monkeypatch):
    BudgetPolicy.objects.create(tenant=alice.tenant, monthly_limit_usd=Decimal("1000"))
    monkeypatch.setattr("bench.execution.run_benchmark", lambda *a, **k: 1 / 0)
    benchmark_id = run(alice, backend_id="rigetti_ankaa", workloads=["bell_state"], shots=100).json()["benchmark_id"]
    assert report(alice, benchmark_id).json()["error"]["details"]["error_code"] == "EXECUTION_ERROR"
    assert Charge.objects.get(resource_id=benchmark_id).status == "RELEASED"
    assert BudgetWindow.objects.get(kind="month").reserved_micros == 0
