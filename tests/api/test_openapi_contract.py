"""What the served OpenAPI schema promises, checked directly: either key header, the one error
shape, the limits it states; and the server answers that make those promises true."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.factories import BELL_QASM3, job_body

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema.json")
    assert response.status_code == 200
    return response.json()


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code, response.json()
    return response.json()["error"]


def test_either_key_header_is_a_security_requirement_of_its_own(schema):
    """One requirement object listing both schemes would mean both headers at once, which a
    generated client then sends, and the server refuses when they differ."""
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {**schemes["ApiKey"], "type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["Bearer"] == {**schemes["Bearer"], "type": "http", "scheme": "bearer"}
    ops = dict(operations(schema))
    assert len(ops) >= 30
    for label, operation in ops.items():
        assert operation["security"] == [{"ApiKey": []}, {"Bearer": []}], label


def test_the_server_accepts_either_header_and_refuses_two_different_keys(alice, carol):
    by_header, by_bearer, both, mixed = APIClient(), APIClient(), APIClient(), APIClient()
    by_header.credentials(HTTP_X_API_KEY=alice.key)
    by_bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {alice.key}")
    both.credentials(HTTP_X_API_KEY=alice.key, HTTP_AUTHORIZATION=f"Bearer {alice.key}")
    mixed.credentials(HTTP_X_API_KEY=alice.key, HTTP_AUTHORIZATION=f"Bearer {carol.key}")
    for client in (by_header, by_bearer, both):
        assert client.get("/api/v2.1/jobs").status_code == 200
    assert_error(mixed.get("/api/v2.1/jobs"), 401, "UNAUTHENTICATED")
    assert_error(APIClient().get("/api/v2.1/jobs"), 401, "UNAUTHENTICATED")


def test_every_error_answer_is_documented_in_the_one_error_shape(schema):
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert error["properties"]["error"]["required"] == ["code", "message", "details"]
    for label, operation in operations(schema):
        responses = operation["responses"]
        assert {"400", "401", "406", "414", "431", "503"} <= responses.keys(), label
        assert "Retry-After" in responses["503"]["headers"], label
        if "requestBody" in operation:
            assert {"413", "415"} <= responses.keys(), label
            assert "MALFORMED_REQUEST" in responses["400"]["description"], label
        for status, response in responses.items():
            if status[0] in "45":
                error_json = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                assert response["content"] == error_json, (label, status)


def test_the_schema_states_the_limits_and_media_types(schema):
    paths = schema["paths"]
    jobs = {p["name"]: p["schema"] for p in paths["/api/v2.1/jobs"]["get"]["parameters"]}
    assert jobs["limit"]["minimum"] == 1 and jobs["offset"]["minimum"] == 0
    audit = {p["name"]: p["schema"] for p in paths["/api/v2.1/audit"]["get"]["parameters"]}
    assert (audit["limit"]["minimum"], audit["limit"]["maximum"]) == (1, 1000)
    assert {"format": "date"} in audit["start_date"]["anyOf"]
    submit = schema["components"]["schemas"]["JobSubmitInputRequest"]["properties"]
    assert (submit["shots"]["minimum"], submit["shots"]["maximum"]) == (1, 100_000)
    assert "application/zip" in paths["/api/v2.1/jobs/{job_id}/evidence"]["get"]["responses"]["200"]["content"]
    assert list(paths["/api/v2.1/registry/checkpoint"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    assert "text/csv" in paths["/api/v2.1/reports/{report_id}/download"]["get"]["responses"]["200"]["content"]
    assert "image/svg+xml" in paths["/api/v2/bench/compare"]["get"]["responses"]["200"]["content"]
    idempotency = next(p for p in paths["/api/v2.1/jobs"]["post"]["parameters"] if p["name"] == "Idempotency-Key")
    assert idempotency["schema"]["maxLength"] == 255


@pytest.mark.parametrize("path", ["/api/v2.1/jobs/job-x/evidence", "/api/v2/bench/compare",
                                  "/api/v2/bench/report/00000000-0000-0000-0000-000000000000/download"])
def test_an_unknown_format_is_refused_not_taken_for_the_default(alice, path):
    error = assert_error(alice.client.get(path, {"format": "pdf", "ids": "x"}), 400, "VALIDATION_ERROR")
    assert "format" in error["message"]


@pytest.mark.parametrize("path", ["/api/v2.1/jobs", "/api/v2/bench/run"])
def test_an_idempotency_key_longer_than_its_column_is_a_validation_error(alice, path):
    body = job_body() if path.endswith("jobs") else {"backend_id": "simulator", "workloads": ["bell_state"]}
    response = alice.client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="k" * 256)
    assert "Idempotency-Key" in assert_error(response, 400, "VALIDATION_ERROR")["message"]


@pytest.mark.parametrize("query", [{"end_date": "9999-12-31"}, {"start_date": "0001-01-01T00:00:00+01:00"},
                                   {"end_date": "9999-12-31T23:59:59-23:00"}, {"start_date": ""},
                                   {"cursor": str(2**63)}])
def test_audit_dates_out_of_range_or_blank_are_validation_errors(adam, query):
    assert_error(adam.client.get("/api/v2.1/audit", query), 400, "VALIDATION_ERROR")


def test_audit_last_representable_day_as_a_start_is_fine(adam):
    assert adam.client.get("/api/v2.1/audit", {"start_date": "9999-12-31"}).status_code == 200


@pytest.mark.parametrize("override", [{"shots": "10"}, {"shots": 10.0}, {"shots": True},
                                      {"ledger": {"enabled": 0}}, {"ledger": {"tags": {"n": 5}}},
                                      {"ledger": {"project": 7}}, {"backend": 1}])
def test_json_types_are_exact(alice, override):
    response = alice.client.post("/api/v2.1/jobs", job_body(BELL_QASM3, **override), format="json")
    assert_error(response, 400, "VALIDATION_ERROR")


def test_every_tag_filter_counts_and_an_empty_one_requires_nothing(alice, django_capture_on_commit_callbacks):
    """As the schema says; a trailing empty ``tag`` used to switch every tag filter off, a
    leading one to refuse the request."""
    for tags in ({"exp": "a"}, {"exp": "b"}):
        with django_capture_on_commit_callbacks(execute=True):
            response = alice.client.post("/api/v2.1/jobs", job_body(ledger={"tags": tags}), format="json")
            assert response.status_code == 202
    for query in ("tag=exp=a&tag=", "tag=&tag=exp=a", "tag=exp=a"):
        assert alice.client.get(f"/api/v2.1/jobs?{query}").json()["count"] == 1, query
    assert alice.client.get("/api/v2.1/jobs?tag=").json()["count"] == 2
    assert_error(alice.client.get("/api/v2.1/jobs?tag==a"), 400, "VALIDATION_ERROR")


def test_an_accept_header_naming_a_documented_file_type_is_satisfied(schema, adam, django_capture_on_commit_callbacks):
    """Generated clients send Accept with the media type the schema documents: a zip, a signed
    note, a CSV must not be refused with 406. Errors still answer JSON."""
    from ledger.registry import sequence_now

    with django_capture_on_commit_callbacks(execute=True):
        job_id = adam.client.post("/api/v2.1/jobs", job_body(), format="json").json()["job_id"]
        report = adam.client.post("/api/v2.1/reports", {"start_date": "2026-01-01", "end_date": "2026-01-01"},
                                  format="json").json()
    sequence_now()
    for path, media_type in ((f"/api/v2.1/jobs/{job_id}/evidence?format=zip", "application/zip"),
                             ("/api/v2.1/registry/checkpoint", "text/plain"),
                             (f"/api/v2.1/reports/{report['id']}/download", "text/csv")):
        response = adam.client.get(path, HTTP_ACCEPT=media_type)
        assert response.status_code == 200, (path, response.content)
        assert response["Content-Type"].startswith(media_type)
        template = path.split("?")[0].replace(job_id, "{job_id}").replace(report["id"], "{report_id}")
        assert media_type in schema["paths"][template]["get"]["responses"]["200"]["content"]
    missing = adam.client.get("/api/v2.1/jobs/job-nope/evidence?format=zip", HTTP_ACCEPT="application/zip")
    assert missing.status_code == 404 and missing["Content-Type"] == "application/json"
    assert_error(adam.client.get("/api/v2.1/registry/checkpoint", HTTP_ACCEPT="image/png"), 406, "NOT_ACCEPTABLE")
    svg = adam.client.get("/api/v2/bench/compare?ids=x&format=svg", HTTP_ACCEPT="image/svg+xml")
    assert_error(svg, 404, "BENCHMARK_NOT_FOUND")
