"""The database drops while a job finishes, on a real worker: the worker connects to PostgreSQL
through a TCP proxy on a loopback port that the test cuts (every connection reset, new ones
refused) and restores. The job must end COMPLETED exactly once, its charge settled once, and never
stay RUNNING past its lease: a lease is renewed only while the attempt is worked on."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from finops.models import Charge
from ledger.models import AuditEntry
from qcos.api.serializers import job_representation
from qcos.jobs import services
from qcos.jobs.models import JobResult, QuantumJob
from qcos.tenancy.principal import Principal
from tests.factories import slow_circuit

from .conftest import DatabaseProxy, wait_for

pytestmark = pytest.mark.integration

LEASE = 2.0  # tests/integration/conftest.py TEST_WORKER_ENV
NOTICE = 1.0 + 2.0 + 2.0  # the reconciler's interval, the worker's longest retry backoff, slack


def running_with_a_live_job(job_id: str) -> bool:
    return QuantumJob.objects.filter(pk=job_id, status="RUNNING").exists()


def watch_until_terminal(job_id: str, timeout: float) -> QuantumJob:
    """Poll the job (directly, not through the proxy) from the database's return, and fail if it
    is RUNNING with a lease that ran out (or ran out while the database was away) longer ago than
    a worker's retry backoff and the reconciler's interval take to notice."""
    back = timezone.now()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = QuantumJob.objects.get(pk=job_id)
        if job.status in ("COMPLETED", "FAILED"):
            return job
        if job.status == "RUNNING":
            overdue = timezone.now() - max(job.lease_expires_at, back)
            assert overdue < timedelta(seconds=NOTICE), f"RUNNING {overdue} past its lease"
        time.sleep(0.1)
    raise AssertionError(f"job still {QuantumJob.objects.get(pk=job_id).status} after {timeout}s")


def settled_once(job_id: str) -> None:
    charges = list(Charge.objects.filter(resource_type="quantum_job", resource_id=job_id))
    assert [c.status for c in charges] == ["SETTLED"] and charges[0].settled_micros > 0
    actions = list(AuditEntry.objects.filter(resource_id=job_id).values_list("action", flat=True))
    assert actions.count("JOB_COMPLETED") == 1, actions
    assert JobResult.objects.filter(job_id=job_id).count() == 1


def cut_while_running(alice, proxy: DatabaseProxy, worker) -> QuantumJob:
    principal = Principal(user=alice.user, tenant=alice.tenant, roles=frozenset({"researcher"}))
    # Priced (a DEV MODE device), and simulates for a few seconds: the cut lands mid-simulation.
    job = services.job_submit(principal=principal, circuit=slow_circuit(qubits=12, layers=20),
                              backend="ibm_brisbane", shots=120, render=job_representation).job
    wait_for(lambda: running_with_a_live_job(job.pk), 30, 0.02, "job running")
    proxy.stop(reset=True)
    wait_for(lambda: "recording its outcome failed" in worker.text(), 30, 0.1, "the completion hit the cut")
    return job


def test_a_completion_retried_while_the_database_is_away_completes_once_it_returns(
    alice, redis_server, celery_on, start_worker, db_proxy
):
    celery_on(redis_server.url)
    worker = start_worker(redis_server.url, env={"DATABASE_URL": db_proxy.database_url(),
                                                 "QCOS_JOB_RECORD_RETRY_SECONDS": "30"})
    job = cut_while_running(alice, db_proxy, worker)
    time.sleep(LEASE + 1)  # away for longer than a lease
    db_proxy.start()
    done = watch_until_terminal(job.pk, 30)
    assert done.status == "COMPLETED", (done.error_code, worker.text()[-3000:])
    assert done.attempts in (1, 2)  # completed by the retry, or requeued first and run again
    settled_once(job.pk)


def test_a_completion_given_up_on_is_handed_back_and_the_job_runs_again(
    alice, redis_server, celery_on, start_worker, db_proxy
):
    celery_on(redis_server.url)
    worker = start_worker(redis_server.url, env={"DATABASE_URL": db_proxy.database_url(),
                                                 "QCOS_JOB_RECORD_RETRY_SECONDS": "1"})
    job = cut_while_running(alice, db_proxy, worker)
    wait_for(lambda: "handing it back to the reconciler" in worker.text(), 20, 0.1, "the worker gave up")
    time.sleep(LEASE + 1)  # the worker process lives on; nothing renews the lease any more
    db_proxy.start()
    done = watch_until_terminal(job.pk, 40)
    assert done.status == "COMPLETED", (done.error_code, worker.text()[-3000:])
    assert done.attempts == 2 and JobResult.objects.get(job_id=job.pk).attempt == 2
    actions = list(AuditEntry.objects.filter(resource_id=job.pk).values_list("action", flat=True))
    assert actions.count("JOB_REQUEUED") == 1, actions
    settled_once(job.pk)
