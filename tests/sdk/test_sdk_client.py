"""QCOSClient against the in-memory HTTP fake (see conftest.py)."""

from __future__ import annotations

import socket
import time
from decimal import Decimal

import pytest

from qcos_sdk import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    InvalidCircuitError,
    NotFoundError,
    QCOSClient,
    QCOSConnectionError,
    QCOSError,
    QCOSTimeoutError,
    ServerError,
    ValidationError,
    __version__,
)

BELL = (
    "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[2];\ncreg c[2];\n"
    "h q[0];\ncx q[0],q[1];\nmeasure q -> c;\n"
)


@pytest.fixture()
def client(fake_api, sdk_api_key) -> QCOSClient:
    return QCOSClient(api_key=sdk_api_key, base_url=fake_api.base_url, retry_backoff=0.01)


def test_env_var_defaults_and_trailing_slash(monkeypatch, fake_api, sdk_api_key):
    monkeypatch.setenv("QCOS_API_KEY", sdk_api_key)
    monkeypatch.setenv("QCOS_BASE_URL", fake_api.base_url + "/")
    c = QCOSClient()
    assert c.base_url == fake_api.base_url
    job = c.execute(BELL, wait=False)
    assert job.status == "QUEUED"
    headers = fake_api.requests[-1]["headers"]
    assert headers["Authorization"] == f"Bearer {sdk_api_key}"
    assert headers["User-Agent"] == f"qcos-sdk/{__version__}"


def test_default_base_url_when_env_unset(monkeypatch):
    monkeypatch.delenv("QCOS_BASE_URL", raising=False)
    assert QCOSClient(api_key="k").base_url == "http://127.0.0.1:8000"


def test_missing_api_key_says_to_set_env(monkeypatch, fake_api):
    monkeypatch.delenv("QCOS_API_KEY", raising=False)
    c = QCOSClient(base_url=fake_api.base_url)
    with pytest.raises(ConfigurationError) as info:
        c.get_job("job-0001")
    assert "QCOS_API_KEY" in str(info.value)
    assert fake_api.requests == []  # never sent an unauthenticated request


def test_bad_key_maps_to_authentication_error(fake_api):
    c = QCOSClient(api_key="wrong", base_url=fake_api.base_url)
    with pytest.raises(AuthenticationError) as info:
        c.get_job("job-0001")
    assert (info.value.code, info.value.status_code) == ("UNAUTHENTICATED", 401)


def test_unknown_job_maps_to_not_found(client):
    with pytest.raises(NotFoundError) as info:
        client.get_job("job-missing")
    assert (info.value.code, info.value.status_code) == ("NOT_FOUND", 404)


def test_invalid_circuit_carries_line_and_column(client):
    with pytest.raises(InvalidCircuitError) as info:
        client.execute("OPENQASM 2.0;\nsyntax-error", wait=False)
    err = info.value
    assert isinstance(err, ValidationError)
    assert (err.code, err.status_code, err.line, err.column) == ("INVALID_CIRCUIT", 400, 3, 7)


def test_unknown_backend_is_validation_error(client):
    with pytest.raises(ValidationError) as info:
        client.execute(BELL, backend="nope", wait=False)
    assert info.value.code == "UNKNOWN_BACKEND"
    assert "nope" in info.value.message


def test_cancel_terminal_job_is_conflict(client):
    job = client.execute(BELL)
    with pytest.raises(ConflictError) as info:
        client.cancel_job(job.job_id)
    assert (info.value.code, info.value.status_code) == ("JOB_NOT_CANCELLABLE", 409)


def test_cancel_live_job(client):
    job = client.execute(BELL, wait=False)
    assert client.cancel_job(job.job_id).status == "CANCELLED"


def test_execute_waits_for_completion_and_returns_counts(fake_api, sdk_api_key):
    c = QCOSClient(api_key=sdk_api_key, base_url=fake_api.base_url, ledger_enabled=True,
                   tenant_id="research-alpha", project="quantum-ml")
    seen: list[str] = []
    result = c.execute(BELL, shots=1000, tags={"experiment": "vqe-h2"},
                       on_progress=lambda job: seen.append(job.status))
    assert result.status == "COMPLETED"
    assert result.counts == {"00": 500, "11": 500}
    assert result.circuit_hash.startswith("sha256:")
    assert result.provenance_id == f"prov-{result.job_id}"
    assert seen == ["QUEUED", "QUEUED", "RUNNING", "COMPLETED"]
    body = fake_api.bodies[-1]
    assert body["ledger"] == {"enabled": True, "tenant_id": "research-alpha",
                              "project": "quantum-ml", "tags": {"experiment": "vqe-h2"}}
    assert (body["shots"], body["backend"]) == (1000, "simulator")
    # nested, None-safe views
    job = c.get_job(result.job_id)
    assert job.cost_breakdown.compute == Decimal("0.0100")
    assert job.timings.submitted_at == "2025-01-01T00:00:00Z"


def test_failed_job_is_returned_not_raised(fake_api, client):
    fake_api.final_status = "FAILED"
    result = client.execute(BELL)
    assert result.status == "FAILED"
    assert result.error.code == "BACKEND_ERROR"
    assert result.counts is None and result.cost_breakdown is None


