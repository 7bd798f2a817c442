#!/usr/bin/env python
"""Budgets that never overspend, under load (issue 4, FinOps), on PostgreSQL.

    .venv/bin/python perf/budget.py [--rounds 100] [--submitters 200] [--figure-processes 32]
                                    [--figure-attempts 6400] [--repeat 3] [--keep-db]

It creates (and drops) its own database ``qcos_perf_budget`` on 127.0.0.1:5432 (migrated), publishes a
local-simulator price-sheet version that makes every job cost $0.012345 (evidence storage), and runs:

(a) **Stress**: the suite's no-overspend scenario ``--rounds`` times. Each round a fresh tenant gets a
    tenant policy and a project policy (UTC day and month windows each, all ``block``); one of the four
    windows -- or all four -- has room for exactly k jobs (k varies per round), and ``--submitters``
    threads, each with its own PostgreSQL connection, released together by a barrier, call the real
    ``qcos.jobs.services.job_submit``. Checked per round: exactly k admitted, the others refused with
    BUDGET_EXCEEDED and nothing else (no deadlock), ``spent + reserved <= limit`` in every window and
    each window's reservation equal to the sum of its HELD charges, one BUDGET_EXCEEDED audit entry
    per refusal and no job or charge left by a refusal. Every violation is printed; the exit status
    is 1 if there was any. The submitter threads and their connections live for the whole stress
    phase (one connection each, opened once). With no broker configured, Celery would run each
    admitted job in-process after commit; the script replaces the enqueue with a no-op.

(b) **Figure**: reservations per second with ``--figure-processes`` concurrent submitter processes
    (no GIL between them), each with its own connection, each reservation one transaction through
    ``finops.reservations.budget_admit`` -- the policies looked up as ``job_submit`` does, then in the
    transaction: window lookup (``windows_open``), conditional UPDATE of each window, charge INSERT.
    The budget (tenant and project policies, day and month windows: four rows every reservation
    locks) admits ``--figure-admit`` of the ``--figure-attempts`` reservations, so the last ones are
    refused. Printed: admitted reservations/s over the wall time from the barrier to the last
    process's end, attempts/s, deadlocks, the CPU each attempt cost in the submitter and in its
    PostgreSQL backend (so the ceiling two idle cores would allow), and where the sessions were
    (pg_stat_activity sampled every 50 ms: lock waits, waiting for the client, running, with the
    statement); then zero overspend is asserted
    (``spent + reserved <= limit`` in every window, reserved == HELD charges, admitted ==
    ⌊limit / cost⌋ exactly). Repeated ``--repeat`` times with the load average.

``--submitters`` is capped at the free connections of the server minus a headroom of 25 (the
development server has max_connections = 100, shared with other engineers); the cap is printed.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB = "qcos_perf_budget"
BASE_URL = "postgres://postgres@127.0.0.1:5432"
COST = Decimal("0.012345")
COST_MICROS = 12_345
HEADROOM = 25
TINY = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[1];\nx q[0];\nmeasure q -> c;\n'


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = f"{BASE_URL}/{DB}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "qcos.settings"
    os.environ.setdefault("QCOS_KEY_DIR", str(Path("/tmp") / f"qcos-perf-budget-keys-{os.getpid()}"))
    import django

    django.setup()


def psql(sql: str, db: str = "postgres") -> None:
    from urllib.parse import urlsplit

    server = urlsplit(BASE_URL)
    subprocess.run(["psql", "-q", "-h", server.hostname or "127.0.0.1", "-p", str(server.port or 5432),
                    "-U", server.username or "postgres", "-d", db, "-c", sql], check=True)


def create_database() -> None:
    psql(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{DB}"')
    env = {**os.environ, "DATABASE_URL": f"{BASE_URL}/{DB}"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)


def free_connections() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('max_connections')::int - "
                       "current_setting('superuser_reserved_connections')::int - "
                       "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')")
        return cursor.fetchone()[0]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def world(name: str, *, project_slugs=("main",)):
    """A tenant with projects and one researcher (the principal job_submit takes)."""
    from qcos.tenancy import services
    from qcos.tenancy.principal import Principal

    tenant, _ = services.tenant_get_or_create(slug=name)
    projects = [services.project_get_or_create(tenant=tenant, slug=slug)[0] for slug in project_slugs]
    user, _ = services.user_get_or_create(email=f"researcher@{name}.example")
    services.membership_set(tenant=tenant, user=user, role="researcher")
    return tenant, projects, Principal(user=user, tenant=tenant, roles=frozenset({"researcher"}))


def policies(tenant, project, limits: dict[str, Decimal]):
    from finops.models import BudgetPolicy

    tenant_policy = BudgetPolicy.objects.create(tenant=tenant, monthly_limit_usd=limits["tenant-month"],
                                                daily_limit_usd=limits["tenant-day"])
    project_policy = BudgetPolicy.objects.create(tenant=tenant, project=project,
                                                 monthly_limit_usd=limits["project-month"],
                                                 daily_limit_usd=limits["project-day"])
    return tenant_policy, project_policy


def window_violations(tenant) -> list[str]:
    """spent + reserved <= limit on every hard window of ``tenant``, and reserved equal to the sum of
    the HELD charges that name the window (callers check spent: they know the starting spend)."""
    from finops.models import BudgetWindow, Charge, ChargeStatus

    held: Counter[int] = Counter()
    for charge in Charge.objects.filter(tenant=tenant, status=ChargeStatus.HELD):
        for window_id in charge.windows:
            held[window_id] += charge.reserved_micros
    problems = []
    for w in BudgetWindow.objects.filter(policy__tenant=tenant).order_by("id"):
        label = f"window {w.pk} ({w.kind} {w.period_start}, limit {w.limit_micros})"
        if w.hard and w.spent_micros + w.reserved_micros > w.limit_micros:
            problems.append(f"OVERSPENT {label}: spent {w.spent_micros} + reserved {w.reserved_micros}")
        if w.reserved_micros != held[w.pk]:
            problems.append(f"{label}: reserved {w.reserved_micros} != HELD charges {held[w.pk]}")
    return problems


# --- (a) stress: the suite's scenario, many rounds ------------------------------------------------


class SubmitterPool:
    """``size`` threads, each holding its own database connection for the pool's life; each round
    they wait on one barrier and then all run their task at once."""

    def __init__(self, size: int):
        self.size = size
        self.tasks: list = [None] * size
        self.results: list = [None] * size
        self.start_barrier = threading.Barrier(size + 1)
        self.done_barrier = threading.Barrier(size + 1)
        self.go = threading.Barrier(size)
        self.stopping = False
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(size)]
        for thread in self.threads:
            thread.start()

    def _run(self, index: int) -> None:
        from django.db import connection, connections

        from qcos.errors import BudgetExceeded

        try:
            while True:
                self.start_barrier.wait()
                if self.stopping:
                    return
                try:
                    connection.ensure_connection()
                    self.go.wait(120)
                    self.results[index] = ("admitted", self.tasks[index]())
                except BudgetExceeded as refused:
                    self.results[index] = ("refused", refused)
                except Exception as exc:  # noqa: BLE001 - reported as a violation
                    self.results[index] = ("error", f"{type(exc).__name__}: {exc}")
                self.done_barrier.wait()
        finally:
            connections.close_all()

    def run(self, tasks) -> list:
        self.tasks = list(tasks)
        self.results = [None] * self.size
        self.go.reset()
        self.start_barrier.wait()
        self.done_barrier.wait(600)
        return list(self.results)

    def close(self) -> None:
        self.stopping = True
        self.start_barrier.wait()
        for thread in self.threads:
            thread.join(30)


def stress(rounds: int, submitters: int) -> int:
    from django.utils import timezone

    from finops.models import BudgetWindow, Charge, ChargeStatus, WindowKind
    from finops.windows import window_periods
    from ledger.models import AuditEntry
    from qcos.jobs import services as jobs
    from qcos.jobs.models import QuantumJob

    kinds = ["tenant-month", "tenant-day", "project-month", "project-day", "all"]
    pool = SubmitterPool(submitters)
    violations = 0
    started = time.monotonic()
    try:
        for n in range(rounds):
            rng = random.Random(9_000 + n)
            k = rng.randint(0, submitters - 1) if n % 7 else rng.randint(0, 5)
            binding = kinds[n % len(kinds)]
            spent = rng.choice([0, 0, 5 * COST_MICROS, 123_456])
            tenant, (main, other), principal = world(f"stress-{n}", project_slugs=("main", "other"))
            roomy = Decimal(10 * submitters) * COST + 1000
            tight = Decimal(spent + k * COST_MICROS) / 1_000_000
            limits = {name: tight if binding in (name, "all") else roomy for name in kinds[:4]}
            tenant_policy, project_policy = policies(tenant, main, limits)
            periods = window_periods(timezone.now())
            if spent:
                for p in (tenant_policy, project_policy):
                    for kind, limit in ((WindowKind.MONTH, p.monthly_limit_usd), (WindowKind.DAY, p.daily_limit_usd)):
                        BudgetWindow.objects.create(policy=p, kind=kind, period_start=periods[kind],
                                                    limit_micros=int(limit * 1_000_000), spent_micros=spent)
            slugs = ["main", "other"] if binding.startswith("tenant") else ["main"]

            def task(slug):
                return lambda: jobs.job_submit(principal=principal, circuit=TINY, backend="simulator", shots=1,
                                               project_slug=slug, render=lambda job: {}).job.id

            t0 = time.monotonic()
            results = pool.run([task(slugs[i % len(slugs)]) for i in range(submitters)])
            elapsed = time.monotonic() - t0
            kinds_seen = Counter(kind for kind, _ in results)
            admitted = {value for kind, value in results if kind == "admitted"}
            problems = [value for kind, value in results if kind == "error"][:5]
            if len(admitted) != k:
                problems.append(f"{len(admitted)} admitted, expected exactly {k}")
            problems += window_violations(tenant)
            for w in BudgetWindow.objects.filter(policy__tenant=tenant):
                if w.spent_micros != spent:
                    problems.append(f"window {w.pk}: spent {w.spent_micros} != {spent}")
                if w.policy_id == tenant_policy.pk and w.reserved_micros != len(admitted) * COST_MICROS:
                    problems.append(f"tenant window {w.pk}: reserved {w.reserved_micros} != admitted x cost")
            jobs_left = set(QuantumJob.objects.filter(tenant=tenant).values_list("id", flat=True))
            charges = set(Charge.objects.filter(tenant=tenant, status=ChargeStatus.HELD).values_list("resource_id", flat=True))
            if jobs_left != admitted or charges != admitted or Charge.objects.filter(tenant=tenant).count() != len(admitted):
                problems.append(f"jobs {len(jobs_left)} / HELD charges {len(charges)} != admitted {len(admitted)}")
            refusals = AuditEntry.objects.filter(tenant_slug=tenant.slug, action="BUDGET_EXCEEDED").count()
            if refusals != kinds_seen["refused"]:
                problems.append(f"{refusals} BUDGET_EXCEEDED audit entries for {kinds_seen['refused']} refusals")
            status = "ok" if not problems else "VIOLATION"
            print(f"round {n + 1}/{rounds}: k={k:3d} binding={binding:13s} spent={spent:6d} admitted={len(admitted):3d} "
                  f"refused={kinds_seen['refused']:3d} errors={kinds_seen['error']} {elapsed:.2f}s {status}", flush=True)
            for problem in problems:
                print(f"    {problem}", flush=True)
            violations += bool(problems)
    finally:
        pool.close()
    print(f"stress: {rounds} rounds x {submitters} submitters in {time.monotonic() - started:.1f}s, "
          f"{violations} round(s) with violations (load average {load()})", flush=True)
    return violations


# --- (b) the figure: reservations per second -------------------------------------------------------


def _reserver(index: int, attempts: int, ids: dict, barrier, queue) -> None:
    """One submitter process: ``attempts`` reservations, one transaction each."""
    from django.db import connection, transaction

    from finops import reservations, windows
    from qcos.errors import BudgetExceeded
    from qcos.tenancy.models import Project, Tenant

    try:
        tenant = Tenant.objects.get(pk=ids["tenant"])
        project = Project.objects.get(pk=ids["project"])
        priced = ids["estimate"]
        admitted = refused = 0
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
        cpu0, pg0 = time.process_time(), _backend_cpu(backend)
        barrier.wait(120)
        t0 = time.monotonic()
        for i in range(attempts):
            policies = windows.policies_for(tenant=tenant, project=project)  # as job_submit, before its transaction
            try:
                with transaction.atomic():
                    reservations.budget_admit(tenant=tenant, project=project, estimate=priced, resource_type="perf",
                                              resource_id=f"r{ids['run']}-{index}-{i}", backend="simulator",
                                              shots=1, policies=policies)
                admitted += 1
            except BudgetExceeded:
                refused += 1
        t1 = time.monotonic()
        cpu = (time.process_time() - cpu0, _backend_cpu(backend) - pg0)
        queue.put((index, admitted, refused, t0, t1, None, cpu))
    except Exception as exc:  # noqa: BLE001
        queue.put((index, 0, 0, 0.0, 0.0, f"{type(exc).__name__}: {exc}", (0.0, 0.0)))
    finally:
        connection.close()


def _backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) a PostgreSQL backend has used (same machine: /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class WaitSampler(threading.Thread):
    """Samples pg_stat_activity of the figure's database every 50 ms: what the submitters' sessions
    are doing (waiting for a lock, for their client, running) and in which statement."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: Counter[str] = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        from django.db import connection

        try:
            with connection.cursor() as cursor:
                while not self.stop.is_set():
                    cursor.execute(
                        "SELECT coalesce(wait_event_type, 'CPU') || ':' || coalesce(wait_event, 'running') || ' ' "
                        "|| state || ' | ' || left(regexp_replace(query, '\\s+', ' ', 'g'), 48) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'", [DB])
                    self.samples.update(row[0] for row in cursor.fetchall())
                    time.sleep(0.05)
        finally:
            connection.close()

    def report(self, top: int = 6) -> None:
        total = sum(self.samples.values()) or 1
        print("    where the submitters' sessions were (pg_stat_activity samples):")
        for what, count in self.samples.most_common(top):
            print(f"      {100 * count / total:5.1f}%  {what}")


