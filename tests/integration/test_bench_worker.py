"""A benchmark through the whole production path: HTTP submit, Redis, a real Celery worker process
(listening on the queues every worker listens on), PostgreSQL; the report and evidence verify."""

from __future__ import annotations

import pytest
import requests

from bench.models import BenchmarkRun
from ledger.crypto import EvidenceBundle, KeyRing
from ledger.models import SigningKey

from .conftest import wait_for

pytestmark = pytest.mark.integration


def test_a_benchmark_runs_on_a_worker_and_its_report_verifies(live_server, alice, redis_server, celery_on,
                                                              start_worker):
    celery_on(redis_server.url)
    worker = start_worker(redis_server.url, beat=False)
    headers = {"X-API-Key": alice.key}
    body = {"backend_id": "ionq_aria", "workloads": ["ghz_5q", "bell_state"], "shots": 256, "seed": 5}
    accepted = requests.post(f"{live_server.url}/api/v2/bench/run", json=body, headers=headers, timeout=30)
    assert accepted.status_code == 202 and accepted.json()["status"] == "queued"
    benchmark_id = accepted.json()["benchmark_id"]
    early = requests.get(f"{live_server.url}/api/v2/bench/report/{benchmark_id}", headers=headers, timeout=10)
    assert early.status_code in (200, 202)
    wait_for(lambda: BenchmarkRun.objects.get(pk=benchmark_id).status in ("completed", "failed"), 120, 0.2,
             "benchmark finished")
    run = BenchmarkRun.objects.get(pk=benchmark_id)
    assert run.status == "completed", (run.error_code, run.error_message, worker.text()[-3000:])
    assert int(run.claimed_by.rsplit(":", 1)[1]) in worker.children()
    answer = requests.get(f"{live_server.url}/api/v2/bench/report/{benchmark_id}", headers=headers, timeout=10)
    report = answer.json()["report"]
    assert [w["id"] for w in report["workloads"]] == ["ghz_5q", "bell_state"] and report["dev_mode"] is True
    verdict = requests.post(f"{live_server.url}/api/v2/bench/verify", json={"report": report}, headers=headers,
                            timeout=10).json()
    assert verdict["status"] == "valid"
    keys = KeyRing.from_dict(requests.get(f"{live_server.url}/api/v2.1/ledger/keys", headers=headers,
                                          timeout=10).json())
    bundle = requests.get(f"{live_server.url}/bench/evidence/{benchmark_id}", headers=headers, timeout=10).json()
    assert EvidenceBundle(bundle).verify(keyring=keys).is_valid
    worker_key = next(s["key_id"] for s in bundle["signatures"] if s["signer"] == "worker")
    assert SigningKey.objects.get(key_id=worker_key).host  # signed by the worker host's own key
