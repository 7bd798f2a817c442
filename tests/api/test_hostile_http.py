"""Hostile HTTP: every error answer is the one JSON error shape, with a 4xx for the client's fault
and a 503 with Retry-After for a transient server fault -- through the Django test client, the
live test server and a real gunicorn started with the project's gunicorn.conf.py."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from django.db import connection

from qcos.api.limits import MAX_HEADER_FIELD_BYTES, MAX_JSON_DEPTH, MAX_URL_BYTES
from qcos.api.parsers import json_depth_exceeds, parse_json_body
from qcos.jobs.models import IdempotencyRecord, QuantumJob
from tests.factories import BELL_QASM3, job_body

ROOT = Path(__file__).resolve().parents[2]
JOBS = "/api/v2.1/jobs"


def error_of(response, status: int, code: str) -> dict:
    """The response is the one error shape with this status and code; its ``error`` object."""
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    body = json.loads(response.content)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    return body["error"]


def post_raw(actor, path: str, raw: bytes, **headers):
    return actor.client.generic("POST", path, raw, content_type="application/json", **headers)


def nothing_submitted() -> bool:
    return not QuantumJob.objects.exists() and not IdempotencyRecord.objects.exists()


# --- NUL characters, unpaired surrogates: refused at the boundary ------------------------------

@pytest.mark.parametrize("path", [
    "/api/v2.1/jobs/job-a%00b", "/api/v2.1/jobs/%00/evidence", "/api/v2.1/jobs/%00/cancel",
    "/api/v2.1/registry/leaves/%00", "/api/v2.1/reports/%00", "/api/v2.1/reports/%00/download",
    "/api/v2/bench/report/%00", "/bench/evidence/%00",
])
def test_a_nul_in_an_id_in_the_path_is_a_validation_error(alice, path):
    method = alice.client.post if path.endswith("/cancel") else alice.client.get
    error_of(method(path), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("query", [
    "project=a%00b", "backend=%00", "tag=a%00b", "tag=k=v%00", "status=%00", "limit=1%00",
])
def test_a_nul_in_a_query_parameter_is_a_validation_error(alice, query):
    error_of(alice.client.get(f"{JOBS}?{query}"), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("path", ["/api/v2.1/audit?actions=%00", "/api/v2.1/audit?tenant_id=%00",
                                  "/api/v2/bench/compare?ids=%00", "/api/v2.1/registry/proof/inclusion?leaf_index=%00"])
def test_a_nul_in_any_endpoints_query_is_a_validation_error(adam, path):
    error_of(adam.client.get(path), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("tags", [{"a\x00b": "v"}, {"k": "a\x00b"}, {"\ud800": "v"}, {"k": "\udfff"}])
def test_nul_and_unpaired_surrogates_in_tags_are_refused_and_nothing_is_written(alice, tags):
    body = job_body()
    body["ledger"]["tags"] = tags
    # json.dumps writes both as \u escapes, which is how a client sends them.
    error = error_of(post_raw(alice, JOBS, json.dumps(body).encode(), HTTP_IDEMPOTENCY_KEY="k1"), 400,
                     "VALIDATION_ERROR")
    assert "ledger.tags" in error["message"]
    assert nothing_submitted()


@pytest.mark.parametrize("field", ["circuit", "backend", "priority"])
def test_a_nul_in_any_body_string_is_refused(alice, field):
    error_of(post_raw(alice, JOBS, json.dumps({**job_body(), field: "x\x00"}).encode()), 400, "VALIDATION_ERROR")
    assert nothing_submitted()


def test_a_nul_in_a_header_is_refused(alice):
    error = error_of(alice.client.post(JOBS, job_body(), format="json", HTTP_IDEMPOTENCY_KEY="a\x00b"), 400,
                     "VALIDATION_ERROR")
    assert error["details"] == {"header": "Idempotency-Key"}
    assert nothing_submitted()


def test_an_escaped_backslash_u0000_is_text_not_a_nul(alice):
    body = job_body()
    body["ledger"]["tags"] = {"note": "\\u0000"}
    response = post_raw(alice, JOBS, json.dumps(body).encode())
    assert response.status_code == 202, response.content
    assert response.json()["tags"] == {"note": "\\u0000"}


# --- JSON: depth, size, duplicates, numbers, encodings -----------------------------------------

@pytest.mark.parametrize("raw", [
    b"[" * 1000 + b"]" * 1000,
    b'{"a":' * 1000 + b"1" + b"}" * 1000,
    b'{"circuit": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b"[" * 1_000_000,  # never closed
])
def test_json_nested_past_the_limit_is_refused_before_parsing_quickly_and_in_little_memory(alice, raw):
    tracemalloc.start()
    started = time.perf_counter()
    response = post_raw(alice, JOBS, raw)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    error = error_of(response, 400, "JSON_TOO_DEEP")
    assert error["details"] == {"max_depth": MAX_JSON_DEPTH}
    assert elapsed < 1.0 and peak < 30 * 2**20, (elapsed, peak)
    assert nothing_submitted()


def test_the_depth_limit_is_exact_and_ignores_brackets_inside_strings():
    assert not json_depth_exceeds("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)
    assert json_depth_exceeds("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
    assert not json_depth_exceeds(json.dumps({"circuit": "[" * 1000 + '\\"{' * 1000}))
    assert not json_depth_exceeds("[]" * 100_000)  # wide is not deep
    nested = {"a": None}
    for _ in range(MAX_JSON_DEPTH - 1):
        nested = {"a": nested}
    assert parse_json_body(json.dumps(nested).encode()) == nested


def test_too_many_arrays_and_objects_are_refused(alice):
    raw = json.dumps({"circuit": BELL_QASM3, "backend": "simulator", "x": [[]] * 100_001}).encode()
    error_of(post_raw(alice, JOBS, raw), 400, "JSON_TOO_COMPLEX")


@pytest.mark.parametrize(("raw", "fragment"), [
    (b'{"circuit": "x", "backend": "simulator", "backend": "ibm_brisbane"}', "appears twice"),
    (b'{"shots": 1e400}', "out of range"),
    (b'{"shots": NaN}', "NaN"),
    (b'{"shots": -Infinity}', "Infinity"),
    (b'{"shots": ' + b"9" * 5000 + b"}", "digits"),
    (b'{"circuit": "\xff\xfe"}', "utf-8"),
    (b'{"circuit": ', "parse error"),
])
def test_malformed_json_is_a_malformed_request(alice, raw, fragment):
    error = error_of(post_raw(alice, JOBS, raw), 400, "MALFORMED_REQUEST")
    assert fragment in error["message"]
    assert nothing_submitted()


@pytest.mark.parametrize("path", ["/api/v2.1/estimates", "/api/v2.1/budget/check", "/api/v2.1/reports",
                                  "/api/v2.1/ledger/bundles/verify", "/api/v2/bench/run", "/api/v2/bench/verify",
                                  "/bench/evidence/verify"])
def test_every_body_endpoint_uses_the_bounded_parser(adam, path):
    error_of(post_raw(adam, path, b"[" * 5000 + b"]" * 5000), 400, "JSON_TOO_DEEP")
    error_of(post_raw(adam, path, b'{"a": 1, "a": 2}'), 400, "MALFORMED_REQUEST")
    error_of(post_raw(adam, path, b'{"a": "\\u0000"}'), 400, "VALIDATION_ERROR")


def test_a_body_past_the_limit_is_refused_before_it_is_read(alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    body = json.dumps(job_body(circuit=BELL_QASM3 + "// padding\n" * 400)).encode()
    assert len(body) > 4096
    error = error_of(post_raw(alice, JOBS, body), 413, "PAYLOAD_TOO_LARGE")
    assert error["details"] == {"max_bytes": 4096}
    assert post_raw(alice, JOBS, json.dumps(job_body()).encode()).status_code == 202


def test_an_invalid_content_length_is_malformed(alice):
    error_of(post_raw(alice, JOBS, b"{}", CONTENT_LENGTH="12x"), 400, "MALFORMED_REQUEST")


# --- Out-of-range values that reached the database ---------------------------------------------

@pytest.mark.parametrize("query", ["end_date=9999-12-31", "start_date=0001-01-01T00:00:00%2B14:00",
                                   "end_date=9999-12-31T23:59:59-14:00"])
def test_audit_dates_past_the_calendar_are_validation_errors(adam, query):
    error_of(adam.client.get(f"/api/v2.1/audit?{query}"), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("query", ["submitted_after=0001-01-01T00:00:00%2B14:00",
                                   "submitted_before=9999-12-31T23:59:59-14:00"])
def test_job_filter_date_times_outside_utc_are_validation_errors(alice, query):
    error_of(alice.client.get(f"{JOBS}?{query}"), 400, "VALIDATION_ERROR")


def test_a_tag_key_of_digits_is_a_key_not_an_array_index(alice):
    body = job_body()
    body["ledger"]["tags"] = {"5": "x", "10000000000000000000": "y"}
    job_id = alice.client.post(JOBS, body, format="json").json()["job_id"]
    for query in ("tag=5=x", "tag=5", "tag=10000000000000000000=y", "tag=10000000000000000000"):
        response = alice.client.get(f"{JOBS}?{query}")
        assert response.status_code == 200, response.content
        assert [job["job_id"] for job in response.json()["results"]] == [job_id], query
    assert alice.client.get(f"{JOBS}?tag=-1").json()["results"] == []


def test_a_value_the_database_refuses_is_a_validation_error_not_a_500(transactional_db):
    """The safety net behind the boundary's checks: a DataError (here a real one, from the
    database) is the request's fault."""
    from django.db import DataError

    from qcos.api.errors import json_response_for

    if connection.vendor != "postgresql":
        pytest.skip("SQLite stores any integer in any column")
    with pytest.raises(DataError) as refused, connection.cursor() as cursor:
        cursor.execute("SELECT CAST(%s AS smallint)", [10**6])
    error_of(json_response_for(refused.value), 400, "VALIDATION_ERROR")


