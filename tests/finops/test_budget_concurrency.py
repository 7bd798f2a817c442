"""Budgets never overspend under concurrency (issue 4): many submitters, each a thread with its own
PostgreSQL connection, released together by a barrier, call the real ``job_submit`` against a
budget that admits exactly k jobs.

Invariants asserted after every round (REFERENCE.md §3):

* exactly k admitted, every other submitter refused with ``BudgetExceeded`` (no deadlock, no
  other error: an API client would have seen 402, never 500);
* ``spent + reserved <= limit`` in every window (tenant and project, day and month), and each
  window's reservation is exactly the sum of its HELD charges;
* one ``BUDGET_EXCEEDED`` audit entry per refusal, and no job, charge or JOB_SUBMITTED entry
  survives a refused submit.

PostgreSQL only: ``select_for_update`` and row locks mean nothing on SQLite, so the module fails
under ``CI=true`` and skips otherwise.

Connections: ``max_connections`` on the shared development server is 100 and other engineers
hold some of them, so the number of simultaneous submitters is ``min(200, free connections - 30)``
(the headroom keeps their test runs alive; a submitter refused a connection because others took
the slots meanwhile retries for a while); ``QCOS_BUDGET_SUBMITTERS`` overrides it. On a server
with room for 200 the round runs with 200. ``perf/budget.py`` repeats the scenario at length.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction

from tests.factories import BELL_QASM2
from tests.integration.conftest import _unavailable

COST = Decimal("0.012345")  # per job: the local simulator's evidence-storage fee in these tests
COST_MICROS = 12_345
WANTED_SUBMITTERS = 200
HEADROOM = 30  # connections left for the other engineers sharing the server
BARRIER_TIMEOUT = 60

# A tiny circuit: validation and pricing stay cheap, so the race is at the budget rows.
TINY = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[1];
creg c[1];
x q[0];
measure q -> c;
"""


# --- shared helpers (also used by test_budget_policies.py) -----------------------------------------


def require_postgres() -> None:
    from django.conf import settings

    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        _unavailable("budget concurrency tests need DATABASE_URL on PostgreSQL (row locks are no-ops on SQLite)")


@pytest.fixture
def postgres_only():
    """First in a test's fixtures: skip (fail under CI=true) before any database setup."""
    require_postgres()


def free_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('max_connections')::int, "
                       "current_setting('superuser_reserved_connections')::int, "
                       "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')")
        max_connections, reserved, used = cursor.fetchone()
    return max_connections - reserved - used


def submitter_count(wanted: int = WANTED_SUBMITTERS) -> int:
    if os.environ.get("QCOS_BUDGET_SUBMITTERS"):
        return int(os.environ["QCOS_BUDGET_SUBMITTERS"])
    count = min(wanted, free_connections() - HEADROOM)
    if count < 8:
        _unavailable(f"only {count + HEADROOM} PostgreSQL connections free; the race needs at least {8 + HEADROOM}")
    return count


def publish_local_price(cost: Decimal = COST):
    """Make local-simulator jobs cost ``cost`` (evidence storage): a new price-sheet version."""
    from finops.models import PriceSheetVersion

    return PriceSheetVersion.objects.create(
        sheet_id="local-simulator", version=2, family="local", effective_from="2025-01-02",
        parameters={"evidence_storage_usd": str(cost)},
    )


@pytest.fixture(scope="module", autouse=True)
def _no_commit_flush(django_db_setup, django_db_blocker):
    """These tests commit thousands of short transactions: on the test database, let commits
    return before their WAL reaches the disk (``synchronous_commit = off``). Locking, visibility
    and constraints are unchanged; only crash durability of the throwaway test data is given up.
    Applies to connections opened afterwards (every submitter thread opens its own)."""
    with django_db_blocker.unblock():
        if connection.vendor != "postgresql":
            yield
            return
        name = connection.settings_dict["NAME"]
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        connection.close()
    yield
    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{name}" RESET synchronous_commit')
        connection.close()


@pytest.fixture
def priced():
    """Local jobs cost COST; the sheet cache is dropped afterwards so no later test (whose
    flush removed the row without a signal) prices with it."""
    from finops.sheets import sheets_forget

    sheets_forget()
    publish_local_price()
    yield COST
    sheets_forget()


