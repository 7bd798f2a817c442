"""Chargeback report figure on PostgreSQL (issue 4, FinOps): a month of 1,000,000 settled jobs
aggregated by tenant × project × backend into CSV, through ``finops.reports`` (the code the Celery
task runs), target ≤ 3 s.

    .venv/bin/python perf/reports.py [--charges 1000000] [--repeat 5] [--keep-db]

It creates (and drops) the database ``qcos_perf_reports`` on 127.0.0.1:5432 (migrated), loads the
charges with one ``COPY`` (psycopg 3 ``cursor.copy``): rows as wide as real ones (the estimate and
breakdown JSON of a real price), spread over 8 tenants × 6 projects × the whole backend catalogue and
every second of January 2026, plus 5 % released and a spill-over into the neighbouring months that
the report must skip. Then it times:

1. the operator-wide report (all tenants, every one of the 1,000,000 charges): ``reports.build``;
2. one tenant's report through the service a worker runs (``report_build``: claim, aggregate,
   write, store, audit);
3. the FOCUS file of the same month (per-day rows), for reference.

Each is repeated ``--repeat`` times; the minimum and median are printed with the load average.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB = "qcos_perf_reports"
BASE_URL = "postgres://postgres@127.0.0.1:5432"
TENANTS, PROJECTS = 8, 6


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = f"{BASE_URL}/{DB}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "qcos.settings"
    import django

    django.setup()


def psql(sql: str, db: str = "postgres") -> None:
    subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-c", sql], check=True)


def create_database() -> None:
    psql(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{DB}"')
    env = {**os.environ, "DATABASE_URL": f"{BASE_URL}/{DB}"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)


def load(charges: int) -> dict[str, int]:
    """Tenants, projects and ``charges`` settled January charges (plus released and off-month rows)."""
    import orjson
    from django.db import connection

    from finops.catalog import BACKENDS
    from finops.models import Charge
    from finops.pricing import estimate
    from qcos.jobs import circuits
    from qcos.tenancy.models import Project, Tenant

    tenants = [Tenant.objects.create(slug=f"tenant-{t:02d}", name=f"Tenant {t}") for t in range(TENANTS)]
    projects = [(t.pk, Project.objects.create(tenant=t, slug=f"project-{p}", name=f"Project {p}").pk)
                for t in tenants for p in range(PROJECTS)]
    bell = circuits.parse_circuit('OPENQASM 3.0; include "stdgates.inc"; qubit[2] q; bit[2] c; h q[0]; '
                                  "cx q[0], q[1]; c = measure q;")
    priced = {}
    for name in BACKENDS:
        try:
            priced[name] = estimate(bell, name, 1000)
        except Exception:  # a backend whose formula needs more than this circuit: leave it out
            continue
    backends = sorted(priced)
    estimates = {b: orjson.dumps(priced[b].as_dict()).decode() for b in backends}
    breakdowns = {b: orjson.dumps({k: str(v) for k, v in priced[b].breakdown.items()}).decode() for b in backends}
    micros = {b: max(1, int(priced[b].cost_usd * 1_000_000)) for b in backends}
    fields = [f for f in Charge._meta.concrete_fields if f.name != "id"]
    columns = [f.column for f in fields]
    rng = random.Random(20260101)
    month = datetime(2026, 1, 1, tzinfo=UTC)
    seconds = 31 * 86400
    extra = charges // 20  # released (not costs) and settled outside January (not in the report)
    counts = {"settled_in_january": 0, "released": 0, "outside_january": 0}
    started = time.perf_counter()
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg 3 cursor under Django's wrapper
        with raw.copy(f"COPY {Charge._meta.db_table} ({', '.join(columns)}) FROM STDIN") as copy:
            for n in range(charges + 2 * extra):
                tenant_id, project_id = projects[rng.randrange(len(projects))]
                backend = backends[rng.randrange(len(backends))]
                shots = rng.choice((100, 1000, 1024, 4000, 10000))
                settled_at = month + timedelta(seconds=rng.randrange(seconds), microseconds=rng.randrange(10**6))
                status, settled = "SETTLED", micros[backend] * shots // 1000
                if n >= charges:
                    if n < charges + extra:
                        status, counts["released"] = "RELEASED", counts["released"] + 1
                    else:
                        settled_at += timedelta(days=rng.choice((-40, 40)))
                        counts["outside_january"] += 1
                else:
                    counts["settled_in_january"] += 1
                values = {
                    "tenant_id": tenant_id, "project_id": project_id, "resource_type": "quantum_job",
                    "resource_id": f"job-perf{n:012d}", "backend": backend, "shots": shots, "tier": "standard",
                    "tags": '{"experiment": "exp-%d"}' % (n % 50), "price_sheet_id": priced[backend].price_sheet_id,
                    "price_sheet_version": priced[backend].price_sheet_version, "estimate": estimates[backend],
                    "estimated_micros": max(settled, 1), "reserved_micros": 0,
                    "settled_micros": settled if status == "SETTLED" else None,
                    "breakdown": breakdowns[backend] if status == "SETTLED" else "{}", "windows": "[]",
                    "over_limit": False, "status": status, "created_at": settled_at - timedelta(seconds=5),
                    "settled_at": settled_at if status == "SETTLED" else None,
                }
                copy.write_row([values.get(f.attname, _default(f)) for f in fields])
    print(f"loaded {charges + 2 * extra:,} charges in {time.perf_counter() - started:.1f} s "
          f"({len(tenants)} tenants × {PROJECTS} projects × {len(backends)} backends): {counts}")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {Charge._meta.db_table}")
    print(f"VACUUM ANALYZE in {time.perf_counter() - started:.1f} s")
    return counts


def _default(field):
    """Columns added to ``Charge`` after this script was written: their default, as COPY text."""
    if field.has_default():
        value = field.get_default()
        if isinstance(value, (dict, list)):
            import orjson

            return orjson.dumps(value).decode()
        return value
    return "" if not field.null else None


def timed(fn, repeat: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return times, result


def describe(label: str, times: list[float]) -> None:
    print(f"{label}: min {min(times):.3f} s, median {statistics.median(times):.3f} s, max {max(times):.3f} s "
          f"({len(times)} runs; load average {os.getloadavg()[0]:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--charges", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep-db", action="store_true", help="keep qcos_perf_reports afterwards")
    parser.add_argument("--reuse-db", action="store_true", help="use the loaded qcos_perf_reports as it is")
    args = parser.parse_args()
    if not args.reuse_db:
        create_database()
    setup_django()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from finops import report_services, reports
    from finops.models import Charge, ChargebackReport
    from qcos.tenancy.models import Tenant

    try:
        if not args.reuse_db:
            load(args.charges)
        print(f"load average before timing: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
              f"PostgreSQL {connection.cursor().connection.info.server_version}")
        january = dict(report_type="chargeback", start_date=date(2026, 1, 1), end_date=date(2026, 1, 31))
        spec = reports.report_spec(group_by=["tenant", "project", "backend"], format="csv", **january)

        times, built = timed(lambda: reports.build(spec, tenant_ids=None), args.repeat)
        lines = built.content.decode().splitlines()
        total_jobs = sum(int(line.split(",")[3]) for line in lines[1:])
        print(f"\n{built.rows} rows, {len(built.content):,} bytes, {total_jobs:,} jobs counted; first rows:")
        print("\n".join(lines[:4]))
        describe(f"FIGURE: {total_jobs:,} charges → tenant × project × backend CSV (all tenants)", times)

        tenant = Tenant.objects.get(slug="tenant-00")
        user, _ = get_user_model().objects.get_or_create(username="perf@reports.example")

        def service_path():
            report = ChargebackReport.objects.create(
                id=f"rep-perf-{time.monotonic_ns()}", tenant=tenant, requested_by=user, start_date=date(2026, 1, 1),
                end_date=date(2026, 1, 31), group_by=["tenant", "project", "backend"], format="csv")
            assert report_services.report_build(report_id=report.id) == "READY"
            return report.id

        jobs = Charge.objects.filter(tenant=tenant, status="SETTLED", settled_at__gte=datetime(2026, 1, 1, tzinfo=UTC),
                                     settled_at__lt=datetime(2026, 2, 1, tzinfo=UTC)).count()
        times, _ = timed(service_path, args.repeat)
        describe(f"one tenant ({jobs:,} charges) through report_build (claim, aggregate, store, audit)", times)

        focus = reports.report_spec(group_by=["tenant", "project", "backend"], format="focus", **january)
        times, built = timed(lambda: reports.build(focus, tenant_ids=None), max(1, args.repeat // 2))
        describe(f"FOCUS 1.2, per-day rows, all tenants ({built.rows:,} rows)", times)
    finally:
        connection.close()
        if not args.keep_db:
            psql(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')


if __name__ == "__main__":
    main()
