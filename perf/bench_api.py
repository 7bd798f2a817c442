"""Benchmarking API figures, end to end through HTTP, on this machine's 2 cores.

Runs QCOS the embedded way (``dev.sh``'s default: SQLite, the run executed in-process right after
the submit commits) behind a real threaded HTTP server, with a tenant and an API key, and times
what a user sees: ``POST /api/v2/bench/run`` until ``GET /api/v2/bench/report/{id}`` answers 200
(the report is then priced, reserved, simulated, scored, sealed, signed, settled, audited and its
Bench V3 bundle signed twice).

Prints:
1. the default suite (ghz_5q, ghz_10q, bell_state) on ``simulator``: cold (first request of the
   process) and the median of warm runs (target <= 2 s);
2. all six workloads on ``fake_brisbane``: cold (includes building the 127-qubit noise model) and
   warm (target <= 40 s);
3. overhead against calling qiskit-aer directly on the same pre-built, pre-transpiled circuits
   (same seeds and noise models; ``perf/bench_core.py``'s baseline): the whole API path and the
   core runner alone (target <= 1.3x).

    .venv/bin/python perf/bench_api.py [--shots 1024] [--seed 42] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "perf"))

_TMP = tempfile.mkdtemp(prefix="qcos-bench-perf-")
os.environ.update({
    "DATABASE_URL": f"sqlite:///{_TMP}/qcos.sqlite3", "QCOS_VAR_DIR": _TMP, "CELERY_BROKER_URL": "",
    "SECURE_SSL_REDIRECT": "false", "DJANGO_SETTINGS_MODULE": "qcos.settings", "LOG_LEVEL": "WARNING",
})
os.environ.pop("CELERY_TASK_ALWAYS_EAGER", None)

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

from bench.runner import run_benchmark  # noqa: E402
from bench.workloads import DEFAULT_WORKLOADS, WORKLOADS  # noqa: E402
from bench_core import direct_aer, timed  # noqa: E402

ALL = list(WORKLOADS)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


def serve() -> str:
    server = ThreadedWSGIServer(("127.0.0.1", 0), _QuietHandler)
    server.set_app(get_wsgi_application())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def api_key() -> str:
    from qcos.tenancy import services

    tenant, _ = services.tenant_get_or_create(slug="perf")
    services.project_get_or_create(tenant=tenant, slug="default")
    user, _ = services.user_get_or_create(email="perf@example.org")
    services.membership_set(tenant=tenant, user=user, role="researcher")
    return services.api_key_create(tenant=tenant, user=user).plaintext


def through_api(session: requests.Session, url: str, backend: str, workloads: list[str], shots: int,
                seed: int) -> float:
    """Seconds from sending the run request to holding the signed report."""
    started = time.perf_counter()
    answer = session.post(f"{url}/api/v2/bench/run", json={"backend_id": backend, "workloads": workloads,
                                                           "shots": shots, "seed": seed}, timeout=600)
    assert answer.status_code == 202, answer.text
    benchmark_id = answer.json()["benchmark_id"]
    while True:
        got = session.get(f"{url}/api/v2/bench/report/{benchmark_id}", timeout=60)
        if got.status_code == 200:
            break
        assert got.status_code == 202, got.text
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    assert got.json()["report"]["content_hash"].startswith("sha256:")
    return elapsed


def overhead(session, url, backend: str, workloads: list[str], shots: int, seed: int, repeats: int) -> None:
    direct = direct_aer(backend, workloads, shots, seed)
    api_times, runner_times, direct_times = [], [], []
    for _ in range(repeats):  # interleaved, so machine noise hits all three alike
        api_times.append(through_api(session, url, backend, workloads, shots, seed))
        runner_times.append(timed(lambda: run_benchmark(backend, workloads, shots, seed)))
        direct_times.append(timed(direct))
    a, r, d = (statistics.median(t) for t in (api_times, runner_times, direct_times))
    print(f"  {backend:<14} {len(workloads)} workloads: direct Aer {d:7.3f} s | core runner {r:7.3f} s "
          f"({r / d:.2f}x) | API end to end {a:7.3f} s ({a / d:.2f}x; +{(a - d) * 1000:.0f} ms) "
          f"(median of {repeats})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    shots, seed, repeats = args.shots, args.seed, args.repeats
    call_command("migrate", verbosity=0)
    url = serve()
    session = requests.Session()
    session.headers["X-API-Key"] = api_key()
    print(f"shots={shots} seed={seed}; embedded mode (SQLite, in-process execution) behind HTTP at {url}; "
          f"load {os.getloadavg()[0]:.2f}")

    default = list(DEFAULT_WORKLOADS)
    cold = through_api(session, url, "simulator", default, shots, seed)
    warm = [through_api(session, url, "simulator", default, shots, seed) for _ in range(10)]
    print(f"1. default suite {default} on simulator through the API: cold {cold * 1000:.0f} ms, "
          f"warm median {statistics.median(warm) * 1000:.0f} ms, max {max(warm) * 1000:.0f} ms (target <= 2 s)")

    cold = through_api(session, url, "fake_brisbane", ALL, shots, seed)
    warm_noisy = through_api(session, url, "fake_brisbane", ALL, shots, seed)
    print(f"2. all six workloads on fake_brisbane through the API: cold {cold:.1f} s, warm {warm_noisy:.1f} s "
          f"(target <= 40 s)")

    print("3. overhead vs direct qiskit-aer on the same pre-built circuits (target <= 1.3x):")
    overhead(session, url, "simulator", default, shots, seed, max(repeats, 10))
    overhead(session, url, "fake_brisbane", ALL, shots, seed, repeats)
    print(f"(load at the end {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
