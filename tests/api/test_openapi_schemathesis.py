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


@pytest.fixture
def api_key(db, django_capture_on_commit_callbacks):
    """A seeded tenant with real data behind the ids the generator may hit: an admin's key and
    one completed job (with its evidence bundle)."""
    from qcos.jobs import services as jobs
    from qcos.tenancy import services
    from qcos.tenancy.principal import Principal

    tenant, _ = services.tenant_get_or_create(slug="schema-tenant")
    services.project_get_or_create(tenant=tenant, slug="quantum-ml")
    user, _ = services.user_get_or_create(email="schema@example.com")
    services.membership_set(tenant=tenant, user=user, role="admin")
    issued = services.api_key_create(tenant=tenant, user=user)
    principal = Principal(user=user, tenant=tenant, roles=frozenset({"admin"}), api_key=issued.api_key)
    with django_capture_on_commit_callbacks(execute=True):
        jobs.job_submit(principal=principal, circuit=BELL_QASM3, backend="simulator", shots=16,
                        project_slug="quantum-ml", render=lambda job: {})
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


@schema.parametrize()
@hypothesis.settings(suppress_health_check=list(hypothesis.HealthCheck))
def test_every_answer_is_documented(case, api_key, _no_connection_close_per_request):
    style = next(_header_style)
    headers = {"X-API-Key": api_key} if style == "X-API-Key" else {"Authorization": f"Bearer {api_key}"}
    case.call_and_validate(headers=headers, checks=CHECKS)
