"""The v2.1 job endpoints through the test client (eager execution: the job runs on commit)."""

import pytest

from qcos.jobs.models import IdempotencyRecord, JobResult, QuantumJob
from tests.factories import BELL_QASM2, job_body

pytestmark = pytest.mark.django_db(transaction=True)


def submit(actor, body=None, **headers):
    return actor.client.post("/api/v2.1/jobs", body or job_body(), format="json", **headers)


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert set(response.json()) == {"error"}
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    return response.json()["error"]


def test_submit_answers_202_and_the_job_completes_with_bell_counts(alice):
    response = submit(alice)
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    assert job_id.startswith("job-") and response["Location"].endswith(job_id)
    job = alice.client.get(f"/api/v2.1/jobs/{job_id}").json()
    assert job["status"] == "COMPLETED"
    assert set(job["counts"]) <= {"00", "11"} and sum(job["counts"].values()) == 1024
    assert job["circuit_hash"].startswith("sha256:") and len(job["circuit_hash"]) == 71
    assert job["tags"] == {"experiment": "bell"} and job["project"] == "quantum-ml"
    assert job["attempts"] == 1 and job["tenant_id"] == "research-alpha" and job["warning"] is None
    timings = job["timings"]
    assert timings["execution_ms"] > 0 and timings["execution_ms_source"].startswith("aer")
    assert timings["total_ms"] >= timings["queue_ms"] >= 0


def test_bearer_header_authenticates_too(alice):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {alice.key}")
    assert client.post("/api/v2.1/jobs", job_body(BELL_QASM2), format="json").status_code == 202


def test_tenant_and_project_default_to_the_keys_tenant_and_default_project(alice):
    response = submit(alice, {"circuit": BELL_QASM2, "backend": "simulator", "shots": 10})
    assert response.status_code == 202
    assert response.json()["project"] == "default" and response.json()["tenant_id"] == "research-alpha"


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"circuit": "OPENQASM 3.0;\nqubit[2] q;\ncx q[0], q[1;\n"}, 400, "INVALID_CIRCUIT"),
        ({"circuit": ""}, 400, "INVALID_CIRCUIT"),
        ({"circuit": "OPENQASM 3.0; qubit q; h q;"}, 400, "INVALID_CIRCUIT"),
        ({"backend": "ibm_nowhere"}, 400, "UNKNOWN_BACKEND"),
        ({"shots": 0}, 400, "INVALID_SHOTS"),
        ({"shots": -5}, 400, "INVALID_SHOTS"),
        ({"shots": 100_001}, 400, "INVALID_SHOTS"),
        ({"shots": "many"}, 400, "VALIDATION_ERROR"),
        ({"circuit": 5}, 400, "VALIDATION_ERROR"),  # not coerced to the text "5" (a syntax error)
        ({"circuit": ["OPENQASM 2.0;"]}, 400, "VALIDATION_ERROR"),
        ({"priority": "yesterday"}, 400, "VALIDATION_ERROR"),
        ({"ledger": {"tenant_id": "research-beta"}}, 403, "TENANT_MISMATCH"),
        ({"ledger": {"tenant_id": "no-such-tenant"}}, 403, "TENANT_MISMATCH"),
        ({"ledger": {"project": "nope"}}, 400, "UNKNOWN_PROJECT"),
        ({"circuit": "OPENQASM 3.0; qubit[40] q; rx(0.3) q[0]; bit[40] c; c = measure q;"}, 400, "CIRCUIT_TOO_LARGE"),
        ({"circuit": "OPENQASM 3.0; qubit q;" + " x q;" * 60_000}, 400, "CIRCUIT_TOO_LARGE"),
    ],
)
def test_bad_input_gets_a_stable_code_and_persists_nothing(alice, carol, overrides, status, code):
    body = job_body(**overrides) if "ledger" not in overrides else {**job_body(), "ledger": overrides["ledger"]}
    error = assert_error(submit(alice, body), status, code)
    assert QuantumJob.objects.count() == 0 and IdempotencyRecord.objects.count() == 0
    if code == "INVALID_CIRCUIT" and "[1;" in overrides.get("circuit", ""):
        assert error["details"] == {"line": 3, "column": 13}


def test_unparseable_json_is_a_clean_400(alice):
    response = alice.client.post("/api/v2.1/jobs", "{not json", content_type="application/json")
    assert_error(response, 400, "MALFORMED_REQUEST")