# --- Headers and URLs ---------------------------------------------------------------------------

def test_a_10_kb_header_is_431_in_the_one_shape(alice):
    error = error_of(alice.client.get(JOBS, HTTP_X_PADDING="a" * 10_240), 431, "HEADERS_TOO_LARGE")
    assert error["details"] == {"header": "X-Padding", "max_bytes": MAX_HEADER_FIELD_BYTES}


def test_too_many_headers_or_too_many_bytes_of_them_are_431(alice):
    many = {f"HTTP_X_H{i}": "v" for i in range(120)}
    error_of(alice.client.get(JOBS, **many), 431, "HEADERS_TOO_LARGE")
    heavy = {f"HTTP_X_H{i}": "v" * 4000 for i in range(10)}
    error_of(alice.client.get(JOBS, **heavy), 431, "HEADERS_TOO_LARGE")


def test_a_url_past_the_limit_is_414(alice):
    error_of(alice.client.get(f"{JOBS}?project={'a' * MAX_URL_BYTES}"), 414, "URI_TOO_LONG")


def test_too_many_query_fields_are_a_400(alice):
    error_of(alice.client.get(JOBS + "?" + "&".join(["tag=a"] * 1001)), 400, "TOO_MANY_FIELDS")


# --- Django's own errors, in the one shape --------------------------------------------------------

