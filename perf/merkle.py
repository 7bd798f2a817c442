"""Micro-benchmark for ledger.crypto.merkle (pure Python, one core).

Prints: RFC 9162 root over N leaves; inclusion/consistency proof generation at N leaves
from stored perfect-subtree hashes (as the server's node table would serve them); and
inclusion proof verification rate.

    .venv/bin/python perf/merkle.py [--leaves 1000000]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger.crypto import merkle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    n, rng = args.leaves, random.Random(42)

    leaves = [merkle.leaf_hash(i.to_bytes(8, "big")) for i in range(n)]

    started = time.perf_counter()
    root = merkle.root(leaves)
    print(f"root over {n:,} leaves: {time.perf_counter() - started:.3f} s")

    started = time.perf_counter()
    levels = merkle.perfect_levels(leaves)  # the rows a server keeps in its node table
    print(f"building all perfect-subtree hashes ({sum(map(len, levels)):,} rows): "
          f"{time.perf_counter() - started:.3f} s")
    table = merkle.levels_getter(levels)
    # Long-lived in-memory table: keep the cyclic GC from rescanning 3M objects mid-sample
    # (a server reads these rows from its database instead).
    gc.collect()
    gc.freeze()

    indices = [rng.randrange(n) for _ in range(args.samples)]
    timings, proofs, lookups = [], [], []
    for index in indices:
        calls = 0

        def counting(level: int, i: int) -> bytes | None:
            nonlocal calls
            calls += 1
            return table(level, i)

        started = time.perf_counter()
        proofs.append(merkle.inclusion_proof_from(index, n, counting))
        timings.append(time.perf_counter() - started)
        lookups.append(calls)
    p99 = statistics.quantiles(timings, n=100)[98]
    print(f"inclusion proof at {n:,} leaves from stored nodes: median "
          f"{statistics.median(timings) * 1e3:.3f} ms, p99 {p99 * 1e3:.3f} ms, max {max(timings) * 1e3:.3f} ms, "
          f"{max(lookups)} lookups max, {max(map(len, proofs))} hashes per proof")

    timings = []
    for index in indices[:50]:
        started = time.perf_counter()
        plan = merkle.inclusion_proof_nodes(index, n)
        rows = {key: table(*key) for group in plan for key in group}  # one IN (...) query
        merkle.inclusion_proof_from(index, n, rows)
        timings.append(time.perf_counter() - started)
    print(f"plan + fetch planned rows + build: median {statistics.median(timings) * 1e3:.3f} ms")

    timings = []
    for old in [rng.randrange(1, n) for _ in range(50)]:
        started = time.perf_counter()
        merkle.consistency_proof_from(old, n, table)
        timings.append(time.perf_counter() - started)
    print(f"consistency proof to {n:,} leaves from stored nodes: median {statistics.median(timings) * 1e3:.3f} ms")

    started = time.perf_counter()
    rounds, ok = 0, True
    while time.perf_counter() - started < 1.0:
        for index, proof in zip(indices, proofs, strict=True):
            ok &= merkle.verify_inclusion(leaves[index], index, n, proof, root)
        rounds += 1
    elapsed = time.perf_counter() - started
    print(f"inclusion proof verification: {rounds * len(indices) / elapsed:,.0f} proofs/s (all valid: {ok})")


if __name__ == "__main__":
    main()