@pytest.fixture
def enqueued(monkeypatch):
    """No broker in tests means Celery runs eagerly, in-process: a submit would execute the job
    right after commit (and settle it). Record the enqueue instead."""
    calls: list[str] = []
    lock = threading.Lock()

    def record(job_id, queue):
        with lock:
            calls.append(job_id)

    monkeypatch.setattr("qcos.jobs.services._enqueue", record)
    return calls


def principal_of(actor, role: str = "researcher"):
    from qcos.tenancy.principal import Principal

    return Principal(user=actor.user, tenant=actor.tenant, roles=frozenset({role}))


def submit(principal, *, project: str = "quantum-ml", circuit: str = TINY, shots: int = 1, **kwargs):
    from qcos.jobs import services

    return services.job_submit(principal=principal, circuit=circuit, backend="simulator", shots=shots,
                               project_slug=project, render=lambda job: {"job_id": job.id}, **kwargs).job


def policy(tenant, project=None, **fields):
    from finops.models import BudgetPolicy

    return BudgetPolicy.objects.create(tenant=tenant, project=project, **fields)


@dataclass
class Outcomes:
    admitted: list[str] = field(default_factory=list)
    refused: list[object] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, value) -> None:
        with self.lock:
            getattr(self, kind).append(value)


def _connect_patiently() -> None:
    """Open this thread's connection; while the shared server says "too many clients" (other test
    runs took the free slots after we counted them), wait and retry for up to 30 s."""
    from django.db import OperationalError

    deadline = time.monotonic() + 30
    while True:
        try:
            connection.ensure_connection()
            return
        except OperationalError as exc:
            if "too many clients" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.1, 0.5))


def run_together(tasks, *, outcomes: Outcomes | None = None) -> Outcomes:
    """Run each callable in its own thread with its own database connection, all released at once
    by a barrier (connections are opened before the barrier, so the race is not a connect storm).
    A callable's return value is an admitted job id (or None); BudgetExceeded counts as refused,
    anything else as an error. Each thread closes its connection at its end."""
    from qcos.errors import BudgetExceeded

    outcomes = outcomes or Outcomes()
    barrier = threading.Barrier(len(tasks))

    def body(task):
        try:
            _connect_patiently()
            barrier.wait(BARRIER_TIMEOUT)
            try:
                result = task()
            except BudgetExceeded as refused:
                outcomes.add("refused", refused)
            else:
                if result is not None:
                    outcomes.add("admitted", result)
        except Exception as exc:  # noqa: BLE001 - every other failure is a test failure, reported below
            outcomes.add("errors", f"{type(exc).__name__}: {exc}")
            barrier.abort()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=body, args=(task,), daemon=True) for task in tasks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BARRIER_TIMEOUT + 60)
    assert not any(t.is_alive() for t in threads), "a submitter hung (lock wait or deadlock?)"
    return outcomes


def window_totals():
    from finops.models import BudgetWindow, Charge, ChargeStatus

    held: Counter[int] = Counter()
    settled: Counter[int] = Counter()
    for charge in Charge.objects.filter(status__in=[ChargeStatus.HELD, ChargeStatus.SETTLED]):
        for window_id in charge.windows:
            if charge.status == ChargeStatus.HELD:
                held[window_id] += charge.reserved_micros
            else:
                settled[window_id] += charge.settled_micros
    return list(BudgetWindow.objects.select_related("policy").order_by("id")), held, settled


def assert_never_overspent(*, exact: bool = True, baseline_spent: int = 0) -> None:
    """spent + reserved <= limit on every hard window; with ``exact``, each window's reservation
    and spending are exactly the sums of its HELD and SETTLED charges (no lost or double update)."""
    windows, held, settled = window_totals()
    for w in windows:
        label = f"window {w.pk} ({w.kind} {w.period_start}, policy {w.policy_id}, limit {w.limit_micros})"
        assert w.reserved_micros >= 0 and w.spent_micros >= 0, label
        if w.hard:
            assert w.spent_micros + w.reserved_micros <= w.limit_micros, (
                f"{label}: spent {w.spent_micros} + reserved {w.reserved_micros} > limit")
        if exact:
            assert w.reserved_micros == held[w.pk], f"{label}: reserved {w.reserved_micros} != HELD {held[w.pk]}"
            assert w.spent_micros == settled[w.pk] + baseline_spent, (
                f"{label}: spent {w.spent_micros} != SETTLED {settled[w.pk]}")


