"""OWASP API1: tenant B's key never sees or touches tenant A's objects, on any endpoint/method."""

import pytest
from django.urls import get_resolver

from qcos.jobs.models import QuantumJob
from tests.factories import job_body

pytestmark = pytest.mark.django_db(transaction=True)

# Every job-scoped route and method; the last test fails when a route is added but not listed here.
OBJECT_ROUTES = [
    ("get", "/api/v2.1/jobs/{job_id}"),
    ("post", "/api/v2.1/jobs/{job_id}/cancel"),
    ("get", "/api/v2.1/jobs/{job_id}/evidence"),
    ("get", "/api/v2.1/jobs/{job_id}/evidence?format=zip"),
    ("get", "/api/v2.1/registry/leaves/{bundle_id}"),
]
# Benchmark routes (the seed's /api/v2/bench and Bench V3 /bench): another tenant's run is
# BENCHMARK_NOT_FOUND, exactly like a missing one.
BENCH_ROUTES = [
    ("get", "/api/v2/bench/report/{benchmark_id}"),
    ("get", "/api/v2/bench/report/{benchmark_id}/download"),
    ("get", "/api/v2/bench/report/{benchmark_id}/download?format=svg"),
    ("get", "/bench/evidence/{benchmark_id}"),
]
# Report routes: admins and auditors only, so the other tenant's caller here is an admin.
REPORT_ROUTES = [
    ("get", "/api/v2.1/reports/{report_id}"),
    ("get", "/api/v2.1/reports/{report_id}/download"),
]


@pytest.fixture
def alices_job(alice, monkeypatch):
    # Keep it QUEUED (as if the broker were slow) so that cancel would succeed if it were allowed.
    monkeypatch.setattr("qcos.jobs.services._enqueue", lambda job_id, queue: None)
    return alice.client.post("/api/v2.1/jobs", job_body(), format="json").json()["job_id"]


@pytest.fixture
def alices_completed_job(alice):
    job_id = alice.client.post("/api/v2.1/jobs", job_body(), format="json").json()["job_id"]
    return job_id, alice.client.get(f"/api/v2.1/jobs/{job_id}/evidence").json()["bundle_id"]


