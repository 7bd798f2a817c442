"""End to end on PostgreSQL + Redis + real Celery worker processes + the live HTTP server."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings

from ledger.audit import audit_verify
from ledger.crypto import EvidenceBundle, KeyRing
from ledger.models import AuditEntry, SigningKey
from qcos.jobs.models import JobResult, QuantumJob
from tests.factories import job_body, slow_circuit

from .conftest import wait_for

pytestmark = pytest.mark.integration


def post_job(live_server, key, body):
    return requests.post(f"{live_server.url}/api/v2.1/jobs", json=body, headers={"X-API-Key": key}, timeout=30)


def job_status(job_id: str) -> str:
    return QuantumJob.objects.values_list("status", flat=True).get(pk=job_id)


def test_a_job_submitted_over_http_completes_on_a_worker(live_server, alice, redis_server, celery_on, start_worker):
    celery_on(redis_server.url)
    worker = start_worker(redis_server.url)
    response = post_job(live_server, alice.key, job_body())
    assert response.status_code == 202 and response.json()["status"] == "QUEUED"
    job_id = response.json()["job_id"]
    wait_for(lambda: job_status(job_id) == "COMPLETED", 60, message="job completed")
    job = requests.get(f"{live_server.url}/api/v2.1/jobs/{job_id}", headers={"Authorization": f"Bearer {alice.key}"},
                       timeout=10).json()
    assert set(job["counts"]) <= {"00", "11"} and sum(job["counts"].values()) == 1024
    assert job["attempts"] == 1 and job["provenance_id"].startswith("prov-")
    assert JobResult.objects.get(job_id=job_id).worker.endswith(tuple(str(pid) for pid in worker.children()))
    # The worker process signed the evidence; its beat sequences the registry and the audit log.
    headers = {"X-API-Key": alice.key}
    bundle = requests.get(f"{live_server.url}/api/v2.1/jobs/{job_id}/evidence", headers=headers, timeout=10).json()
    keys = KeyRing.from_dict(requests.get(f"{live_server.url}/api/v2.1/ledger/keys", headers=headers, timeout=10).json())
    assert EvidenceBundle(bundle).verify(keyring=keys).is_valid
    worker_key = next(s["key_id"] for s in bundle["signatures"] if s["signer"] == "worker")
    assert SigningKey.objects.get(key_id=worker_key).host  # the worker host's own key
    wait_for(lambda: "registry" in requests.get(f"{live_server.url}/api/v2.1/jobs/{job_id}/evidence",
                                                headers=headers, timeout=10).json(), 30, 0.5, "registered")
    assert AuditEntry.objects.filter(seq__isnull=True).count() == 0 or wait_for(
        lambda: not AuditEntry.objects.filter(seq__isnull=True).exists(), 30, 0.5, "audit sequenced")
    # ... and publishes its checkpoint outside the database, where this process verifies it.
    published = Path(settings.QCOS["AUDIT_CHECKPOINT_DIR"])
    wait_for(lambda: any(published.glob("*.checkpoint")), 30, 0.5, "audit checkpoint published by the worker")
    report = audit_verify(sequence_first=False)
    assert report.ok and report.external_checkpoints >= 1, report.as_dict()


def test_kill_9_of_the_worker_child_mid_job_completes_exactly_once(
    live_server, alice, redis_server, celery_on, start_worker
):
    celery_on(redis_server.url)
    worker = start_worker(redis_server.url)
    job_id = post_job(live_server, alice.key, job_body(slow_circuit(), shots=100)).json()["job_id"]
    wait_for(lambda: job_status(job_id) == "RUNNING", 60, message="job running")
    claimed_by = QuantumJob.objects.get(pk=job_id).claimed_by
    child = int(claimed_by.rsplit(":", 1)[1])
    assert child in worker.children()
    os.kill(child, signal.SIGKILL)
    wait_for(lambda: job_status(job_id) in {"COMPLETED", "FAILED"}, 120, 0.2, "job finished after the kill")
    job = QuantumJob.objects.get(pk=job_id)
    assert job.status == "COMPLETED", (job.error_code, job.error_message, worker.text()[-3000:])
    assert job.attempts == 2
    assert JobResult.objects.filter(job_id=job_id).count() == 1
    assert JobResult.objects.get(job_id=job_id).attempt == 2
    # Nothing runs it a third time later.
    time.sleep(3)
    assert QuantumJob.objects.get(pk=job_id).attempts == 2 and JobResult.objects.count() == 1


def test_with_redis_stopped_submissions_persist_and_run_when_it_returns(
    live_server, alice, redis_server, celery_on, start_worker
):
    celery_on(redis_server.url)
    start_worker(redis_server.url)
    redis_server.stop()
    started = time.monotonic()
    responses = [post_job(live_server, alice.key, job_body(shots=64)) for _ in range(3)]
    assert time.monotonic() - started < 10, "submissions must not hang on a dead broker"
    assert [r.status_code for r in responses] == [202, 202, 202]
    job_ids = [r.json()["job_id"] for r in responses]
    assert set(QuantumJob.objects.filter(pk__in=job_ids).values_list("status", flat=True)) == {"QUEUED"}
    redis_server.start()  # same port, empty: every message sent before is gone
    wait_for(
        lambda: QuantumJob.objects.filter(pk__in=job_ids, status="COMPLETED").count() == 3,
        90, 0.2, "all jobs completed after Redis returned",
    )
    assert JobResult.objects.filter(job_id__in=job_ids).count() == 3
