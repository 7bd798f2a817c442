"""The database restarting under submissions: a real gunicorn (production settings, persistent
connections) reaches PostgreSQL through a TCP proxy on a loopback port, which the test stops --
cutting every open connection, as a restart does -- and starts again. The machine's PostgreSQL is
never touched.

While the database is away every submission answers 503 with Retry-After in the one error shape,
never a 500; the real SDK client's retries succeed once it is back; and each Idempotency-Key
leaves exactly one job, even for submissions cut mid-transaction.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter

import pytest
import requests
from django.conf import settings

from ledger.models import AuditEntry
from qcos.jobs.models import IdempotencyRecord, QuantumJob
from qcos_sdk import QCOSClient
from tests.factories import BELL_QASM3

from .conftest import ROOT, _tied_to_this_process, free_port, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def web(db_proxy, redis_server, tmp_path):
    """gunicorn with the production settings, its database behind the proxy and a private broker
    (no worker: submitted jobs stay QUEUED, which is all this test needs)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="qcos.settings", PYTHONPATH=str(ROOT), DEBUG="false", SECRET_KEY="test-" + "x" * 50,
        ALLOWED_HOSTS="127.0.0.1", SECURE_SSL_REDIRECT="false", CONN_MAX_AGE="60",
        DATABASE_URL=db_proxy.database_url(),
        CELERY_BROKER_URL=redis_server.url, QCOS_KEY_DIR=settings.QCOS["KEY_DIR"],
        QCOS_AUDIT_CHECKPOINT_DIR=settings.QCOS["AUDIT_CHECKPOINT_DIR"],
    )
    assert str(db_proxy.port) in env["DATABASE_URL"]
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "qcos.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, preexec_fn=_tied_to_this_process)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return requests.get(f"{base}/healthz", timeout=5).status_code == 200
        except requests.RequestException:  # not listening yet, or its workers still booting
            return False

    wait_for(up, 60, 0.2, "gunicorn")
    yield base, log
    process.terminate()
    process.wait(20)


def submit_raw(base: str, key: str, api_key: str) -> requests.Response:
    body = {"circuit": BELL_QASM3, "backend": "simulator", "shots": 100, "ledger": {"enabled": False}}
    return requests.post(f"{base}/api/v2.1/jobs", json=body, timeout=30,
                         headers={"X-API-Key": api_key, "Idempotency-Key": key})


def sdk_client(base: str, api_key: str, seen: list[int]) -> QCOSClient:
    session = requests.Session()
    session.hooks["response"].append(lambda response, *args, **kwargs: seen.append(response.status_code))
    return QCOSClient(api_key=api_key, base_url=base, max_retries=12, session=session)


def test_submissions_during_a_database_restart_get_503_and_the_sdk_retries_succeed_exactly_once(web, db_proxy, alice):
    base, log = web
    seen: list[int] = []
    warm = sdk_client(base, alice.key, seen).submit(BELL_QASM3, shots=100, idempotency_key="warm")
    assert warm.status == "QUEUED"

    # The database goes away: every open connection is cut, new ones are refused.
    db_proxy.stop()
    away_keys = [f"away-{i}" for i in range(4)]
    for key in away_keys:
        response = submit_raw(base, key, alice.key)
        assert response.status_code == 503, (response.status_code, response.text)
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert int(response.headers["Retry-After"]) >= 1
    read = requests.get(f"{base}/api/v2.1/jobs/{warm.job_id}", headers={"X-API-Key": alice.key}, timeout=30)
    assert read.status_code == 503 and read.json()["error"]["code"] == "SERVICE_UNAVAILABLE"

    # The SDK, as a user runs it, submits while the database is still away; it comes back 1.5 s later.
    results: dict[str, str] = {}
    failures: list[BaseException] = []

    def submit_with_sdk(key: str) -> None:
        try:
            results[key] = sdk_client(base, alice.key, seen).submit(BELL_QASM3, shots=100, idempotency_key=key).job_id
        except BaseException as exc:  # noqa: BLE001 -- reported below
            failures.append(exc)

    threads = [threading.Thread(target=submit_with_sdk, args=(key,)) for key in away_keys]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    db_proxy.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    assert 503 in seen and 202 in seen and set(seen) <= {202, 503}, Counter(seen)

    # Submissions running while the database restarts twice more, cut mid-request or mid-transaction.
    stop = threading.Event()
    storm_keys: list[str] = []

    def keep_submitting() -> None:
        client = sdk_client(base, alice.key, seen)
        while not stop.is_set():
            key = f"storm-{uuid.uuid4()}"
            storm_keys.append(key)
            try:
                results[key] = client.submit(BELL_QASM3, shots=100, idempotency_key=key).job_id
            except BaseException as exc:  # noqa: BLE001 -- reported below
                failures.append(exc)
                return

    storm = [threading.Thread(target=keep_submitting) for _ in range(3)]
    for thread in storm:
        thread.start()
    for _ in range(2):
        time.sleep(1.0)
        db_proxy.stop()
        time.sleep(1.0)
        db_proxy.start()
    time.sleep(0.5)
    stop.set()
    for thread in storm:
        thread.join(60)
    assert not failures, failures
    assert set(seen) <= {202, 503}, Counter(seen)
    assert b"Internal Server Error" not in log.read_bytes()

    # A retry with a key already used answers the same job again.
    again = sdk_client(base, alice.key, seen).submit(BELL_QASM3, shots=100, idempotency_key=away_keys[0])
    assert again.job_id == results[away_keys[0]]

    # Exactly one job per key, every one recorded with its key and its audit entry; nothing partial.
    keys = ["warm", *away_keys, *storm_keys]
    assert len(storm_keys) >= 3
    records = IdempotencyRecord.objects.filter(tenant=alice.tenant)
    assert Counter(records.values_list("key", flat=True)) == Counter(keys)
    assert {r.key: r.job_id for r in records} == {"warm": warm.job_id, **results}
    assert QuantumJob.objects.filter(tenant=alice.tenant).count() == len(keys)
    assert AuditEntry.objects.filter(action="JOB_SUBMITTED", tenant_slug=alice.tenant.slug).count() == len(keys)
