"""The OpenAPI schema says what the server does: schemathesis, in-process.

The schema is the one the server serves (``GET /api/schema.json`` through the WSGI app), so a
change to a view or its annotations is tested as clients see it. For every operation schemathesis
generates a bounded, derandomized set of requests (valid ones and ones the schema forbids),
authenticated with a real key of a seeded tenant, alternating ``X-API-Key`` and ``Authorization:
Bearer``; each answer must be documented (status, media type, headers, body), no answer may be a
server error, a request the schema forbids must be refused, and a request without a key must be.

Re-run the list of failures (one test per operation):
    scripts/schema_check.sh            # PostgreSQL and SQLite, with the failing operations named
    .venv/bin/python -m pytest tests/api/test_openapi_schemathesis.py -k 'POST and jobs'
"""

from __future__ import annotations

import datetime
import itertools
import os

import hypothesis
import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import BELL_QASM3

# Per operation: explicit examples, the coverage phase's boundary cases, then this many generated.
MAX_EXAMPLES = int(os.environ.get("QCOS_SCHEMA_MAX_EXAMPLES", "20"))
SEED = 20240601


class _TestWSGIHandler(WSGIHandler):
    """Django's WSGI app as a server runs it, except that it leaves the test's connection open:
    a request's end would otherwise close it, and with it the test's transaction (Django's test
    client does the same)."""


schema = schemathesis.openapi.from_wsgi("/api/schema.json", _TestWSGIHandler())
schema.config.generation.update(
    max_examples=MAX_EXAMPLES, deterministic=True, database="none",
    # The key comes from the seeded tenant, not from generated security parameters.
    with_security_parameters=False,
)
schema.config.seed = SEED


# Ids of the seeded objects, by path parameter name: a generated id would only ever be a 404.
_seeded: dict[str, str] = {}


@pytest.fixture
def api_key(request, db, django_capture_on_commit_callbacks):
    """A seeded tenant with real data behind the ids: an admin's key, a completed job with its
    evidence bundle registered under a signed checkpoint and, for the operations that read them, a
    chargeback report and a completed benchmark run."""
    from bench.models import BenchmarkRun
    from bench.services import benchmark_submit
    from finops import report_services
    from ledger.models import BundleRecord
    from ledger.registry import sequence_now
    from qcos.jobs import services as jobs
    from qcos.tenancy import services
    from qcos.tenancy.principal import Principal

    tenant, _ = services.tenant_get_or_create(slug="schema-tenant")
    services.project_get_or_create(tenant=tenant, slug="quantum-ml")
    user, _ = services.user_get_or_create(email="schema@example.com")
    services.membership_set(tenant=tenant, user=user, role="admin")
    issued = services.api_key_create(tenant=tenant, user=user)
    principal = Principal(user=user, tenant=tenant, roles=frozenset({"admin"}), api_key=issued.api_key)
    operation = request.node.name
    _seeded.clear()
    with django_capture_on_commit_callbacks(execute=True):
        job = jobs.job_submit(principal=principal, circuit=BELL_QASM3, backend="simulator", shots=16,
                              project_slug="quantum-ml", render=lambda job: {}).job
        if "/bench/" in operation:
            benchmark_submit(principal=principal, backend_id="simulator", workloads=["bell_state"], shots=16,
                             seed=1, render=lambda run: {})
        if "/reports" in operation:
            today = datetime.date.today()
            _seeded["report_id"] = report_services.report_generate(
                principal=principal, report_type="chargeback", start_date=today, end_date=today, group_by=None,
                format="csv").id
    sequence_now()
    _seeded["job_id"] = job.id
    _seeded["bundle_id"] = BundleRecord.objects.get(job_id=job.id).bundle_id
    if "/bench/" in operation:
        _seeded["benchmark_id"] = str(BenchmarkRun.objects.get(tenant=tenant).id)
    return issued.plaintext


@pytest.fixture
def _no_connection_close_per_request():
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def no_server_error(ctx, response, case):
    """``not_a_server_error``, except for the benchmark API's documented 503 for an unknown backend
    (``BACKEND_UNAVAILABLE``, the seed's contract; nothing failed on the server)."""
    documented = str(response.status_code) in case.operation.definition.raw.get("responses", {})
    if response.status_code == 503 and documented and _error_code(response) == "BACKEND_UNAVAILABLE":
        return None
    return not_a_server_error(ctx, response, case)


def _error_code(response) -> str | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


CHECKS = [
    no_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]
_header_style = itertools.cycle(["X-API-Key", "Bearer"])
_use_seeded = itertools.cycle([True, False])
# (status, media type) answered per operation label, for the reach check below.
_answers: dict[str, set[tuple[int, str]]] = {}


def _media_type(response) -> str:
    return (response.headers.get("content-type") or [""])[0].split(";")[0]


@schema.parametrize()
@hypothesis.settings(suppress_health_check=list(hypothesis.HealthCheck))
def test_every_answer_is_documented(case, api_key, _no_connection_close_per_request):
    if case.path_parameters and case.meta and not case.meta.generation.mode.is_negative and next(_use_seeded):
        # Every other valid case reads a real object, so its 200 (and its media type) is checked.
        case.path_parameters = {name: _seeded.get(name, value) for name, value in case.path_parameters.items()}
    style = next(_header_style)
    headers = {"X-API-Key": api_key} if style == "X-API-Key" else {"Authorization": f"Bearer {api_key}"}
    response = case.call_and_validate(headers=headers, checks=CHECKS)
    _answers.setdefault(case.operation.label, set()).add((response.status_code, _media_type(response)))


# Answers the run must have seen where it reached them: each media type of a real object, the
# submit's 202 (from the schema's example), so the checks above were applied to them.
EXPECTED_ANSWERS = {
    "POST /api/v2.1/jobs": {(202, "application/json")},
    "GET /api/v2.1/jobs/{job_id}": {(200, "application/json")},
    "GET /api/v2.1/jobs/{job_id}/evidence": {(200, "application/json"), (200, "application/zip")},
    "GET /api/v2.1/registry/checkpoint": {(200, "text/plain")},
    "GET /api/v2.1/registry/leaves/{bundle_id}": {(200, "application/json")},
    "GET /api/v2.1/reports/{report_id}/download": {(200, "text/csv")},
    "GET /api/v2/bench/report/{benchmark_id}/download": {(200, "application/json"), (200, "image/svg+xml")},
    "GET /bench/evidence/{benchmark_id}": {(200, "application/json")},
    "POST /api/v2.1/estimates": {(200, "application/json")},
    "POST /api/v2.1/reports": {(202, "application/json")},
    "POST /api/v2/bench/run": {(202, "application/json")},
    "GET /api/v2.1/backends": {(200, "application/json")},
}


def test_zz_the_run_reached_real_objects():
    """Runs after the operations above (pytest keeps a module's order): where they ran, the
    generated requests must have reached real objects, not only 404s and 400s."""
    ran = {label: _answers[label] for label in EXPECTED_ANSWERS if label in _answers}
    if not ran:
        pytest.skip("none of the operations checked here ran (deselected)")
    missing = {label: sorted(EXPECTED_ANSWERS[label] - answers) for label, answers in ran.items()
               if not EXPECTED_ANSWERS[label] <= answers}
    assert not missing, f"never answered: {missing}"
