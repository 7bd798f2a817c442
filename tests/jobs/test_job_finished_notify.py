"""PostgreSQL tells listeners on ``qcos_job_finished`` when a job ends, once, at commit."""

from __future__ import annotations

import json

import psycopg
import pytest
from django.db import connection, transaction

from qcos.api.serializers import job_representation
from qcos.jobs import services
from qcos.jobs.models import QuantumJob
from qcos.jobs.states import JobStatus
from qcos.tenancy.principal import Principal
from tests.factories import BELL_QASM3
from workers import execution

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="LISTEN/NOTIFY is PostgreSQL's"),
]


@pytest.fixture
def listener():
    db = connection.settings_dict
    conn = psycopg.connect(dbname=db["NAME"], user=db["USER"] or None, host=db["HOST"] or None,
                           port=db["PORT"] or None, password=db["PASSWORD"] or None, autocommit=True)
    conn.execute("LISTEN qcos_job_finished")

    def heard(timeout: float = 0.5) -> list[dict]:
        return [json.loads(note.payload) for note in conn.notifies(timeout=timeout)]

    yield heard
    conn.close()


@pytest.fixture
def submit(alice, monkeypatch):
    monkeypatch.setattr("qcos.jobs.services._enqueue", lambda job_id, queue: None)
    principal = Principal(user=alice.user, tenant=alice.tenant, roles=frozenset({"researcher"}))

    def submit():
        return services.job_submit(principal=principal, circuit=BELL_QASM3, backend="simulator", shots=64,
                                   render=job_representation).job

    return submit


def test_a_completed_job_is_announced_once_and_its_other_transitions_are_not(submit, listener):
    job = submit()
    assert services.job_claim(job_id=job.id, worker="w1") is not None
    assert listener() == []  # QUEUED and RUNNING are not the end
    QuantumJob.objects.filter(pk=job.id).update(status=JobStatus.QUEUED)  # as a lease expiry would
    assert execution.job_execute(job_id=job.id) == "COMPLETED"
    assert listener() == [{"job_id": job.id, "tenant_id": job.tenant_id, "status": "COMPLETED"}]
    QuantumJob.objects.filter(pk=job.id).update(cost_usd=0)  # an update that leaves the status alone
    assert listener() == []


def test_failed_and_cancelled_jobs_are_announced(submit, listener, alice):
    cancelled, failed = submit(), submit()
    principal = Principal(user=alice.user, tenant=alice.tenant, roles=frozenset({"researcher"}))
    services.job_cancel(principal=principal, job=cancelled)
    claimed = services.job_claim(job_id=failed.id, worker="w1")
    services.job_fail(job_id=failed.id, attempt=claimed.attempts, code="REFUSED", message="no", transient=False)
    assert sorted((event["job_id"], event["status"]) for event in listener()) == sorted(
        [(cancelled.id, "CANCELLED"), (failed.id, "FAILED")])


def test_nothing_is_announced_for_a_transaction_that_rolls_back(submit, listener):
    job = submit()
    with pytest.raises(RuntimeError), transaction.atomic():
        QuantumJob.objects.filter(pk=job.id).update(status=JobStatus.CANCELLED)
        raise RuntimeError("changed my mind")
    assert listener() == []
    assert QuantumJob.objects.get(pk=job.id).status == JobStatus.QUEUED
