"""What a hostile circuit costs the web tier: each case of the hostile-input suite through the
submit's and the estimate's own check (``qcos.jobs.services.circuit_parse``), with its answer code,
median wall time and peak traced memory, then the worst of them and what a Bell circuit costs.

    .venv/bin/python perf/hostile_circuits.py [--repeat 5]

No database or server is needed: the check runs before either is touched.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("DATABASE_URL", "sqlite:///:memory:")


def measure(text: str, repeat: int) -> tuple[str, float, float]:
    from qcos.errors import QCOSError
    from qcos.jobs import services

    times, peaks, code = [], [], "ACCEPTED"
    for _ in range(repeat):
        tracemalloc.start()
        started = time.perf_counter()
        try:
            services.circuit_parse(text)
        except QCOSError as exc:
            code = exc.code
        times.append(time.perf_counter() - started)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return code, statistics.median(times) * 1000, max(peaks) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import django

    django.setup()
    from tests.jobs.test_hostile_circuits import HOSTILE, INCLUDES, LEGIT

    cases = {name: text for name, (text, _code) in HOSTILE.items()} | INCLUDES
    measure(LEGIT["bell_v3"], 1)  # imports and first-use caches are not a request's cost
    rows = [(name, len(text.encode()), *measure(text, args.repeat)) for name, text in cases.items()]
    print(f"{'case':42} {'bytes':>8} {'answer':>20} {'median ms':>10} {'peak MiB':>9}")
    for name, size, code, ms, mib in rows:
        print(f"{name:42} {size:8d} {code:>20} {ms:10.2f} {mib:9.2f}")
    worst_ms = max(rows, key=lambda row: row[3])
    worst_mib = max(rows, key=lambda row: row[4])
    print(f"\n{len(rows)} hostile cases; slowest {worst_ms[3]:.2f} ms ({worst_ms[0]}), "
          f"largest {worst_mib[4]:.2f} MiB traced ({worst_mib[0]})")
    for name in ("bell_v2", "bell_v3"):
        code, ms, mib = measure(LEGIT[name], args.repeat)
        print(f"{name}: {code}, {ms:.2f} ms, {mib:.2f} MiB traced")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
