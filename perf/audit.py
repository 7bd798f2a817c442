"""Audit log figures on PostgreSQL (issue "ledger"):

1. append throughput with N concurrent writers (processes, each its own connection, each entry its
   own transaction), printed beside plain INSERTs of the same payload into an ordinary table;
2. verification time of a chain of M entries (``audit_verify``, the same code as
   ``manage.py verify_audit``).

    .venv/bin/python perf/audit.py [--writers 16] [--seconds 10] [--entries 1000000]

It creates (and drops) the database ``qcos_perf_audit`` on 127.0.0.1:5432 unless --keep-db.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB = "qcos_perf_audit"
BASE_URL = "postgres://postgres@127.0.0.1:5432"


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = f"{BASE_URL}/{DB}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qcos.settings")
    import django

    django.setup()


def psql(sql: str, db: str = "postgres") -> None:
    subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-c", sql], check=True)


def create_database() -> None:
    psql(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{DB}"')
    env = {**os.environ, "DATABASE_URL": f"{BASE_URL}/{DB}"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    psql("CREATE TABLE plain_log (id bigserial PRIMARY KEY, ts timestamptz NOT NULL, tenant text NOT NULL, "
         "action text NOT NULL, payload text NOT NULL)", DB)


def _audit_writer(index: int, barrier, seconds: float, queue) -> None:
    setup_django()
    from django.db import connection, transaction

    from ledger.audit import audit_append, system_principal

    principal = system_principal(f"writer-{index}", f"tenant-{index % 4}")
    connection.ensure_connection()
    barrier.wait()
    deadline = time.time() + seconds
    count = 0
    while time.time() < deadline:
        with transaction.atomic():
            audit_append(action="JOB_SUBMITTED", principal=principal, resource_type="quantum_job",
                         resource_id=f"job-{index}-{count}", details={"backend": "simulator", "shots": 1024})
        count += 1
    queue.put(count)


def _plain_writer(index: int, barrier, seconds: float, queue) -> None:
    """The baseline: the same stack (Django, one transaction per row), an ordinary table."""
    setup_django()
    from django.db import connection, transaction

    payload = json.dumps({"action": "JOB_SUBMITTED", "details": {"backend": "simulator", "shots": 1024},
                          "principal": {"user_id": f"system:writer-{index}"}}, separators=(",", ":"))
    connection.ensure_connection()
    barrier.wait()
    deadline = time.time() + seconds
    count = 0
    while time.time() < deadline:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("INSERT INTO plain_log (ts, tenant, action, payload) VALUES (now(), %s, %s, %s)",
                           (f"tenant-{index % 4}", "JOB_SUBMITTED", payload))
        count += 1
    queue.put(count)


def _raw_writer(index: int, barrier, seconds: float, queue) -> None:
    """For reference: bare psycopg in autocommit, no framework at all."""
    import psycopg

    payload = json.dumps({"action": "JOB_SUBMITTED"}, separators=(",", ":"))
    count = 0
    with psycopg.connect(f"{BASE_URL}/{DB}", autocommit=True) as conn:
        barrier.wait()
        deadline = time.time() + seconds
        while time.time() < deadline:
            conn.execute("INSERT INTO plain_log (ts, tenant, action, payload) VALUES (now(), %s, %s, %s)",
                         (f"tenant-{index % 4}", "JOB_SUBMITTED", payload))
            count += 1
    queue.put(count)


def run_writers(target, writers: int, seconds: float) -> float:
    """Every writer imports and connects first, then all start together (a barrier)."""
    queue = mp.Queue()
    barrier = mp.Barrier(writers)
    procs = [mp.Process(target=target, args=(i, barrier, seconds, queue)) for i in range(writers)]
    for proc in procs:
        proc.start()
    total = sum(queue.get(timeout=seconds + 300) for _ in procs)
    for proc in procs:
        proc.join()
    return total / seconds


def fill_chain(entries: int) -> None:
    """Write a linked chain of ``entries`` entries directly (COPY), as the sequencer would leave it."""
    import psycopg

    from ledger.audit import GENESIS, chain_hash

    setup_django()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    prev = GENESIS
    buffer = io.StringIO()
    t0 = time.perf_counter()
    for seq in range(1, entries + 1):
        moment = start + timedelta(microseconds=seq * 1000)
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        audit_id = f"audit-perf-{seq:010d}"
        tenant = f"tenant-{seq % 7}"
        # Keys sorted, ASCII strings and small integers only: json.dumps gives the RFC 8785 bytes.
        payload = json.dumps(
            {"action": "JOB_COMPLETED", "audit_id": audit_id, "details": {"attempt": 1, "shots": 1024},
             "outcome": "SUCCESS", "principal": {"roles": ["system"], "tenant_id": tenant, "user_id": "system:worker",
                                                 "username": "worker"},
             "resource": {"id": f"job-{seq}", "type": "quantum_job"}, "tenant_id": tenant, "timestamp": stamp},
            separators=(",", ":"), sort_keys=True,
        )
        entry_hash = chain_hash(prev, payload)
        buffer.write("\t".join([audit_id, moment.isoformat(), tenant, "JOB_COMPLETED", "quantum_job", f"job-{seq}",
                                "SUCCESS", payload.replace("\\", "\\\\"), str(seq), prev, entry_hash]) + "\n")
        prev = entry_hash
    print(f"  generated {entries:,} linked entries in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    with psycopg.connect(f"{BASE_URL}/{DB}", autocommit=True) as conn, conn.cursor() as cur:
        with cur.copy("COPY ledger_auditentry (audit_id, timestamp, tenant_slug, action, resource_type, resource_id, "
                      "outcome, payload, seq, prev_hash, entry_hash) FROM STDIN") as copy:
            copy.write(buffer.getvalue())
        cur.execute("VACUUM ANALYZE ledger_auditentry")
    print(f"  loaded with COPY in {time.perf_counter() - t0:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    os.chdir(ROOT)
    # Published checkpoints outlive the scratch database: keep them out of var/ and start empty.
    os.environ.setdefault("QCOS_AUDIT_CHECKPOINT_DIR", tempfile.mkdtemp(prefix="qcos-perf-audit-checkpoints-"))
    create_database()
    try:
        print(f"append: {args.writers} writer processes, {args.seconds:.0f} s each, one transaction per entry")
        raw = run_writers(_raw_writer, args.writers, args.seconds)
        plain = run_writers(_plain_writer, args.writers, args.seconds)
        audit = run_writers(_audit_writer, args.writers, args.seconds)
        setup_django()
        from ledger.audit import audit_verify
        from ledger.models import AuditEntry

        t0 = time.perf_counter()
        report = audit_verify()
        print(f"  sequenced and verified the {report.entries_checked:,} appended entries in "
              f"{time.perf_counter() - t0:.1f} s: ok={report.ok}")
        assert report.ok and report.unsequenced == 0
        psql("ALTER TABLE ledger_auditentry DISABLE TRIGGER USER; TRUNCATE ledger_auditentry, ledger_auditcheckpoint; "
             "ALTER TABLE ledger_auditentry ENABLE TRIGGER USER", DB)
        shutil.rmtree(os.environ["QCOS_AUDIT_CHECKPOINT_DIR"])  # the log was emptied on purpose
        print(f"verify: a chain of {args.entries:,} entries")
        fill_chain(args.entries)
        t0 = time.perf_counter()
        report = audit_verify(sequence_first=False)
        verify_s = time.perf_counter() - t0
        assert report.ok and report.entries_checked == args.entries == AuditEntry.objects.count(), report.as_dict()
        print()
        print(f"audit append ({args.writers} writers): {audit:,.0f} entries/s   plain insert: {plain:,.0f} rows/s   "
              f"ratio {audit / plain:.2f}   [targets ≥ 2,000/s, ratio ≥ 0.5]")
        print(f"  (both through Django, one transaction per row; bare psycopg autocommit INSERTs: {raw:,.0f} rows/s)")
        print(f"verify {args.entries:,}-entry audit log: {verify_s:.1f} s   [target ≤ 10 s]")
    finally:
        if not args.keep_db:
            from django.db import connections

            connections.close_all() if "django" in sys.modules else None
            psql(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')


if __name__ == "__main__":
    mp.set_start_method("fork")
    main()
