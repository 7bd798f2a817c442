"""What waking a worker costs the submit: ``run_job.apply_async`` against ``workers.dispatch``.

Both publish the same ``run_job`` message onto a queue of a private redis-server on a free port
(nothing consumes it; the queue is dropped after each batch). Rounds alternate the two ways, so
a drift of the host's speed touches both alike. Each way is timed in a tight loop and with a
5 ms sleep before every publish, which is how a submit meets it (its process was waiting on
PostgreSQL, not publishing in a loop).

    .venv/bin/python perf/publish.py [--rounds 4] [--publishes 300]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--publishes", type=int, default=300, help="per way, per round and per pattern")
    args = parser.parse_args()

    binary = shutil.which("redis-server")
    if binary is None:
        print("redis-server is not installed", file=sys.stderr)
        return 1
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="qcos-perf-publish-")
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", workdir],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        broker = f"redis://127.0.0.1:{port}/0"
        os.environ.update(CELERY_BROKER_URL=broker, CELERY_TASK_ALWAYS_EAGER="false",
                          DJANGO_SETTINGS_MODULE="qcos.settings", QCOS_VAR_DIR=workdir)
        os.environ.pop("DATABASE_URL", None)
        import django

        django.setup()
        import redis

        from workers.dispatch import send_run_job
        from workers.tasks import run_job

        client = redis.Redis.from_url(broker)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

        queue = "perf.publish"
        ways = {
            "run_job.apply_async": lambda: run_job.apply_async(args=[str(uuid.uuid4())], queue=queue, retry=False),
            "workers.dispatch": lambda: send_run_job(str(uuid.uuid4()), queue),
        }
        for publish in ways.values():  # warm both: imports, pools, connections
            for _ in range(50):
                publish()
        client.delete(queue)

        results: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for pattern, pause in (("tight loop", 0.0), ("after a 5 ms sleep", 0.005)):
                for name, publish in ways.items():
                    samples = []
                    for _ in range(args.publishes):
                        if pause:
                            time.sleep(pause)
                        started = time.perf_counter()
                        publish()
                        samples.append(time.perf_counter() - started)
                    results.setdefault((pattern, name), []).append(1000 * statistics.median(samples))
                    client.delete(queue)

        print(f"publish of one run_job message, median ms per round ({args.rounds} rounds x "
              f"{args.publishes} publishes):")
        for (pattern, name), medians in results.items():
            print(f"  {pattern:<20} {name:<20} " + "  ".join(f"{m:6.3f}" for m in medians)
                  + f"   median {statistics.median(medians):.3f}")
        return 0
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
