"""Reports through a real ``celery -A qcos worker`` on PostgreSQL + a private Redis: the build runs
on the maintenance queue, and a report whose worker died mid-build is rebuilt by the reconciler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.utils import timezone

from finops.models import ChargebackReport
from ledger.models import AuditEntry
from tests.integration.conftest import (  # noqa: F401  (fixtures)
    celery_on,
    postgres_db,
    redis_server,
    start_worker,
    wait_for,
)

from .reports_helpers import charge

pytestmark = pytest.mark.integration

BODY = {"report_type": "chargeback", "start_date": "2026-01-01", "end_date": "2026-01-31",
        "group_by": ["project", "backend"], "format": "csv"}


def status(report_id: str) -> str:
    return ChargebackReport.objects.values_list("status", flat=True).get(pk=report_id)


def test_a_report_requested_over_http_is_built_by_a_worker(
    live_server, adam, alice, redis_server, celery_on, start_worker
):
    charge(alice, backend="ibm_brisbane", shots=1500, micros=45_000_000, settled_at=datetime(2026, 1, 4, tzinfo=UTC))
    celery_on(redis_server.url)
    start_worker(redis_server.url, beat=False)
    headers = {"X-API-Key": adam.key}
    response = requests.post(f"{live_server.url}/api/v2.1/reports", json=BODY, headers=headers, timeout=30)
    assert response.status_code == 202
    report_id = response.json()["id"]
    wait_for(lambda: status(report_id) == "READY", 60, 0.1, "report built by the worker")
    detail = requests.get(f"{live_server.url}/api/v2.1/reports/{report_id}", headers=headers, timeout=10).json()
    assert detail["rows"] == 1
    download = requests.get(f"{live_server.url}{detail['download_url']}", headers=headers, timeout=10)
    assert download.text == "Project,Backend,Jobs,Shots,Cost (USD)\nquantum-ml,ibm_brisbane,1,1500,45.00\n"
    generated = AuditEntry.objects.get(action="REPORT_GENERATED", resource_id=report_id)
    assert generated.payload and '"reports"' in generated.payload  # the worker's system principal


def test_a_report_whose_worker_died_mid_build_is_rebuilt(
    adam, alice, redis_server, celery_on, start_worker, monkeypatch
):
    charge(alice, backend="ionq_aria", shots=750, micros=120_000_000, settled_at=datetime(2026, 1, 9, tzinfo=UTC))
    # As a SIGKILLed worker leaves it: claimed (RUNNING, attempt 1) long ago, never finished.
    report = ChargebackReport.objects.create(
        id="rep-lost0000000000000000001", tenant=adam.tenant, requested_by=adam.user, start_date="2026-01-01",
        end_date="2026-01-31", group_by=["backend"], format="csv", status="RUNNING", attempts=1,
        started_at=timezone.now() - timedelta(hours=1),
    )
    monkeypatch.setenv("QCOS_REPORT_RECONCILE_INTERVAL", "1")
    celery_on(redis_server.url)
    worker = start_worker(redis_server.url)  # with beat: the reconciler finds it
    wait_for(lambda: status(report.pk) in {"READY", "FAILED"}, 60, 0.2, "report rebuilt")
    report.refresh_from_db()
    assert report.status == "READY", (report.error, worker.text()[-3000:])
    assert report.attempts == 2 and bytes(report.content).decode().endswith("ionq_aria,1,750,120.00\n")
