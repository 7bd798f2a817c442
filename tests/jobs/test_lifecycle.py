"""Claiming, leases, fencing, retries and reconciliation, on the services and the worker path."""

from datetime import timedelta

import pytest
from django.utils import timezone

from qcos.api.serializers import job_representation
from qcos.jobs import services
from qcos.jobs.models import JobResult, QuantumJob
from qcos.jobs.states import TERMINAL, TRANSITIONS, JobStatus, can_transition
from qcos.tenancy.principal import Principal
from workers import execution
from workers.providers.base import ExecutionOutcome, ProviderError

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queued(alice, monkeypatch):
    """A committed QUEUED job whose wake-up message never arrives (we deliver by hand)."""
    monkeypatch.setattr("qcos.jobs.services._enqueue", lambda job_id, queue: None)
    principal = Principal(user=alice.user, tenant=alice.tenant, roles=frozenset({"researcher"}))
    from tests.factories import BELL_QASM3

    submission = services.job_submit(
        principal=principal, circuit=BELL_QASM3, backend="simulator", shots=256, render=job_representation
    )
    return submission.job


OUTCOME = ExecutionOutcome(counts={"00": 1}, execution_ms=1.0, execution_ms_source="test", backend_version="v")


def test_transition_table_matches_the_architecture():
    assert not TRANSITIONS.keys() & {JobStatus.PENDING_APPROVAL}
    assert can_transition(JobStatus.QUEUED, JobStatus.RUNNING)
    assert can_transition(JobStatus.RUNNING, JobStatus.QUEUED)  # lease expiry only
    assert not can_transition(JobStatus.RUNNING, JobStatus.CANCELLED)
    for terminal in TERMINAL:
        assert not any(can_transition(terminal, to) for to in JobStatus.values)


def test_worker_executes_a_claimed_job_once(queued):
    assert execution.job_execute(job_id=queued.id) == "COMPLETED"
    job = QuantumJob.objects.get(pk=queued.id)
    assert job.status == "COMPLETED" and job.attempts == 1 and job.lease_expires_at is None
    assert sum(job.result.counts.values()) == 256 and job.result.attempt == 1
    # A duplicate delivery finds nothing to claim.
    assert execution.job_execute(job_id=queued.id) is None
    assert JobResult.objects.count() == 1 and QuantumJob.objects.get(pk=queued.id).attempts == 1