@pytest.mark.parametrize("debug", [False, True])
def test_a_disallowed_host_is_json(alice, settings, debug):
    settings.DEBUG = debug
    response = alice.client.post(JOBS, job_body(), format="json", HTTP_HOST="evil.example")
    assert response.status_code == 400 and response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] in {"DISALLOWED_HOST", "MALFORMED_REQUEST"}


def test_a_csrf_failure_on_a_plain_view_is_json(db):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    error_of(client.post("/api/v2.1/no-such-endpoint", {"a": 1}), 403, "CSRF_FAILED")
    error_of(client.post("/bench/nope", {"a": 1}), 403, "CSRF_FAILED")
    admin = client.post("/admin/login/", {"username": "x", "password": "y"})  # the admin keeps its page
    assert admin.status_code == 403 and admin["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(("exception", "status", "code"), [
    ("DisallowedHost", 400, "DISALLOWED_HOST"),
    ("TooManyFieldsSent", 400, "TOO_MANY_FIELDS"),
    ("RequestDataTooBig", 413, "PAYLOAD_TOO_LARGE"),
    ("SuspiciousFileOperation", 400, "MALFORMED_REQUEST"),
    ("BadRequest", 400, "MALFORMED_REQUEST"),
])
def test_djangos_400_handler_answers_each_suspicious_operation_in_the_one_shape(exception, status, code):
    from django.core import exceptions
    from django.test import RequestFactory

    from qcos.api.errors import bad_request_view, permission_denied_view

    request = RequestFactory().get("/api/v2.1/jobs")
    error_of(bad_request_view(request, getattr(exceptions, exception)("why")), status, code)
    error_of(permission_denied_view(request, exceptions.PermissionDenied()), 403, "PERMISSION_DENIED")


