"""job_detail must answer exactly like selectors.job_get (the status poll's fast path)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from qcos.api.serializers import job_representation
from qcos.errors import NotFound
from qcos.jobs import selectors, services
from qcos.jobs.job_detail import job_detail
from qcos.jobs.models import QuantumJob
from qcos.tenancy.principal import Principal
from workers import execution

pytestmark = pytest.mark.django_db(transaction=True)


def _principal(member):
    return Principal(user=member.user, tenant=member.tenant, roles=frozenset({"researcher"}))


@pytest.fixture
def submitted(alice, monkeypatch):
    monkeypatch.setattr("qcos.jobs.services._enqueue", lambda job_id, queue: None)
    from tests.factories import BELL_QASM3

    return services.job_submit(
        principal=_principal(alice), circuit=BELL_QASM3, backend="simulator", shots=128, tags={"k": "v"},
        render=job_representation,
    ).job


def _same(principal, job_id):
    expected = selectors.job_get(principal=principal, job_id=job_id)
    with CaptureQueriesContext(connection) as queries:
        got = job_detail(principal=principal, job_id=job_id)
        body = job_representation(got)  # related rows come from the one statement
    assert len(queries) == 1
    assert body == job_representation(expected)
    for field in QuantumJob._meta.concrete_fields:
        if field.attname != "circuit":
            assert getattr(got, field.attname) == getattr(expected, field.attname), field.attname
    assert "circuit" in got.get_deferred_fields()
    assert got.tenant == expected.tenant and got.project == expected.project
    return got


def test_a_queued_job_matches_the_selector(alice, submitted):
    got = _same(_principal(alice), submitted.id)
    assert getattr(got, "result", None) is None and getattr(got, "provenance", None) is None


def test_a_completed_job_matches_the_selector_with_its_result_and_provenance(alice, submitted):
    assert execution.job_execute(job_id=submitted.id) == "COMPLETED"
    got = _same(_principal(alice), submitted.id)
    assert sum(got.result.counts.values()) == 128 and got.result.job is got
    assert got.provenance.provenance_id.startswith("prov-")


def test_another_tenants_job_is_not_found_like_a_missing_one(carol, submitted):
    for job_id in (submitted.id, "job-missing"):
        with pytest.raises(NotFound):
            job_detail(principal=_principal(carol), job_id=job_id)