def test_a_clifford_circuit_may_be_far_wider_than_a_state_vector_one(alice):
    wide = "OPENQASM 3.0; qubit[100] q; bit[100] c; h q[0];" + "".join(
        f" cx q[{i}], q[{i + 1}];" for i in range(99)
    ) + " c = measure q;"
    response = submit(alice, job_body(circuit=wide, shots=100))
    assert response.status_code == 202
    job = alice.client.get(f"/api/v2.1/jobs/{response.json()['job_id']}").json()
    assert job["status"] == "COMPLETED" and set(job["counts"]) == {"0" * 100, "1" * 100}


def test_viewer_cannot_submit_and_nothing_is_written(vera):
    assert_error(submit(vera), 403, "PERMISSION_DENIED")
    assert QuantumJob.objects.count() == 0


def test_no_key_bad_key_revoked_key_and_query_string_key_are_401(alice):
    from rest_framework.test import APIClient

    from qcos.tenancy.models import ApiKey
    from qcos.tenancy.services import api_key_revoke

    anonymous = APIClient()
    assert_error(anonymous.get("/api/v2.1/jobs"), 401, "UNAUTHENTICATED")
    anonymous.credentials(HTTP_X_API_KEY=alice.key[:-2] + "xx")
    assert_error(anonymous.get("/api/v2.1/jobs"), 401, "UNAUTHENTICATED")
    assert_error(APIClient().get(f"/api/v2.1/jobs?api_key={alice.key}"), 401, "UNAUTHENTICATED")
    # Both headers: the same key is fine; two different keys are refused, whichever is valid.
    both = APIClient()
    both.credentials(HTTP_X_API_KEY=alice.key, HTTP_AUTHORIZATION=f"Bearer {alice.key}")
    assert both.get("/api/v2.1/jobs").status_code == 200
    both.credentials(HTTP_X_API_KEY=alice.key, HTTP_AUTHORIZATION=f"Bearer {alice.key[:-2]}xx")
    assert "two different API keys" in assert_error(both.get("/api/v2.1/jobs"), 401, "UNAUTHENTICATED")["message"]
    api_key_revoke(api_key=ApiKey.objects.get(user=alice.user))
    assert_error(alice.client.get("/api/v2.1/jobs"), 401, "UNAUTHENTICATED")