def lock_stats() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT xact_commit, xact_rollback, deadlocks FROM pg_stat_database WHERE datname = %s", [DB])
        commit, rollback, deadlocks = cursor.fetchone()
    return {"commits": commit, "rollbacks": rollback, "deadlocks": deadlocks}


def figure(run: int, processes: int, attempts: int, admit: int) -> tuple[float, list[str]]:
    from django.db import connections

    from finops.models import BudgetWindow, Charge, ChargeStatus
    from finops.estimates import price_estimate
    from qcos.jobs import circuits

    tenant, (project,), _ = world(f"figure-{run}")
    limit = Decimal(admit * COST_MICROS) / 1_000_000
    roomy = limit * 10
    policies(tenant, project, {"tenant-month": limit, "tenant-day": roomy, "project-month": roomy,
                               "project-day": roomy})
    priced = price_estimate(circuit=circuits.parse_circuit(TINY), backend="simulator", shots=1)
    assert priced.cost_usd == COST, priced.cost_usd
    ids = {"tenant": tenant.pk, "project": project.pk, "estimate": priced, "run": run}
    per_process = attempts // processes
    before = lock_stats()
    connections.close_all()  # nothing open crosses the fork
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(processes + 1), ctx.Queue()
    procs = [ctx.Process(target=_reserver, args=(i, per_process, ids, barrier, queue)) for i in range(processes)]
    for proc in procs:
        proc.start()
    sampler = WaitSampler()
    sampler.start()
    barrier.wait(120)
    wall0 = time.monotonic()
    results = [queue.get(timeout=900) for _ in procs]
    wall = time.monotonic() - wall0
    sampler.stop.set()
    sampler.join(10)
    for proc in procs:
        proc.join(30)
    errors = [r[5] for r in results if r[5]]
    admitted = sum(r[1] for r in results)
    refused = sum(r[2] for r in results)
    after = lock_stats()
    rate = admitted / wall
    print(f"run {run}: {processes} processes, {admitted:,} admitted + {refused:,} refused of {per_process * processes:,} "
          f"in {wall:.2f}s -> {rate:,.0f} reservations/s ({(admitted + refused) / wall:,.0f} attempts/s); "
          f"deadlocks {after['deadlocks'] - before['deadlocks']}; load average {load()}", flush=True)
    attempts_done = max(1, admitted + refused)
    python_cpu = sum(r[6][0] for r in results) / attempts_done * 1000
    postgres_cpu = sum(r[6][1] for r in results) / attempts_done * 1000
    print(f"    CPU per attempt: {python_cpu:.2f} ms in the submitter (Python) + {postgres_cpu:.2f} ms in its "
          f"PostgreSQL backend -> {2000 / (python_cpu + postgres_cpu):,.0f}/s is the ceiling of 2 idle cores", flush=True)
    sampler.report()
    problems = list(errors[:5])
    expected = min(per_process * processes, admit)
    if admitted != expected:
        problems.append(f"{admitted} admitted, expected exactly {expected}")
    problems += window_violations(tenant)
    held = Charge.objects.filter(tenant=tenant, status=ChargeStatus.HELD).count()
    if held != admitted or Charge.objects.filter(tenant=tenant).count() != admitted:
        problems.append(f"{held} HELD charges for {admitted} admitted")
    binding = BudgetWindow.objects.get(policy__tenant=tenant, policy__project=None, kind="month")
    print(f"    tenant monthly window: limit {binding.limit_micros:,} µ$, reserved {binding.reserved_micros:,} µ$, "
          f"spent {binding.spent_micros:,} µ$ -> {'zero overspend' if not problems else 'VIOLATION'}", flush=True)
    for problem in problems:
        print(f"    {problem}", flush=True)
    return rate, problems