def test_method_not_allowed_and_unsupported_media_type_are_json(alice):
    error_of(alice.client.delete(JOBS), 405, "METHOD_NOT_ALLOWED")
    error_of(alice.client.post(JOBS, "a=1", content_type="application/x-www-form-urlencoded"), 415,
             "UNSUPPORTED_MEDIA_TYPE")


# --- Transient server faults: 503 with Retry-After, in DRF and plain Django views alike ----------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def database_away(transactional_db):
    """The database unreachable for real: the connection pointed at a loopback port nothing
    listens on. Calling the fixture's value brings it back (teardown does too).

    PostgreSQL only: the SQLite test database lives in memory and cannot be taken away; its
    transient fault ("database is locked") is covered by test_a_database_error_that_would_recur.
    tests/integration/test_db_restart.py restarts the connection path of a real server."""
    if connection.vendor != "postgresql":
        pytest.skip("an in-memory SQLite test database cannot be made unreachable")
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(free_port()))

    def restore() -> None:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)

    yield restore
    restore()


def _retry_after(response) -> int:
    return int(response["Retry-After"])


def test_a_submit_while_the_database_is_away_is_503_with_retry_after_and_leaves_nothing(alice, database_away):
    alice.client.raise_request_exception = False
    response = alice.client.post(JOBS, job_body(), format="json", HTTP_IDEMPOTENCY_KEY="outage-1")
    error = error_of(response, 503, "SERVICE_UNAVAILABLE")
    assert _retry_after(response) >= 1 and error["details"]["retry_after_seconds"] == _retry_after(response)
    assert "127.0.0.1" not in error["message"] and "refused" not in error["message"]  # no driver detail
    database_away()
    assert nothing_submitted()
    retried = alice.client.post(JOBS, job_body(), format="json", HTTP_IDEMPOTENCY_KEY="outage-1")
    assert retried.status_code == 202 and QuantumJob.objects.count() == 1


def test_reads_while_the_database_is_away_are_503_too(adam, database_away):
    adam.client.raise_request_exception = False
    for path in (JOBS, "/api/v2.1/audit", "/api/v2.1/budgets", "/api/v2/bench/workloads"):
        error_of(adam.client.get(path), 503, "SERVICE_UNAVAILABLE")


def test_a_plain_django_view_while_the_database_is_away_is_503(database_away, client):
    client.raise_request_exception = False
    client.cookies["sessionid"] = "a" * 32  # the admin loads the session: a query
    response = client.get("/admin/")
    error_of(response, 503, "SERVICE_UNAVAILABLE")
    assert _retry_after(response) >= 1


def test_out_of_memory_in_a_drf_view_is_503_and_the_submit_leaves_nothing(alice, monkeypatch):
    from finops import estimates, reservations
    from ledger.models import AuditEntry

    def exhausted(*args, **kwargs):
        raise MemoryError

    alice.client.raise_request_exception = False
    monkeypatch.setattr(estimates, "price_estimate", exhausted)
    response = alice.client.post("/api/v2.1/estimates", job_body(), format="json")
    error_of(response, 503, "SERVICE_UNAVAILABLE")
    # Inside the submit's transaction, after the job and its audit entry are written: all rolled back.
    monkeypatch.undo()
    monkeypatch.setattr(reservations, "budget_admit", exhausted)
    response = alice.client.post(JOBS, job_body(), format="json", HTTP_IDEMPOTENCY_KEY="oom-1")
    error_of(response, 503, "SERVICE_UNAVAILABLE")
    assert _retry_after(response) >= 1
    assert nothing_submitted() and not AuditEntry.objects.filter(action="JOB_SUBMITTED").exists()