@pytest.mark.parametrize(("method", "route"), OBJECT_ROUTES)
@pytest.mark.parametrize("state", ["queued", "completed"])
def test_other_tenant_gets_not_found_and_changes_nothing(request, carol, method, route, state):
    if state == "queued":
        job_id, bundle_id = request.getfixturevalue("alices_job"), "bundle-none"
    else:
        job_id, bundle_id = request.getfixturevalue("alices_completed_job")
    alices_job = job_id
    before = QuantumJob.objects.values().get(pk=alices_job)
    response = getattr(carol.client, method)(route.format(job_id=job_id, bundle_id=bundle_id), format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
    # The id the caller sent is echoed; nothing of the job itself is.
    assert before["circuit_hash"] not in response.content.decode()
    assert "research-alpha" not in response.content.decode()
    assert QuantumJob.objects.values().get(pk=alices_job) == before


def test_other_tenant_never_sees_jobs_in_lists_or_counts(alice, carol, alices_job):
    carol.client.post("/api/v2.1/jobs", job_body(ledger={"tenant_id": "research-beta"}), format="json")
    for query in ("", "?status=QUEUED", "?tag=experiment=bell", "?project=quantum-ml", "?limit=500"):
        listing = carol.client.get(f"/api/v2.1/jobs{query}").json()
        assert alices_job not in str(listing)
        assert all(job["tenant_id"] == "research-beta" for job in listing["results"])
    assert carol.client.get("/api/v2.1/jobs").json()["count"] == 1
    assert alice.client.get("/api/v2.1/jobs").json()["count"] == 1


def test_other_tenant_cannot_verify_or_see_the_bundle_by_id(carol, alices_completed_job):
    _, bundle_id = alices_completed_job
    response = carol.client.post("/api/v2.1/ledger/bundles/verify", {"bundle_id": bundle_id}, format="json")
    assert response.status_code == 404 and response.json()["error"]["code"] == "NOT_FOUND"


def test_other_tenants_key_cannot_submit_into_it(carol):
    response = carol.client.post("/api/v2.1/jobs", job_body(), format="json")  # names research-alpha
    assert response.status_code == 403 and response.json()["error"]["code"] == "TENANT_MISMATCH"
    assert QuantumJob.objects.count() == 0


def test_not_found_is_identical_for_missing_and_foreign_jobs(carol, alices_job):
    foreign = carol.client.get(f"/api/v2.1/jobs/{alices_job}").json()
    missing = carol.client.get("/api/v2.1/jobs/job-000000000000000000000000").json()
    assert foreign["error"]["code"] == missing["error"]["code"] == "NOT_FOUND"
    assert foreign["error"]["message"].replace(alices_job, "X") == missing["error"]["message"].replace(
        "job-000000000000000000000000", "X"
    )


@pytest.mark.parametrize(("method", "route"), REPORT_ROUTES)
def test_other_tenant_gets_not_found_for_reports(adam, method, route):
    from finops.models import ChargebackReport
    from tests.conftest import _actor

    cora = _actor("research-beta", "cora@beta.example", "admin")
    body = {"start_date": "2026-01-01", "end_date": "2026-01-31", "format": "csv"}
    report_id = adam.client.post("/api/v2.1/reports", body, format="json").json()["id"]
    before = ChargebackReport.objects.values().get(pk=report_id)
    response = getattr(cora.client, method)(route.format(report_id=report_id))
    assert response.status_code == 404 and response.json()["error"]["code"] == "NOT_FOUND"
    assert "research-alpha" not in response.content.decode()
    assert ChargebackReport.objects.values().get(pk=report_id) == before


# Decision routes: approvers only, so the other tenant's caller here is an approver.
APPROVAL_ROUTES = [
    ("post", "/api/v2.1/jobs/{job_id}/approve"),
    ("post", "/api/v2.1/jobs/{job_id}/reject"),
]


@pytest.mark.parametrize(("method", "route"), APPROVAL_ROUTES)
def test_other_tenants_approver_gets_not_found_for_decisions(alice, method, route):
    from decimal import Decimal

    from finops.models import ApprovalDecision, BudgetPolicy
    from tests.conftest import _actor

    BudgetPolicy.objects.create(tenant=alice.tenant, per_job_limit_usd=Decimal("0"), on_per_job_exceeded="require_approval")
    body = job_body(backend="ionq_aria", shots=10)
    job_id = alice.client.post("/api/v2.1/jobs", body, format="json").json()["job_id"]
    before = QuantumJob.objects.values().get(pk=job_id)
    assert before["status"] == "PENDING_APPROVAL"
    bert = _actor("research-beta", "bert@beta.example", "approver")
    response = getattr(bert.client, method)(route.format(job_id=job_id), {"reason": "mine now"}, format="json")
    assert response.status_code == 404 and response.json()["error"]["code"] == "NOT_FOUND"
    assert "research-alpha" not in response.content.decode()
    assert QuantumJob.objects.values().get(pk=job_id) == before
    assert not ApprovalDecision.objects.exists()
    assert bert.client.get("/api/v2.1/approvals").json()["results"] == []


@pytest.fixture
def alices_benchmark(request, alice, monkeypatch):
    if request.param == "queued":
        monkeypatch.setattr("bench.services._enqueue", lambda benchmark_id: None)
    body = {"backend_id": "simulator", "workloads": ["bell_state"], "shots": 16, "seed": 1}
    return alice.client.post("/api/v2/bench/run", body, format="json").json()["benchmark_id"]


@pytest.mark.parametrize(("method", "route"), BENCH_ROUTES)
@pytest.mark.parametrize("alices_benchmark", ["queued", "completed"], indirect=True)
def test_other_tenant_gets_benchmark_not_found(carol, alices_benchmark, method, route):
    from bench.models import BenchmarkRun

    before = BenchmarkRun.objects.values().get(pk=alices_benchmark)
    response = getattr(carol.client, method)(route.format(benchmark_id=alices_benchmark), format="json")
    assert response.status_code == 404 and response.json()["error"]["code"] == "BENCHMARK_NOT_FOUND"
    assert "research-alpha" not in response.content.decode()
    for path, body in (("/api/v2/bench/verify", {"benchmark_id": alices_benchmark}),
                       ("/bench/evidence/verify", {"benchmark_id": alices_benchmark})):
        answer = carol.client.post(path, body, format="json")
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "BENCHMARK_NOT_FOUND"
    compare = carol.client.get(f"/api/v2/bench/compare?ids={alices_benchmark}")
    assert compare.status_code == 404 and compare.json()["error"]["code"] == "BENCHMARK_NOT_FOUND"
    assert BenchmarkRun.objects.values().get(pk=alices_benchmark) == before


def test_every_object_route_is_in_the_matrix():
    routes = set()
    for pattern in get_resolver().url_patterns:
        if str(pattern.pattern) == "api/v2.1/":
            routes |= {f"/api/v2.1/{p.pattern}" for p in pattern.url_patterns if "<" in str(p.pattern)}
        if str(pattern.pattern) in ("api/v2/bench/", "bench/"):
            routes |= {f"/{pattern.pattern}{p.pattern}" for p in pattern.url_patterns if "<" in str(p.pattern)}
    listed = {route.split("?")[0].replace("{job_id}", "<str:job_id>").replace("{bundle_id}", "<str:bundle_id>")
              for _, route in OBJECT_ROUTES}
    listed |= {route.replace("{report_id}", "<str:report_id>") for _, route in REPORT_ROUTES}
    listed |= {route.split("?")[0].replace("{benchmark_id}", "<str:benchmark_id>") for _, route in BENCH_ROUTES}
    listed |= {route.replace("{job_id}", "<str:job_id>") for _, route in APPROVAL_ROUTES}
    assert routes == listed