def test_idempotency_key_replays_the_first_response_and_refuses_another_body(alice):
    first = submit(alice, HTTP_IDEMPOTENCY_KEY="k-1")
    again = submit(alice, HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert QuantumJob.objects.count() == 1 and JobResult.objects.count() == 1
    conflict = submit(alice, job_body(shots=2048), HTTP_IDEMPOTENCY_KEY="k-1")
    assert_error(conflict, 409, "IDEMPOTENCY_CONFLICT")
    assert QuantumJob.objects.count() == 1
    assert submit(alice, job_body(shots=2048), HTTP_IDEMPOTENCY_KEY="k-2").status_code == 202
    assert QuantumJob.objects.count() == 2


def test_list_filters_and_paginates(alice):
    submit(alice, job_body(ledger={"tenant_id": "research-alpha", "project": "quantum-ml", "tags": {"exp": "a"}}))
    submit(alice, job_body(ledger={"tags": {"exp": "b", "grant": "nsf"}}))
    submit(alice, job_body(BELL_QASM2, shots=0))  # refused: not listed
    listing = alice.client.get("/api/v2.1/jobs").json()
    assert listing["count"] == 2 and len(listing["results"]) == 2
    assert alice.client.get("/api/v2.1/jobs?tag=exp=a").json()["count"] == 1
    assert alice.client.get("/api/v2.1/jobs?tag=grant").json()["count"] == 1
    assert alice.client.get("/api/v2.1/jobs?tag=exp&tag=grant=nsf").json()["count"] == 1
    assert alice.client.get("/api/v2.1/jobs?project=default").json()["count"] == 1
    assert alice.client.get("/api/v2.1/jobs?status=COMPLETED&backend=simulator").json()["count"] == 2
    assert alice.client.get("/api/v2.1/jobs?status=QUEUED").json()["count"] == 0
    assert alice.client.get("/api/v2.1/jobs?submitted_after=2999-01-01T00:00:00Z").json()["count"] == 0
    assert alice.client.get("/api/v2.1/jobs?submitted_before=2999-01-01T00:00:00Z").json()["count"] == 2
    page = alice.client.get("/api/v2.1/jobs?limit=1").json()
    assert len(page["results"]) == 1 and page["next"]
    assert alice.client.get("/api/v2.1/jobs?limit=100000").json()["count"] == 2  # capped at 500, not refused
    error = assert_error(alice.client.get("/api/v2.1/jobs?status=BOGUS"), 400, "VALIDATION_ERROR")
    assert error["message"].startswith("invalid request: status: ")  # names the parameter, not "the body"
    assert_error(alice.client.get("/api/v2.1/jobs?submitted_after=yesterday"), 400, "VALIDATION_ERROR")
    for bad in ("limit=0", "limit=-1", "limit=ten", "offset=-1", "offset=abc"):
        error = assert_error(alice.client.get(f"/api/v2.1/jobs?{bad}"), 400, "VALIDATION_ERROR")
        assert bad.split("=")[0] in error["details"]["fields"], bad


def test_cancel_a_queued_job_and_refuse_a_finished_one(alice, adam, vera, monkeypatch):
    completed = submit(alice).json()["job_id"]
    assert_error(alice.client.post(f"/api/v2.1/jobs/{completed}/cancel"), 409, "JOB_NOT_CANCELLABLE")
    monkeypatch.setattr("qcos.jobs.services._enqueue", lost_message)
    queued = submit(alice).json()["job_id"]
    assert alice.client.get(f"/api/v2.1/jobs/{queued}").json()["status"] == "QUEUED"
    assert_error(vera.client.post(f"/api/v2.1/jobs/{queued}/cancel"), 403, "PERMISSION_DENIED")
    response = adam.client.post(f"/api/v2.1/jobs/{queued}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "CANCELLED"
    assert_error(alice.client.post(f"/api/v2.1/jobs/{queued}/cancel"), 409, "JOB_NOT_CANCELLABLE")


def test_the_submitter_may_cancel_their_own_job(alice, monkeypatch):
    monkeypatch.setattr("qcos.jobs.services._enqueue", lost_message)
    queued = submit(alice).json()["job_id"]
    assert alice.client.post(f"/api/v2.1/jobs/{queued}/cancel").json()["status"] == "CANCELLED"


def lost_message(job_id, queue):
    """The wake-up message never reaches a worker (the broker was down): the job stays QUEUED."""


def test_unknown_job_is_not_found(alice):
    assert_error(alice.client.get("/api/v2.1/jobs/job-nope"), 404, "NOT_FOUND")
    assert_error(alice.client.post("/api/v2.1/jobs/job-nope/cancel"), 404, "NOT_FOUND")


def test_openapi_schema_and_docs_page(client):
    schema = client.get("/api/schema.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v2.1/jobs", "/api/v2.1/jobs/{job_id}", "/api/v2.1/jobs/{job_id}/cancel",
            "/api/v2.1/jobs/{job_id}/evidence", "/api/v2.1/audit", "/api/v2.1/ledger/keys",
            "/api/v2.1/ledger/bundles/verify", "/api/v2.1/registry/checkpoint"} <= set(paths)
    assert client.get("/api/schema").status_code == 200  # YAML
    assert "Idempotency-Key" in str(paths["/api/v2.1/jobs"]["post"]["parameters"])
    # What charges a budget documents its 402; an estimate documents its error codes.
    assert "BUDGET_EXCEEDED" in paths["/api/v2.1/jobs"]["post"]["responses"]["402"]["description"]
    assert "402" in paths["/api/v2/bench/run"]["post"]["responses"]
    assert "INVALID_SHOTS" in paths["/api/v2.1/estimates"]["post"]["responses"]["400"]["description"]
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/api/v2.1/nope", "/api/v2.1/jobs/", "/api/v2/bench/workloads/", "/bench/nope"])
def test_an_unknown_api_path_answers_the_json_error_shape_whatever_debug_is(alice, settings, debug, path):
    """The embedded default runs with DEBUG on: an API client still gets JSON, never Django's
    HTML debug page (which would also list every URL pattern)."""
    settings.DEBUG = debug
    for method in ("get", "post"):
        response = getattr(alice.client, method)(path)
        assert response.status_code == 404 and response["Content-Type"] == "application/json"
        assert response.json()["error"]["code"] == "NOT_FOUND"
