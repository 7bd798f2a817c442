"""PostgreSQL's one-statement claim and completion must behave like the ORM's UPDATE + SELECT."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from qcos.api.serializers import job_representation
from qcos.jobs import fast_transitions, services
from qcos.jobs.models import QuantumJob
from qcos.tenancy.principal import Principal

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement path is PostgreSQL's"),
]


@pytest.fixture
def queued(alice, monkeypatch):
    monkeypatch.setattr("qcos.jobs.services._enqueue", lambda job_id, queue: None)
    principal = Principal(user=alice.user, tenant=alice.tenant, roles=frozenset({"researcher"}))
    from tests.factories import BELL_QASM3

    return services.job_submit(
        principal=principal, circuit=BELL_QASM3, backend="simulator", shots=64, tags={"a": "b"},
        render=job_representation,
    ).job


def _fields(job):
    return {f.attname: getattr(job, f.attname) for f in QuantumJob._meta.concrete_fields}


def _started_entry(job_id, worker, now):
    from ledger.audit import Hole, audit_payload, system_principal

    return audit_payload(action="JOB_STARTED", principal={**system_principal("worker", Hole("tenant")), "worker": worker},
                         resource_type="quantum_job", resource_id=job_id,
                         details={"attempt": Hole("attempt"), "worker": worker}, outcome="SUCCESS",
                         tenant=Hole("tenant"), now=now)


def test_claim_returns_the_updated_row_with_its_tenant_and_project_and_audits_it_in_one_statement(queued):
    from ledger.audit import system_principal
    from ledger.crypto.canonical import canonical_json
    from ledger.models import AuditEntry

    now = timezone.now()
    entry = _started_entry(queued.id, "w:1", now)
    with CaptureQueriesContext(connection) as queries:
        job = fast_transitions.claim(job_id=queued.id, worker="w:1", now=now, lease_until=now + timedelta(seconds=60),
                                     max_attempts=3, entry=entry)
        assert (job.tenant.slug, job.project.slug) == ("research-alpha", queued.project.slug)
    assert len(queries) == 1
    stored = QuantumJob.objects.get(pk=queued.id)
    assert _fields(job) == _fields(stored)
    assert (stored.status, stored.attempts, stored.claimed_by, stored.started_at) == ("RUNNING", 1, "w:1", now)
    # The entry is byte for byte what audit_append writes for the same facts (the chain hashes it).
    row = AuditEntry.objects.get(audit_id=entry["audit_id"])
    expected = {**entry, "principal": {**system_principal("worker", "research-alpha"), "worker": "w:1"},
                "details": {"attempt": 1, "worker": "w:1"}, "tenant_id": "research-alpha"}
    assert row.payload == canonical_json(expected).decode()
    assert (row.action, row.tenant_slug, row.resource_id, row.timestamp) == ("JOB_STARTED", "research-alpha",
                                                                             queued.id, now)
    # A second delivery, or a job out of attempts, is not claimable: nothing changes, nothing is audited.
    again = _started_entry(queued.id, "w:2", now)
    assert fast_transitions.claim(job_id=queued.id, worker="w:2", now=now, lease_until=now, max_attempts=3,
                                  entry=again) is None
    QuantumJob.objects.filter(pk=queued.id).update(status="QUEUED")
    assert fast_transitions.claim(job_id=queued.id, worker="w:2", now=now, lease_until=now, max_attempts=1,
                                  entry=again) is None
    assert QuantumJob.objects.get(pk=queued.id).claimed_by == "w:1"
    assert not AuditEntry.objects.filter(audit_id=again["audit_id"]).exists()


def test_an_awkward_tenant_slug_still_gives_canonical_bytes():
    """to_json's escaping is RFC 8785's: the fill is checked against the reference encoder."""
    from ledger.audit import Hole, audit_payload_parts
    from ledger.crypto.canonical import canonical_json

    payload = {"a": Hole("tenant"), "b": [1, Hole("attempt")], "z": "x"}
    texts, holes = audit_payload_parts(payload)
    assert holes == ["tenant", "attempt"]
    for value in ["plain", 'quo"te\\back', "tab\tnew\nline\u0001", "ünï", "\u2028"]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_json(%s::text)::text", [value])
            filled = texts[0] + cursor.fetchone()[0] + texts[1] + "7" + texts[2]
        assert filled == canonical_json({"a": value, "b": [1, 7], "z": "x"}).decode(), value


def test_complete_is_fenced_by_the_attempt_on_the_server_and_carries_the_cost(queued):
    from django.db import DatabaseError, transaction

    now = timezone.now()
    fast_transitions.claim(job_id=queued.id, worker="w:1", now=now, lease_until=now, max_attempts=3,
                           entry=_started_entry(queued.id, "w:1", now))
    with pytest.raises(DatabaseError) as lost, transaction.atomic():
        fast_transitions.complete_send(job_id=queued.id, attempt=2, now=now, cost_usd=None, cost_breakdown="{}")
    assert lost.value.__cause__.sqlstate == fast_transitions.LOST_ATTEMPT == "QC001"
    assert QuantumJob.objects.get(pk=queued.id).status == "RUNNING"
    with CaptureQueriesContext(connection) as queries:
        fast_transitions.complete_send(job_id=queued.id, attempt=1, now=now, cost_usd="1.250000",
                                       cost_breakdown='{"compute": "1.250000"}')
    assert len(queries) == 1
    stored = QuantumJob.objects.get(pk=queued.id)
    assert (stored.status, stored.completed_at, stored.lease_expires_at) == ("COMPLETED", now, None)
    assert (str(stored.cost_usd), stored.cost_breakdown) == ("1.250000", {"compute": "1.250000"})
    with pytest.raises(DatabaseError):
        fast_transitions.complete_send(job_id=queued.id, attempt=1, now=now, cost_usd=None, cost_breakdown="{}")


def test_a_pipelined_commit_is_kept_and_a_failed_statement_before_it_rolls_everything_back(queued):
    from django.db import IntegrityError, transaction

    from qcos import rowload
    from qcos.jobs.models import JobResult

    with transaction.atomic(), rowload.pipeline(connection):
        QuantumJob.objects.filter(pk=queued.id).update(tags={"kept": "yes"})
        assert rowload.commit_with_pipeline(connection) is True
    assert QuantumJob.objects.get(pk=queued.id).tags == {"kept": "yes"}
    result = dict(job=queued, counts={}, execution_ms=1.0, execution_ms_source="t", backend_version="v", worker="w",
                  metadata={})
    JobResult.objects.create(attempt=1, **result)
    with pytest.raises(IntegrityError), transaction.atomic(), rowload.pipeline(connection):
        QuantumJob.objects.filter(pk=queued.id).update(tags={"kept": "no"})
        # The job's second result: the one-to-one key refuses it when the pipeline syncs.
        rowload.insert_row(connection, JobResult(attempt=2, **result),
                           ("job_id", "attempt", "counts", "execution_ms", "execution_ms_source", "backend_version",
                            "worker", "metadata", "created_at"))
        rowload.commit_with_pipeline(connection)
    assert QuantumJob.objects.get(pk=queued.id).tags == {"kept": "yes"}
    # Nested blocks and blocks outside a pipeline leave the COMMIT to Django.
    with transaction.atomic():
        assert rowload.commit_with_pipeline(connection) is False
        with transaction.atomic(), rowload.pipeline(connection):
            assert rowload.commit_with_pipeline(connection) is False


class _RoundTrips:
    """Counts round trips to PostgreSQL: a statement outside a pipeline is one, a whole
    pipeline (psycopg 3's pipeline mode, used with server-side binding) is one."""

    def __init__(self, monkeypatch):
        self.count, self.in_pipeline = 0, False
        raw = connection.connection
        pipeline = raw.pipeline

        @contextlib.contextmanager
        def counted():
            self.count += 1
            self.in_pipeline = True
            try:
                with pipeline() as p:
                    yield p
            finally:
                self.in_pipeline = False

        monkeypatch.setattr(raw, "pipeline", counted)

    def __call__(self, execute, sql, params, many, context):
        if not self.in_pipeline:
            self.count += 1
        return execute(sql, params, many, context)


def test_completion_rows_are_inserted_in_one_round_trip(queued, monkeypatch):
    from ledger.models import BundleRecord, Provenance, RegistryLeaf
    from qcos.rowload import insert_rows

    connection.ensure_connection()
    trips = _RoundTrips(monkeypatch)
    with connection.execute_wrapper(trips):
        insert_rows(connection, [(Provenance(provenance_id="prov-test-0", job=queued, payload="{}",
                                             created_at=timezone.now()),
                                  ("provenance_id", "job_id", "payload", "created_at"))])
    assert trips.count == 1 and Provenance.objects.filter(job=queued).count() == 1
    record = BundleRecord(bundle_id="bundle-test", job=queued, tenant_slug="t", body="{}", merkle_root="0" * 64,
                          created_at=timezone.now())
    trips.count = 0
    with connection.execute_wrapper(trips), CaptureQueriesContext(connection) as queries:
        insert_rows(connection, [(record, ("bundle_id", "job_id", "tenant_slug", "body", "merkle_root", "created_at")),
                                 (RegistryLeaf(bundle=record, leaf_hash="1" * 64), ("bundle_id", "leaf_hash", "created_at"))])
    assert trips.count == 1, [q["sql"] for q in queries]
    leaf = RegistryLeaf.objects.get(bundle_id="bundle-test")
    assert (leaf.leaf_hash, leaf.leaf_index, leaf.created_at is not None) == ("1" * 64, None, True)


def _count_round_trips(monkeypatch) -> list[int]:
    """Round trips to PostgreSQL, counted where psycopg blocks on the server (Connection.wait):
    every statement outside pipeline mode; in it, only the reads and the syncs; and a COMMIT
    that is sent (sending a pipelined statement waits for nothing)."""
    from psycopg import pq

    calls = [0]
    raw = connection.connection
    wait = raw.wait

    def counted(gen, *args, **kwargs):
        name = getattr(gen, "__name__", "")
        if name in {"_fetch_gen", "_exit_gen", "_sync_gen"} or (
            # psycopg sends no COMMIT on an idle connection (one already sent in a pipeline)
            name == "_commit_gen" and raw.pgconn.transaction_status != pq.TransactionStatus.IDLE
        ) or (name == "_execute_gen" and raw.pgconn.pipeline_status == pq.PipelineStatus.OFF):
            calls[0] += 1
        return wait(gen, *args, **kwargs)

    monkeypatch.setattr(raw, "wait", counted)
    return calls


_OUTCOME = dict(counts={"00": 40, "11": 24}, execution_ms=1.0, execution_ms_source="test", backend_version="v",
                calibration={"calibration_id": "c"})


def _warm(queued):
    """A first job through claim and completion warms what a process caches (signing keys
    registered, price sheets read, statements prepared)."""
    from workers.providers.base import ExecutionOutcome

    first = services.job_submit(principal=Principal(user=queued.submitted_by, tenant=queued.tenant,
                                                    roles=frozenset({"researcher"})),
                                circuit=queued.circuit, backend="simulator", shots=64, render=job_representation).job
    claimed = services.job_claim(job_id=first.id, worker="w:1", prefetch=True)
    services.job_complete(job_id=first.id, attempt=claimed.attempts, worker="w:1",
                          outcome=ExecutionOutcome(**_OUTCOME), claimed=claimed)


def _trail_actions(job_id):
    import orjson

    from ledger.models import BundleRecord

    items = orjson.loads(BundleRecord.objects.get(job_id=job_id).body)["items"]
    return [entry["action"] for entry in next(i for i in items if i["type"] == "audit_trail")["content"]["entries"]]


def test_the_claim_reads_what_the_completion_needs_in_its_one_round_trip(queued, monkeypatch):
    from finops.models import Charge

    _warm(queued)
    trips = _count_round_trips(monkeypatch)
    claimed = services.job_claim(job_id=queued.id, worker="w:1", prefetch=True)
    assert trips[0] == 1, trips[0]
    reads = claimed.completion_reads
    assert [entry["action"] for entry in reads.trail] == ["JOB_SUBMITTED", "JOB_STARTED"]
    assert reads.trail[-1]["details"] == {"attempt": 1, "worker": "w:1"}
    assert reads.held[0] == Charge.objects.get(resource_id=queued.id, status="HELD").pk
    # The claim is committed by then: another connection sees the job RUNNING.
    assert QuantumJob.objects.get(pk=queued.id).status == "RUNNING"


def test_the_completion_is_the_writes_and_the_commit(queued, monkeypatch):
    from finops.models import Charge
    from workers.providers.base import ExecutionOutcome

    _warm(queued)
    claimed = services.job_claim(job_id=queued.id, worker="w:1", prefetch=True)
    trips = _count_round_trips(monkeypatch)
    assert services.job_complete(job_id=queued.id, attempt=claimed.attempts, worker="w:1",
                                 outcome=ExecutionOutcome(**_OUTCOME), claimed=claimed)
    # Every write behind the server-fenced UPDATE, and the COMMIT, in one round trip (unpipelined: ten).
    assert trips[0] == 1, trips[0]
    job = QuantumJob.objects.get(pk=queued.id)
    charge = Charge.objects.get(resource_id=queued.id)
    assert job.status == "COMPLETED" and job.cost_usd is not None and charge.status == "SETTLED"
    assert job.cost_breakdown == charge.breakdown
    assert _trail_actions(queued.id) == ["JOB_SUBMITTED", "JOB_STARTED", "JOB_COMPLETED"]


def test_a_completion_without_the_claims_reads_reads_them_locked(queued):
    from finops.models import Charge
    from workers.providers.base import ExecutionOutcome

    claimed = services.job_claim(job_id=queued.id, worker="w:1")
    assert not hasattr(claimed, "completion_reads")
    assert services.job_complete(job_id=queued.id, attempt=claimed.attempts, worker="w:1",
                                 outcome=ExecutionOutcome(**_OUTCOME))
    assert Charge.objects.get(resource_id=queued.id).status == "SETTLED"
    assert _trail_actions(queued.id) == ["JOB_SUBMITTED", "JOB_STARTED", "JOB_COMPLETED"]


def test_a_lost_attempt_writes_nothing_although_its_writes_were_sent(queued):
    from finops.models import Charge
    from ledger.models import AuditEntry, BundleRecord
    from qcos.jobs.models import JobResult
    from workers.providers.base import ExecutionOutcome

    claimed = services.job_claim(job_id=queued.id, worker="w:1", prefetch=True)
    # The lease expired and the reconciler gave the job to another attempt meanwhile.
    QuantumJob.objects.filter(pk=queued.id).update(attempts=2)
    assert services.job_complete(job_id=queued.id, attempt=claimed.attempts, worker="w:1",
                                 outcome=ExecutionOutcome(**_OUTCOME), claimed=claimed) is False
    assert QuantumJob.objects.get(pk=queued.id).status == "RUNNING"
    assert not JobResult.objects.filter(job_id=queued.id).exists()
    assert not BundleRecord.objects.filter(job_id=queued.id).exists()
    assert not AuditEntry.objects.filter(resource_id=queued.id, action="JOB_COMPLETED").exists()
    assert Charge.objects.get(resource_id=queued.id).status == "HELD"


def test_a_charge_that_left_held_after_the_claim_is_not_settled_twice(queued):
    """Stale reads are caught by the capture itself, and the completion runs again from locked reads."""
    from finops.models import Charge
    from workers.providers.base import ExecutionOutcome

    claimed = services.job_claim(job_id=queued.id, worker="w:1", prefetch=True)
    Charge.objects.filter(resource_id=queued.id).update(status="SETTLED", settled_micros=0)
    assert services.job_complete(job_id=queued.id, attempt=claimed.attempts, worker="w:1",
                                 outcome=ExecutionOutcome(**_OUTCOME), claimed=claimed)
    job = QuantumJob.objects.get(pk=queued.id)
    assert job.status == "COMPLETED" and job.cost_usd is None  # nothing HELD to settle any more
    assert Charge.objects.get(resource_id=queued.id).settled_micros == 0
    assert _trail_actions(queued.id) == ["JOB_SUBMITTED", "JOB_STARTED", "JOB_COMPLETED"]


def test_a_submit_is_two_round_trips(queued, monkeypatch):
    """The project and policies read together; the INSERTs and the COMMIT (without budget
    windows; a reservation adds its statement)."""
    principal = Principal(user=queued.submitted_by, tenant=queued.tenant, roles=frozenset({"researcher"}))
    trips = _count_round_trips(monkeypatch)
    job = services.job_submit(principal=principal, circuit=queued.circuit, backend="simulator", shots=64,
                              render=job_representation).job
    assert trips[0] == 2, trips[0]
    assert QuantumJob.objects.get(pk=job.id).status == "QUEUED"