def test_a_stale_attempt_cannot_complete_or_fail_the_job(queued):
    first = services.job_claim(job_id=queued.id, worker="w1")
    QuantumJob.objects.filter(pk=queued.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert services.jobs_reconcile().requeued_expired == 1
    second = services.job_claim(job_id=queued.id, worker="w2")
    assert (first.attempts, second.attempts) == (1, 2)
    assert services.job_complete(job_id=queued.id, attempt=1, worker="w1", outcome=OUTCOME) is False
    assert services.job_fail(job_id=queued.id, attempt=1, code="X", message="m", transient=False) is None
    assert services.job_heartbeat(job_id=queued.id, attempt=1) is False
    assert services.job_heartbeat(job_id=queued.id, attempt=2) is True
    assert services.job_complete(job_id=queued.id, attempt=2, worker="w2", outcome=OUTCOME) is True
    result = JobResult.objects.get()
    assert (result.attempt, result.worker) == (2, "w2")


def test_lease_expiry_past_the_attempt_cap_fails_the_job_with_a_reason(queued, settings):
    settings.QCOS = {**settings.QCOS, "JOB_MAX_ATTEMPTS": 2}
    for attempt in (1, 2):
        claimed = services.job_claim(job_id=queued.id, worker=f"w{attempt}")
        assert claimed.attempts == attempt
        QuantumJob.objects.filter(pk=queued.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        services.jobs_reconcile()
    job = QuantumJob.objects.get(pk=queued.id)
    assert job.status == "FAILED" and job.error_code == "ATTEMPTS_EXHAUSTED" and "2 times" in job.error_message
    assert services.job_claim(job_id=queued.id, worker="w3") is None


def test_a_live_lease_is_left_alone(queued):
    services.job_claim(job_id=queued.id, worker="w1")
    outcome = services.jobs_reconcile()
    assert outcome.requeued_expired == 0 and QuantumJob.objects.get(pk=queued.id).status == "RUNNING"


def test_stale_queued_jobs_are_enqueued_again(queued, settings, monkeypatch):
    sent = []
    monkeypatch.setattr("qcos.jobs.services._enqueue", lambda job_id, queue: sent.append(job_id))
    assert services.jobs_reconcile().reenqueued_stale == 0  # just submitted: not stale yet
    QuantumJob.objects.filter(pk=queued.id).update(enqueued_at=timezone.now() - timedelta(hours=1))
    assert services.jobs_reconcile().reenqueued_stale == 1
    assert sent == [queued.id]


def test_transient_provider_errors_retry_and_permanent_ones_fail(queued, monkeypatch):
    calls = []

    def flaky(**job):
        calls.append(job)
        if len(calls) == 1:
            raise ProviderError("device busy", code="DEVICE_BUSY", transient=True)
        raise ProviderError("circuit refused", code="REFUSED", transient=False)

    monkeypatch.setattr(execution, "simulate", flaky)
    assert execution.job_execute(job_id=queued.id) == "QUEUED"
    assert execution.job_execute(job_id=queued.id) == "FAILED"
    job = QuantumJob.objects.get(pk=queued.id)
    assert (job.status, job.attempts, job.error_code) == ("FAILED", 2, "REFUSED")
    assert not JobResult.objects.exists()


def test_an_unexpected_error_fails_the_job_instead_of_crashing_the_worker(queued, monkeypatch):
    def broken(**job):
        raise RuntimeError("boom")

    monkeypatch.setattr(execution, "simulate", broken)
    assert execution.job_execute(job_id=queued.id) == "FAILED"
    job = QuantumJob.objects.get(pk=queued.id)
    assert job.error_code == "EXECUTION_ERROR" and "boom" in job.error_message


def test_the_worker_refuses_a_circuit_that_does_not_match_its_hash(queued, monkeypatch):
    ran = []
    monkeypatch.setattr(execution, "simulate", lambda **job: ran.append(job))
    QuantumJob.objects.filter(pk=queued.id).update(circuit=queued.circuit.replace("h q[0]", "x q[0]"))
    assert execution.job_execute(job_id=queued.id) == "FAILED"
    job = QuantumJob.objects.get(pk=queued.id)
    assert job.error_code == "CIRCUIT_HASH_MISMATCH" and not ran
    assert not JobResult.objects.exists()


def test_the_lease_keeper_renews_while_the_provider_runs(queued, settings, monkeypatch):
    import time

    settings.QCOS = {**settings.QCOS, "JOB_LEASE_SECONDS": 0.6}
    seen = []

    def slow(**job):
        start = QuantumJob.objects.get(pk=queued.id).lease_expires_at
        time.sleep(1.5)  # the keeper wakes at least every second, renews every 0.2 s here
        seen.append(QuantumJob.objects.get(pk=queued.id).lease_expires_at > start)
        return OUTCOME

    monkeypatch.setattr(execution, "simulate", slow)
    assert execution.job_execute(job_id=queued.id) == "COMPLETED"
    assert seen == [True]


def test_one_lease_keeper_thread_serves_every_job(alice, monkeypatch):
    import threading

    from tests.factories import BELL_QASM3

    monkeypatch.setattr("qcos.jobs.services._enqueue", lambda job_id, queue: None)
    principal = Principal(user=alice.user, tenant=alice.tenant, roles=frozenset({"researcher"}))
    for _ in range(3):
        job = services.job_submit(principal=principal, circuit=BELL_QASM3, backend="simulator", shots=16,
                                  render=lambda job: {}).job
        assert execution.job_execute(job_id=job.id) == "COMPLETED"
    keepers = [t for t in threading.enumerate() if t.name == "qcos-lease-keeper"]
    assert len(keepers) == 1 and keepers[0] is execution.lease_keeper._thread
    assert execution.lease_keeper._due(0.0) == []  # nothing left held


def test_the_lease_keeper_never_calls_time_sleep(monkeypatch):
    """Tests patch time.sleep (the SDK's polling tests do): the keeper's thread must not then spin,
    nor call the patched function from its own thread."""
    import threading
    import time

    execution.lease_keeper.hold("job-none", 1)  # starts the thread if this process has none yet
    execution.lease_keeper.release("job-none")
    callers: list[str] = []
    monkeypatch.setattr(time, "sleep", lambda seconds: callers.append(threading.current_thread().name))
    threading.Event().wait(1.3)  # the keeper wakes at least once a second
    assert "qcos-lease-keeper" not in callers
