"""Benchmark-core timings (``bench`` package, no Django), on this machine's 2 cores.

Prints:
1. the default suite (ghz_5q, ghz_10q, bell_state) on ``simulator``: first call in the process
   (cold: imports done, Aer and transpiler not yet warm) and the median of warm calls;
2. all six workloads on ``fake_brisbane`` (target <= 40 s), cold (includes building the
   127-qubit noise model) and warm;
3. runner overhead: ``run_benchmark`` versus calling ``AerSimulator.run`` directly on the same
   pre-built circuits (already transpiled, same seeds, same per-run noise models), so the
   difference is circuit building, transpilation, scoring and hashing (target <= 1.3x).

    .venv/bin/python perf/bench_core.py [--shots 1024] [--seed 42] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.backends import resolve_backend  # noqa: E402
from bench.runner import run_benchmark  # noqa: E402
from bench.workloads import DEFAULT_WORKLOADS, WORKLOADS, derive_seed, get_workload  # noqa: E402

ALL = list(WORKLOADS)


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def direct_aer(backend_id: str, workload_ids: list[str], shots: int, seed: int) -> Callable[[], None]:
    """Pre-build everything the runner would, then return a closure that only runs Aer."""
    backend = resolve_backend(backend_id)
    jobs = []
    for wid in workload_ids:
        built = get_workload(wid).build(derive_seed(seed, wid, "circuit"))
        prepared = backend.prepare(built.circuits, derive_seed(seed, wid, "transpile"))
        jobs.append((prepared, backend.simulation_method(prepared),
                     backend.noise_model_for(prepared), derive_seed(seed, wid, "simulate")))

    def run() -> None:
        for prepared, method, noise, sim_seed in jobs:
            result = backend.simulator(method).run(
                prepared, shots=shots, seed_simulator=sim_seed, noise_model=noise).result()
            assert result.success
            [result.get_counts(i) for i in range(len(prepared))]

    return run


def overhead(backend_id: str, workload_ids: list[str], shots: int, seed: int, repeats: int) -> None:
    direct = direct_aer(backend_id, workload_ids, shots, seed)
    runner_times, direct_times = [], []
    for _ in range(repeats):  # interleaved, so machine noise hits both alike
        runner_times.append(timed(lambda: run_benchmark(backend_id, workload_ids, shots, seed)))
        direct_times.append(timed(direct))
    r, d = statistics.median(runner_times), statistics.median(direct_times)
    print(f"  {backend_id:<14} {len(workload_ids)} workloads: runner {r:7.3f} s, direct Aer "
          f"{d:7.3f} s -> {r / d:.2f}x (median of {repeats})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    shots, seed, repeats = args.shots, args.seed, args.repeats
    default = list(DEFAULT_WORKLOADS)

    print(f"shots={shots} seed={seed}")
    cold = timed(lambda: run_benchmark("simulator", default, shots, seed))
    warm = [timed(lambda: run_benchmark("simulator", default, shots, seed)) for _ in range(5)]
    print(f"1. default suite {default} on simulator: cold {cold * 1000:.0f} ms, "
          f"warm median {statistics.median(warm) * 1000:.0f} ms")

    started = time.perf_counter()
    report = run_benchmark("fake_brisbane", ALL, shots, seed)
    cold = time.perf_counter() - started
    warm_noisy = timed(lambda: run_benchmark("fake_brisbane", ALL, shots, seed))
    print(f"2. all six workloads on fake_brisbane: cold {cold:.1f} s, warm {warm_noisy:.1f} s "
          f"(target <= 40 s)")
    for row in report["workloads"]:
        print(f"     {row['id']:<13} fidelity {row['fidelity']:.3f} ± {row['stderr']:.3f} "
              f"({row['fidelity_metric']}), hellinger {row['hellinger_fidelity']:.3f}, "
              f"aer {row['execution_time_ms']:7.0f} ms, wall {row['elapsed_ms']:7.0f} ms")

    print("3. runner overhead vs direct qiskit-aer on pre-built circuits (target <= 1.3x):")
    overhead("simulator", default, shots, seed, max(repeats, 15))
    overhead("simulator", ALL, shots, seed, repeats)
    overhead("fake_brisbane", ALL, shots, seed, repeats)


if __name__ == "__main__":
    main()
