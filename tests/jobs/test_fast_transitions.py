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


def test_claim_returns_the_updated_row_with_its_tenant_and_audits_it_in_one_statement(queued):
    from ledger.audit import system_principal
    from ledger.crypto.canonical import canonical_json
    from ledger.models import AuditEntry

    now = timezone.now()
    entry = _started_entry(queued.id, "w:1", now)
    with CaptureQueriesContext(connection) as queries:
        job = fast_transitions.claim(job_id=queued.id, worker="w:1", now=now, lease_until=now + timedelta(seconds=60),
                                     max_attempts=3, entry=entry)
        assert job.tenant.slug == "research-alpha"
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


def test_complete_is_fenced_by_the_attempt_and_loads_tenant_and_project(queued):
    now = timezone.now()
    fast_transitions.claim(job_id=queued.id, worker="w:1", now=now, lease_until=now, max_attempts=3,
                           entry=_started_entry(queued.id, "w:1", now))
    assert fast_transitions.complete(job_id=queued.id, attempt=2, now=now) is None
    assert QuantumJob.objects.get(pk=queued.id).status == "RUNNING"
    with CaptureQueriesContext(connection) as queries:
        job = fast_transitions.complete(job_id=queued.id, attempt=1, now=now)
        assert (job.tenant.slug, job.project.slug) == ("research-alpha", queued.project.slug)
    assert len(queries) == 1
    stored = QuantumJob.objects.get(pk=queued.id)
    assert _fields(job) == _fields(stored)
    assert (stored.status, stored.completed_at, stored.lease_expires_at) == ("COMPLETED", now, None)
    assert fast_transitions.complete(job_id=queued.id, attempt=1, now=now) is None


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
    every statement outside pipeline mode; in it, only the reads, the syncs and the COMMIT
    (sending a pipelined statement waits for nothing)."""
    from psycopg import pq

    calls = [0]
    raw = connection.connection
    wait = raw.wait

    def counted(gen, *args, **kwargs):
        name = getattr(gen, "__name__", "")
        if name in {"_fetch_gen", "_exit_gen", "_sync_gen", "_commit_gen"} or (
            name == "_execute_gen" and raw.pgconn.pipeline_status == pq.PipelineStatus.OFF
        ):
            calls[0] += 1
        return wait(gen, *args, **kwargs)

    monkeypatch.setattr(raw, "wait", counted)
    return calls


def test_the_completion_is_pipelined_into_a_few_round_trips(queued, monkeypatch):
    from workers.providers.base import ExecutionOutcome

    outcome = ExecutionOutcome(counts={"00": 40, "11": 24}, execution_ms=1.0, execution_ms_source="test",
                               backend_version="v", calibration={"calibration_id": "c"})
    # A first completion warms what a worker caches (signing keys registered, price sheets read).
    first = services.job_submit(principal=Principal(user=queued.submitted_by, tenant=queued.tenant,
                                                    roles=frozenset({"researcher"})),
                                circuit=queued.circuit, backend="simulator", shots=64, render=job_representation).job
    services.job_complete(job_id=first.id, attempt=services.job_claim(job_id=first.id, worker="w:1").attempts,
                          worker="w:1", outcome=outcome)
    claimed = services.job_claim(job_id=queued.id, worker="w:1")
    trips = _count_round_trips(monkeypatch)
    assert services.job_complete(job_id=queued.id, attempt=claimed.attempts, worker="w:1", outcome=outcome)
    # The UPDATE, the trail and the charge lock; all the writes; the COMMIT (unpipelined: ten).
    assert trips[0] == 3, trips[0]
    job = QuantumJob.objects.select_related("bundle").get(pk=queued.id)
    assert job.status == "COMPLETED" and job.cost_usd is not None
    from ledger.models import BundleRecord

    trail = [entry["action"] for entry in
             next(i for i in __import__("orjson").loads(BundleRecord.objects.get(job_id=queued.id).body)["items"]
                  if i["type"] == "audit_trail")["content"]["entries"]]
    assert trail == ["JOB_SUBMITTED", "JOB_STARTED", "JOB_COMPLETED"]
