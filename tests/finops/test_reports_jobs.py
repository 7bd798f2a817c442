"""End to end: jobs submitted through the API, run and settled by the real pipeline (embedded
default), then reported: the report's total is the sum of the jobs' own ``cost_usd``, and jobs that
failed or were cancelled (released charges) are not in it."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.utils import timezone

from finops.models import Charge
from tests.factories import job_body

pytestmark = pytest.mark.django_db(transaction=True)


def test_report_totals_equal_the_jobs_costs(alice, adam, monkeypatch):
    submitted = []
    for backend, shots, tags in (("ibm_brisbane", 1000, {"experiment": "vqe-h2"}),
                                 ("ibm_brisbane", 200, {"experiment": "qaoa"}),
                                 ("simulator", 1024, {"experiment": "vqe-h2"})):
        response = alice.client.post("/api/v2.1/jobs", job_body(backend=backend, shots=shots,
                                                                 ledger={"project": "quantum-ml", "tags": tags}),
                                     format="json")
        assert response.status_code == 202, response.content
        submitted.append(response.json()["job_id"])
    # One more that is cancelled before it runs: its reservation is released, it costs nothing.
    monkeypatch.setattr("qcos.jobs.services._enqueue", lambda job_id, queue: None)
    cancelled = alice.client.post("/api/v2.1/jobs", job_body(backend="ibm_brisbane"), format="json").json()["job_id"]
    assert alice.client.post(f"/api/v2.1/jobs/{cancelled}/cancel").status_code == 200
    jobs = [alice.client.get(f"/api/v2.1/jobs/{job_id}").json() for job_id in submitted]
    assert all(job["status"] == "COMPLETED" for job in jobs), jobs
    costs = [Decimal(job["cost_usd"]) for job in jobs]
    assert costs[0] > 0

    today = timezone.now().date().isoformat()
    body = {"start_date": today, "end_date": today, "group_by": ["backend", "tag:experiment"], "format": "csv"}
    report = adam.client.post("/api/v2.1/reports", body, format="json").json()
    rows = list(csv.DictReader(io.StringIO(adam.client.get(report["download_url"]).content.decode())))
    assert sum(Decimal(r["Cost (USD)"]) for r in rows) == sum(costs)
    assert sum(int(r["Jobs"]) for r in rows) == 3 and sum(int(r["Shots"]) for r in rows) == 2224
    by_key = {(r["Backend"], r["Tag (experiment)"]): Decimal(r["Cost (USD)"]) for r in rows}
    assert by_key[("ibm_brisbane", "vqe-h2")] == costs[0] and by_key[("simulator", "vqe-h2")] == costs[2]
    assert not Charge.objects.filter(resource_id=cancelled, status="SETTLED").exists()