def main() -> None:
    global BASE_URL
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=100, help="stress rounds (0: skip the stress phase)")
    parser.add_argument("--submitters", type=int, default=200, help="threads per stress round (capped by connections)")
    parser.add_argument("--figure-processes", type=int, default=32)
    parser.add_argument("--figure-attempts", type=int, default=6_400, help="reservations attempted per figure run")
    parser.add_argument("--figure-admit", type=int, default=6_000, help="reservations the figure's budget admits")
    parser.add_argument("--repeat", type=int, default=3, help="figure runs")
    parser.add_argument("--keep-db", action="store_true", help=f"keep {DB} afterwards")
    parser.add_argument("--base-url", default=BASE_URL,
                        help="PostgreSQL server URL without a database (default: the machine's, %(default)s)")
    parser.add_argument("--exact-submitters", action="store_true",
                        help="fail instead of running fewer submitters when connections are short")
    args = parser.parse_args()
    BASE_URL = args.base_url.rstrip("/")
    create_database()
    setup_django()
    from django.db import connection, connections

    from finops.models import PriceSheetVersion
    from qcos.jobs import services as jobs

    # No broker here: Celery would run each admitted job in-process right after commit.
    jobs._enqueue = lambda job_id, queue: None
    failed = False
    try:
        PriceSheetVersion.objects.create(sheet_id="local-simulator", version=2, family="local",
                                         effective_from="2025-01-02", parameters={"evidence_storage_usd": str(COST)})
        print(f"PostgreSQL {connection.cursor().connection.info.server_version}; load average {load()}", flush=True)
        if args.rounds:
            free = free_connections()
            submitters = min(args.submitters, free - HEADROOM)
            if submitters < args.submitters and args.exact_submitters:
                print(f"only {free} connections free: cannot run {args.submitters} submitters", flush=True)
                sys.exit(2)
            if submitters < args.submitters:
                print(f"only {free} connections free: {submitters} submitters per round instead of {args.submitters} "
                      f"(keeping {HEADROOM} for others)", flush=True)
            failed |= bool(stress(args.rounds, submitters))
        rates = []
        for run in range(1, args.repeat + 1):
            connections.close_all()
            rate, problems = figure(run, args.figure_processes, args.figure_attempts, args.figure_admit)
            rates.append(rate)
            failed |= bool(problems)
        if rates:
            print(f"FIGURE: {statistics.median(rates):,.0f} reservations/s median with {args.figure_processes} "
                  f"concurrent submitters (runs: {', '.join(f'{r:,.0f}' for r in rates)}), "
                  f"{'zero overspend' if not failed else 'VIOLATIONS (see above)'}", flush=True)
    finally:
        connections.close_all()
        if not args.keep_db:
            psql(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