def test_out_of_memory_and_other_failures_in_a_plain_view(client, monkeypatch):
    import qcos.urls

    client.raise_request_exception = False

    def raising(exc):
        def response(*args, **kwargs):
            raise exc
        return response

    monkeypatch.setattr(qcos.urls, "JsonResponse", raising(MemoryError()))
    error_of(client.get("/healthz"), 503, "SERVICE_UNAVAILABLE")
    monkeypatch.setattr(qcos.urls, "JsonResponse", raising(RuntimeError("bug")))
    error_of(client.get("/healthz"), 500, "INTERNAL_ERROR")


def test_a_server_error_under_the_api_is_json_even_with_debug_on(alice, monkeypatch, settings):
    """DEBUG (the embedded default) would answer Django's HTML debug page: under /api/ and /bench/
    the answer is rewritten into the one shape (the traceback is still logged)."""
    from finops import estimates

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    settings.DEBUG = True
    monkeypatch.setattr(estimates, "price_estimate", broken)
    alice.client.raise_request_exception = False
    error = error_of(alice.client.post("/api/v2.1/estimates", job_body(), format="json"), 500, "INTERNAL_ERROR")
    assert "a bug" not in error["message"]


def test_the_500_handler_tells_a_transient_fault_apart():
    from django.db import OperationalError
    from django.test import RequestFactory

    from qcos.api.errors import server_error_view

    request = RequestFactory().get("/api/v2.1/jobs")
    try:
        raise OperationalError("connection to server failed: Connection refused")
    except OperationalError:
        error_of(server_error_view(request), 503, "SERVICE_UNAVAILABLE")
    try:
        raise KeyError("bug")
    except KeyError:
        error_of(server_error_view(request), 500, "INTERNAL_ERROR")


def test_a_database_error_that_would_recur_is_not_called_transient():
    import sqlite3

    from django.db import OperationalError

    from qcos.api.errors import database_unavailable

    def wrapped(cause):
        try:
            raise OperationalError(str(cause)) from cause
        except OperationalError as exc:
            return exc

    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorname = "SQLITE_BUSY"
    bad_path = sqlite3.OperationalError("bad JSON path")
    bad_path.sqlite_errorname = "SQLITE_ERROR"
    assert database_unavailable(wrapped(busy)) and not database_unavailable(wrapped(bad_path))
    psycopg = pytest.importorskip("psycopg")
    assert database_unavailable(wrapped(psycopg.errors.AdminShutdown("terminating connection")))
    assert database_unavailable(wrapped(psycopg.errors.SerializationFailure("could not serialize")))
    assert not database_unavailable(wrapped(psycopg.errors.ProgramLimitExceeded("index row too big")))
    assert not database_unavailable(ValueError("not a database error"))


# --- A real HTTP server: the live test server and gunicorn ----------------------------------------

def http_request(base: str, method: str, path: str, headers: dict | None = None, body: bytes = b"",
                 chunks: list[bytes] | None = None) -> tuple[int, dict, bytes]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if chunks is not None:
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for chunk in chunks:
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            conn.send(b"0\r\n\r\n")
        else:
            if body and not any(name.lower() == "content-length" for name in headers or {}):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def shaped(result: tuple[int, dict, bytes], status: int, code: str) -> dict:
    got_status, headers, body = result
    assert got_status == status, result
    assert headers["content-type"].startswith("application/json"), result
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message", "details"} and error["code"] == code, error
    return error


def test_size_and_header_limits_over_a_real_socket_on_the_live_server(live_server, alice):
    base = live_server.url
    shaped(http_request(base, "GET", JOBS, {"X-API-Key": alice.key, "X-Padding": "a" * 10_240}), 431,
           "HEADERS_TOO_LARGE")
    # 60 MB announced, five bytes sent: the answer comes before the body is read.
    shaped(http_request(base, "POST", JOBS, {"X-API-Key": alice.key, "Content-Type": "application/json",
                                             "Content-Length": str(60 * 2**20)}, b'{"a":'), 413, "PAYLOAD_TOO_LARGE")
    shaped(http_request(base, "GET", f"{JOBS}?project={'a' * 9000}", {"X-API-Key": alice.key}), 414, "URI_TOO_LONG")
    shaped(http_request(base, "POST", JOBS, {"X-API-Key": alice.key, "Content-Type": "application/json"},
                        b"[" * 2000 + b"]" * 2000), 400, "JSON_TOO_DEEP")
    status, _, body = http_request(base, "POST", JOBS, {"X-API-Key": alice.key, "Content-Type": "application/json"},
                                   json.dumps(job_body()).encode())
    assert status == 202, body