def test_timeout_raises_with_job_id(fake_api, client):
    fake_api.statuses = ["QUEUED"]  # never finishes
    start = time.monotonic()
    with pytest.raises(QCOSTimeoutError) as info:
        client.execute(BELL, timeout=0.4)
    elapsed = time.monotonic() - start
    assert info.value.job_id == next(iter(fake_api.jobs))
    assert info.value.last_status == "QUEUED"
    assert 0.35 <= elapsed < 2.0


def test_submit_retries_503_with_same_idempotency_key(fake_api, client):
    fake_api.fail_next_posts = 2
    job = client.execute(BELL, wait=False)
    assert job.status == "QUEUED"
    keys = fake_api.idempotency_keys
    assert len(keys) == 3 and keys[0] and len(set(keys)) == 1
    assert len(fake_api.jobs) == 1


def test_retries_wait_through_the_clients_own_sleep(fake_api, sdk_api_key):
    fake_api.fail_next_posts = 2
    waits: list[float] = []
    c = QCOSClient(api_key=sdk_api_key, base_url=fake_api.base_url, retry_backoff=0.5, sleep=waits.append)
    assert c.execute(BELL, wait=False).status == "QUEUED"
    assert len(waits) == 2 and all(w > 0 for w in waits)


def test_explicit_idempotency_key_dedupes(fake_api, client):
    first = client.execute(BELL, wait=False, idempotency_key="abc-123")
    second = client.execute(BELL, wait=False, idempotency_key="abc-123")
    assert first.job_id == second.job_id
    assert fake_api.idempotency_keys == ["abc-123", "abc-123"]


def test_generated_keys_differ_between_submissions(fake_api, client):
    client.execute(BELL, wait=False)
    client.execute(BELL, wait=False)
    assert len(set(fake_api.idempotency_keys)) == 2


def test_retries_exhausted_gives_server_error_with_text_body(fake_api, sdk_api_key):
    fake_api.fail_next_posts = 10
    c = QCOSClient(api_key=sdk_api_key, base_url=fake_api.base_url, max_retries=2,
                   retry_backoff=0.01)
    with pytest.raises(ServerError) as info:
        c.execute(BELL, wait=False)
    assert info.value.status_code == 503
    assert info.value.code == "HTTP_503"
    assert "Service Unavailable" in info.value.message
    assert len(fake_api.idempotency_keys) == 3


def test_json_5xx_envelope_keeps_server_code(fake_api, sdk_api_key):
    fake_api.fail_next_posts, fake_api.fail_body_json = 1, True
    c = QCOSClient(api_key=sdk_api_key, base_url=fake_api.base_url, max_retries=0)
    with pytest.raises(ServerError) as info:
        c.execute(BELL, wait=False)
    assert (info.value.code, info.value.message) == ("UNAVAILABLE", "try again")


def test_unreachable_server_is_connection_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block exits
    c = QCOSClient(api_key="k", base_url=f"http://127.0.0.1:{port}", max_retries=1,
                   retry_backoff=0.01)
    with pytest.raises(QCOSConnectionError) as info:
        c.get_job("job-1")
    assert isinstance(info.value, QCOSError)
    assert f"127.0.0.1:{port}" in info.value.message


def test_list_jobs_follows_next_lazily(fake_api, client):
    ids = [client.execute(BELL, wait=False, tags={"run": str(i % 2)}).job_id for i in range(5)]
    before = len(fake_api.requests)
    jobs_iter = client.list_jobs(limit=2)
    assert len(fake_api.requests) == before  # nothing fetched until iterated
    assert [j.job_id for j in jobs_iter] == ids
    list_calls = [r for r in fake_api.requests[before:] if r["path"].startswith("/api/v2.1/jobs?")]
    assert len(list_calls) == 3
    assert all(r["headers"]["Authorization"] == f"Bearer {client.api_key}" for r in list_calls)


def test_list_jobs_filters_by_tag_and_status(client):
    for i in range(4):
        client.execute(BELL, wait=False, tags={"run": str(i % 2)})
    assert len(list(client.list_jobs(tag="run=1", limit=1))) == 2
    assert len(list(client.list_jobs(tag={"run": "0"}, status="QUEUED"))) == 2
    assert list(client.list_jobs(status="COMPLETED")) == []


def test_pagination_link_to_foreign_host_keeps_configured_origin(client):
    resolved = client._same_origin("http://internal:9000/api/v2.1/jobs?offset=2&limit=2")
    assert resolved == f"{client.base_url}/api/v2.1/jobs?offset=2&limit=2"
    assert client._same_origin("/api/v2.1/jobs?offset=4") == f"{client.base_url}/api/v2.1/jobs?offset=4"


def test_poll_interval_starts_small_and_caps_at_one_second(fake_api, sdk_api_key):
    fake_api.statuses = ["QUEUED"] * 12 + ["COMPLETED"]
    delays: list[float] = []
    client = QCOSClient(api_key=sdk_api_key, base_url=fake_api.base_url, sleep=delays.append)
    assert client.execute(BELL, timeout=3600).status == "COMPLETED"
    assert len(delays) == 13
    assert delays[0] == pytest.approx(0.05)
    assert delays == sorted(delays)
    assert max(delays) == pytest.approx(1.0) and delays[-1] == pytest.approx(1.0)
