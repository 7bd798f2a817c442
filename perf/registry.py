"""Registry figure on PostgreSQL (issue "ledger"): serve an inclusion proof at 1,000,000 leaves.

Fills ``ledger_registrynode`` with the perfect-subtree nodes of a 1,000,000-leaf log (what the
sequencer stores), then times ``ledger.registry.inclusion_proof`` (plan, one query, fold) for
random leaves and checks every proof against the root.

    .venv/bin/python perf/registry.py [--leaves 1000000] [--samples 500]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB = "qcos_perf_registry"
URL = f"postgres://postgres@127.0.0.1:5432/{DB}"


def psql(sql: str, db: str = "postgres") -> None:
    subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-c", sql], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    psql(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{DB}"')
    env = {**os.environ, "DATABASE_URL": URL}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qcos.settings")
    import django

    django.setup()
    import psycopg

    from ledger import registry
    from ledger.crypto import merkle

    try:
        t0 = time.perf_counter()
        leaves = [merkle.leaf_hash(hashlib.sha256(i.to_bytes(8, "big")).digest()) for i in range(args.leaves)]
        levels = merkle.perfect_levels(leaves)
        root = merkle.root(leaves)
        buffer = io.StringIO()
        for level, hashes in enumerate(levels):
            for index, value in enumerate(hashes):
                buffer.write(f"{level}\t{index}\t{value.hex()}\n")
        nodes = sum(len(hashes) for hashes in levels)
        print(f"built {args.leaves:,} leaves, {nodes:,} stored nodes in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        with psycopg.connect(URL, autocommit=True) as conn, conn.cursor() as cur:
            with cur.copy("COPY ledger_registrynode (level, index, hash) FROM STDIN") as copy:
                copy.write(buffer.getvalue())
            cur.execute("VACUUM ANALYZE ledger_registrynode")
        print(f"loaded with COPY in {time.perf_counter() - t0:.1f} s")
        rng = random.Random(9162)
        timings = []
        for _ in range(args.samples):
            index = rng.randrange(args.leaves)
            start = time.perf_counter()
            proof = registry.inclusion_proof(index, args.leaves)
            timings.append((time.perf_counter() - start) * 1000)
            assert merkle.verify_inclusion(leaves[index], index, args.leaves, proof, root)
        timings.sort()
        median, p99 = statistics.median(timings), timings[int(len(timings) * 0.99) - 1]
        print()
        print(f"inclusion proof at {args.leaves:,} leaves from PostgreSQL: median {median:.2f} ms, "
              f"p99 {p99:.2f} ms, {len(proof)} hashes   [target ≤ 10 ms]")
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            psql(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')


if __name__ == "__main__":
    main()