# --- no overspend: 20 rounds ------------------------------------------------------------------------

WINDOWS = ["tenant-month", "tenant-day", "project-month", "project-day", "all"]


def _round_plan(round_no: int, submitters: int) -> dict:
    """Deterministic per round: which window binds, k, and spending already in the windows (when
    there is none, the windows do not exist yet and the submitters race to create them)."""
    rng = random.Random(4_000 + round_no)
    k = {0: 37, 1: 0, 2: 1}.get(round_no, rng.randint(2, max(2, submitters // 2)))
    k = min(k, submitters - 1)
    binding = WINDOWS[round_no % len(WINDOWS)]
    already_spent = rng.choice([0, 0, 7 * COST_MICROS, 123_456])
    return {"k": k, "binding": binding, "already_spent": already_spent}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_no", range(20))
def test_no_overspend_with_concurrent_submitters(round_no, postgres_only, alice, priced, enqueued):
    """N submitters at once against a budget with room for exactly k jobs: exactly k admitted.

    Both a tenant policy and a project policy apply (four windows: their days and months); each
    round one of them (or all four at once) has room for exactly k jobs. When a tenant window
    binds, half the submitters use a second project that only the tenant policy covers."""
    from django.utils import timezone

    from finops.models import BudgetWindow, Charge, ChargeStatus, WindowKind
    from finops.windows import window_periods
    from ledger.models import AuditEntry
    from qcos.jobs.models import QuantumJob
    from qcos.tenancy.models import Project

    submitters = submitter_count()
    plan = _round_plan(round_no, submitters)
    k, binding, spent = plan["k"], plan["binding"], plan["already_spent"]
    project = Project.objects.get(tenant=alice.tenant, slug="quantum-ml")
    Project.objects.create(tenant=alice.tenant, slug="other", name="other")
    roomy = Decimal(10 * submitters) * COST + Decimal("1000")

    def limit_for(name: str) -> Decimal:
        if binding in (name, "all"):
            return Decimal(spent + k * COST_MICROS) / Decimal(1_000_000)
        return roomy

    tenant_policy = policy(alice.tenant, monthly_limit_usd=limit_for("tenant-month"),
                           daily_limit_usd=limit_for("tenant-day"))
    project_policy = policy(alice.tenant, project, monthly_limit_usd=limit_for("project-month"),
                            daily_limit_usd=limit_for("project-day"))
    periods = window_periods(timezone.now())
    if spent:  # spending already settled this month and day (by earlier jobs) in every window
        for p in (tenant_policy, project_policy):
            for kind, limit in ((WindowKind.MONTH, p.monthly_limit_usd), (WindowKind.DAY, p.daily_limit_usd)):
                BudgetWindow.objects.create(policy=p, kind=kind, period_start=periods[kind],
                                            limit_micros=int(limit * 1_000_000), spent_micros=spent)

    principal = principal_of(alice)
    projects = ["quantum-ml", "other"] if binding.startswith("tenant") else ["quantum-ml"]
    tasks = [(lambda slug=projects[i % len(projects)]: submit(principal, project=slug).id) for i in range(submitters)]
    started = time.monotonic()
    outcomes = run_together(tasks)
    elapsed = time.monotonic() - started

    assert not outcomes.errors, outcomes.errors[:5]  # no deadlock, no error other than the refusal
    assert len(outcomes.admitted) == k, f"{len(outcomes.admitted)} admitted, expected exactly {k} ({plan})"
    assert len(outcomes.refused) == submitters - k
    assert all(r.code == "BUDGET_EXCEEDED" and r.http_status == 402 for r in outcomes.refused)

    windows = list(BudgetWindow.objects.order_by("id"))
    if k or spent:
        # A window exists once a committed job reserved in it (or spending was seeded): the tenant
        # policy's two always; the project policy's two only if an admitted job was in its project
        # (when a tenant window binds, every admitted job may have come from the other project).
        in_project = spent or QuantumJob.objects.filter(pk__in=outcomes.admitted, project=project).exists()
        expected = {(tenant_policy.pk, WindowKind.MONTH), (tenant_policy.pk, WindowKind.DAY)}
        if in_project:
            expected |= {(project_policy.pk, WindowKind.MONTH), (project_policy.pk, WindowKind.DAY)}
        assert sorted((w.policy_id, w.kind) for w in windows) == sorted(expected), "each window created once"
        assert {w.period_start for w in windows} == {periods[WindowKind.MONTH], periods[WindowKind.DAY]}
    assert_never_overspent(baseline_spent=spent)
    for w in windows:
        assert w.spent_micros == spent
        if w.policy_id == tenant_policy.pk:
            assert w.reserved_micros == k * COST_MICROS
        if binding == "all":
            assert w.spent_micros + w.reserved_micros == w.limit_micros  # filled exactly to the limit
    # Only the admitted jobs exist, each with one HELD charge in its windows; refusals left only
    # their BUDGET_EXCEEDED audit entry.
    admitted = set(outcomes.admitted)
    assert set(QuantumJob.objects.values_list("id", flat=True)) == admitted
    charges = list(Charge.objects.select_related("project"))
    assert {c.resource_id for c in charges} == admitted
    for c in charges:
        assert c.status == ChargeStatus.HELD and c.reserved_micros == c.estimated_micros == COST_MICROS
        expected = [w.pk for w in windows if w.policy_id == tenant_policy.pk or c.project_id == project.pk]
        assert sorted(c.windows) == expected
    assert sorted(enqueued) == sorted(admitted)
    actions = Counter(AuditEntry.objects.values_list("action", flat=True))
    assert actions["BUDGET_EXCEEDED"] == submitters - k
    assert actions["JOB_SUBMITTED"] == k
    denied = AuditEntry.objects.filter(action="BUDGET_EXCEEDED")
    assert all(e.outcome == "DENIED" and e.resource_id == "" for e in denied)
    print(f"round {round_no}: {submitters} submitters, k={k}, binding={binding}, spent={spent}, {elapsed:.2f}s")


# --- settlement and release keep the invariant --------------------------------------------------------


def _outcome():
    from workers.providers.base import ExecutionOutcome

    return ExecutionOutcome(counts={"1": 1}, execution_ms=1.0, execution_ms_source="test",
                            backend_version="test", metadata={})


def _claim(job_id: str) -> int:
    from qcos.jobs import services

    job = services.job_claim(job_id=job_id, worker="test-worker")
    assert job is not None
    return job.attempts


def _fill(principal, *, project: str = "quantum-ml") -> int:
    """Submit one job at a time until the budget refuses; how many were admitted."""
    from qcos.errors import BudgetExceeded

    admitted = 0
    while True:
        try:
            submit(principal, project=project)
        except BudgetExceeded:
            return admitted
        admitted += 1
        assert admitted < 1000


@pytest.mark.django_db(transaction=True)
def test_settle_release_and_submit_mix_keeps_the_invariant(postgres_only, alice, priced, enqueued):
    """Completions (settle), failures, cancellations and new submits, all at once, on a full budget:
    never overspent, each window equal to its charges, and nothing leaks: afterwards the budget
    admits exactly the jobs its remaining room pays for."""
    from finops.models import BudgetWindow, Charge, ChargeStatus
    from qcos.jobs import services
    from qcos.jobs.models import QuantumJob
    from qcos.jobs.states import JobStatus
    from qcos.tenancy.models import Project

    capacity = 30
    project = Project.objects.get(tenant=alice.tenant, slug="quantum-ml")
    policy(alice.tenant, monthly_limit_usd=capacity * COST, daily_limit_usd=1000)
    policy(alice.tenant, project, daily_limit_usd=capacity * COST)
    principal = principal_of(alice)
    assert _fill(principal) == capacity
    jobs = list(QuantumJob.objects.order_by("submitted_at", "id").values_list("id", flat=True))
    completing, failing, cancelling = jobs[:8], jobs[8:16], jobs[16:24]
    attempts = {job_id: _claim(job_id) for job_id in completing + failing}

    def complete(job_id):
        return lambda: services.job_complete(job_id=job_id, attempt=attempts[job_id], worker="test-worker",
                                             outcome=_outcome()) and None

    def fail(job_id):
        return lambda: services.job_fail(job_id=job_id, attempt=attempts[job_id], code="BACKEND_ERROR",
                                         message="test", transient=False) and None

    def cancel(job_id):
        return lambda: services.job_cancel(principal=principal, job=QuantumJob.objects.get(pk=job_id)) and None

    tasks = ([complete(j) for j in completing] + [fail(j) for j in failing] + [cancel(j) for j in cancelling]
             + [lambda: submit(principal).id] * 24)
    random.Random(7).shuffle(tasks)
    outcomes = run_together(tasks)

    assert not outcomes.errors, outcomes.errors[:5]
    assert_never_overspent()
    statuses = dict(QuantumJob.objects.values_list("id", "status"))
    charges = {c.resource_id: c for c in Charge.objects.all()}
    for job_id in completing:
        assert statuses[job_id] == JobStatus.COMPLETED and charges[job_id].status == ChargeStatus.SETTLED
        assert charges[job_id].settled_micros == COST_MICROS  # storage is what a local job costs
    for job_id in failing:
        assert statuses[job_id] == JobStatus.FAILED and charges[job_id].status == ChargeStatus.RELEASED
    for job_id in cancelling:
        assert statuses[job_id] == JobStatus.CANCELLED and charges[job_id].status == ChargeStatus.RELEASED
    new, released = len(outcomes.admitted), len(failing) + len(cancelling)
    assert new <= released  # room came back only from failures and cancellations
    for w in BudgetWindow.objects.all():
        assert w.spent_micros == len(completing) * COST_MICROS  # spent reflects the settled costs
    # Nothing leaked: the room left pays for exactly the released jobs not yet taken again.
    assert _fill(principal) == released - new
    for w in BudgetWindow.objects.filter(hard=True).exclude(limit_micros=1000 * 1_000_000):
        assert w.spent_micros + w.reserved_micros == w.limit_micros
    assert_never_overspent()


@pytest.mark.django_db(transaction=True)
def test_concurrent_settle_and_release_of_one_charge_exactly_one_wins(postgres_only, alice, priced, enqueued):
    """A completion and a cancellation/failure racing on the same reservation: one of them takes
    it, the windows move once."""
    from finops import settlements
    from finops.models import BudgetWindow, Charge, ChargeStatus

    policy(alice.tenant, monthly_limit_usd=100, daily_limit_usd=100)
    principal = principal_of(alice)
    job_ids = [submit(principal).id for _ in range(15)]

    def settle(job_id):
        def run():
            with transaction.atomic():
                settlements.charge_settle(resource_type="quantum_job", resource_id=job_id)
        return run

    def release(job_id):
        def run():
            with transaction.atomic():
                settlements.charge_release(resource_type="quantum_job", resource_id=job_id)
        return run

    tasks = [f(j) for j in job_ids for f in (settle, release, settle, release)]
    random.Random(11).shuffle(tasks)
    outcomes = run_together(tasks)
    assert not outcomes.errors, outcomes.errors[:5]
    charges = list(Charge.objects.all())
    settled = [c for c in charges if c.status == ChargeStatus.SETTLED]
    assert len(settled) + sum(c.status == ChargeStatus.RELEASED for c in charges) == 15
    for w in BudgetWindow.objects.all():
        assert w.reserved_micros == 0
        assert w.spent_micros == len(settled) * COST_MICROS
    assert_never_overspent()


@pytest.mark.django_db(transaction=True)
def test_concurrent_http_submits_answer_202_or_402_never_500(postgres_only, alice, priced, enqueued):
    """The same race through the API: each thread its own APIClient (and connection); exactly k
    answers 202, the rest 402 BUDGET_EXCEEDED, nothing else."""
    from rest_framework.test import APIClient

    from tests.factories import job_body

    k, submitters = 7, min(24, submitter_count())
    policy(alice.tenant, monthly_limit_usd=k * COST)

    def post():
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=alice.key)
        response = client.post("/api/v2.1/jobs", job_body(TINY, shots=1), format="json")
        if response.status_code == 402:
            assert response.json()["error"]["code"] == "BUDGET_EXCEEDED", response.json()
            return None
        assert response.status_code == 202, (response.status_code, response.content[:300])
        return response.json()["job_id"]

    outcomes = run_together([post] * submitters)
    assert not outcomes.errors, outcomes.errors[:5]
    assert len(outcomes.admitted) == k
    assert_never_overspent()