def _ended_with_this_process() -> None:
    import ctypes
    import signal

    os.setsid()
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@pytest.fixture(scope="module")
def gunicorn(django_db_setup, django_db_blocker, tmp_path_factory):
    """gunicorn serving qcos.wsgi from the project root, so that gunicorn.conf.py applies, with a
    1 MiB body limit; on the test database when that is PostgreSQL (shared between processes)."""
    port = free_port()
    from tests.integration.conftest import database_url

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            url = database_url()
        else:  # the limits answer before any query: an empty database file will do
            url = f"sqlite:///{tmp_path_factory.mktemp('gunicorn')}/unmigrated.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    env.update(DATABASE_URL=url, DJANGO_SETTINGS_MODULE="tests.settings", PYTHONPATH=str(ROOT),
               QCOS_MAX_BODY_BYTES=str(2**20), CONN_MAX_AGE="0")
    log = tmp_path_factory.mktemp("gunicorn-log") / "gunicorn.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "gunicorn", "qcos.wsgi", "--bind", f"127.0.0.1:{port}",
                                    "--workers", "1"], cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                   preexec_fn=_ended_with_this_process)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if http_request(base, "GET", "/healthz")[0] == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        raise AssertionError(f"gunicorn did not start: {log.read_text()}")
    yield base
    process.terminate()
    process.wait(20)


def test_gunicorn_answers_oversized_headers_in_json_both_below_and_past_its_own_limits(gunicorn):
    # Past Django's 8 KiB per field, within gunicorn's 16 KiB: Django's answer, naming the header.
    error = shaped(http_request(gunicorn, "GET", JOBS, {"X-Padding": "a" * 10_240}), 431, "HEADERS_TOO_LARGE")
    assert error["details"]["header"] == "X-Padding"
    # Past gunicorn's own limits: gunicorn's answer, in the same shape (gunicorn.conf.py).
    shaped(http_request(gunicorn, "GET", JOBS, {"X-Padding": "a" * 20_000}), 431, "HEADERS_TOO_LARGE")
    shaped(http_request(gunicorn, "GET", JOBS, {f"X-H{i}": "v" for i in range(130)}), 431, "HEADERS_TOO_LARGE")
    shaped(http_request(gunicorn, "GET", f"{JOBS}?project={'a' * 9000}"), 414, "URI_TOO_LONG")
    host, port = gunicorn.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /api/v2.1/jobs HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n")
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"Content-Type: application/json" in head, answer
    assert json.loads(body)["error"]["code"] == "MALFORMED_REQUEST"


def test_gunicorn_refuses_large_bodies_before_reading_them_chunked_or_not(gunicorn):
    headers = {"Content-Type": "application/json"}
    started = time.perf_counter()
    error = shaped(http_request(gunicorn, "POST", JOBS, {**headers, "Content-Length": str(60 * 2**20)}, b'{"a":'),
                   413, "PAYLOAD_TOO_LARGE")
    assert error["details"] == {"max_bytes": 2**20} and time.perf_counter() - started < 5
    shaped(http_request(gunicorn, "POST", JOBS, headers, chunks=[b" " * 2**16] * 17), 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.django_db(transaction=True)
def test_gunicorn_reads_a_chunked_body_within_the_limit(gunicorn, alice):
    if connection.vendor != "postgresql":
        pytest.skip("the gunicorn process shares the test database only on PostgreSQL")
    headers = {"Content-Type": "application/json", "X-API-Key": alice.key}
    body = json.dumps({"circuit": BELL_QASM3, "backend": "simulator", "shots": 100}).encode()
    status, _, answer = http_request(gunicorn, "POST", "/api/v2.1/estimates", headers,
                                     chunks=[body[:10], body[10:50], body[50:]])
    assert status == 200, answer
    assert json.loads(answer)["backend"] == "simulator"
    shaped(http_request(gunicorn, "POST", "/api/v2.1/estimates", headers, chunks=[b"[" * 100, b"]" * 100]), 400,
           "JSON_TOO_DEEP")

