"""No overspend with 200 concurrent submitters, 20 times, on a PostgreSQL of its own.

The issue's scenario needs 200 simultaneous connections, each a submitter thread released by one
barrier; the machine's shared server allows 100 (``max_connections``), shared with everything else.
So this test starts a private PostgreSQL cluster (``initdb`` on a free port, ``max_connections``
260, durable settings), and runs ``perf/budget.py``'s stress phase against it: 20 rounds, each a
fresh tenant with a tenant and a project policy (four windows), one of them (or all) with room for
exactly k jobs, 200 threads calling the real ``job_submit``. The script checks every round (exactly
k admitted, the rest BUDGET_EXCEEDED and nothing else, ``spent + reserved <= limit`` in every
window, reservations equal to the HELD charges, one audit entry per refusal, no job or charge left
by a refusal) and exits 1 on any violation. ``tests/finops/test_budget_concurrency.py`` runs the same
scenario inside the suite's database with as many submitters as the shared server allows.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from .conftest import ROOT, _tied_to_this_process, _unavailable, free_port, wait_for

pytestmark = pytest.mark.integration


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


@pytest.fixture
def private_postgres():
    initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
    if not initdb or not postgres:
        _unavailable("PostgreSQL server binaries (initdb, postgres) are not installed")
    # Directly under the temp dir: pytest's own temp dirs are private to this user, and as root the
    # server runs as the postgres account, which must reach its data directory.
    data = Path(tempfile.mkdtemp(prefix="qcos-private-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: use its own account
        runuser = shutil.which("runuser")
        if runuser is None:
            _unavailable("running as root without runuser to start PostgreSQL as postgres")
        shutil.chown(data, user="postgres")
        run_as = [runuser, "-u", "postgres", "--"]
    subprocess.run([*run_as, initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    server = subprocess.Popen(
        [*run_as, postgres, "-D", str(data), "-p", str(port), "-c", "listen_addresses=127.0.0.1",
         "-c", f"unix_socket_directories={data}", "-c", "max_connections=260", "-c", "shared_buffers=128MB"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_tied_to_this_process,
    )
    ready = _pg_bin("pg_isready") or "pg_isready"
    wait_for(lambda: subprocess.run([ready, "-q", "-h", "127.0.0.1", "-p", str(port)]).returncode == 0, 30,
             interval=0.2, message=f"private PostgreSQL on {port}")
    try:
        yield f"postgres://postgres@127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(data, ignore_errors=True)


def test_200_concurrent_submitters_never_overspend_20_times(private_postgres):
    result = subprocess.run(
        [sys.executable, str(Path(ROOT) / "perf" / "budget.py"), "--base-url", private_postgres,
         "--rounds", "20", "--submitters", "200", "--exact-submitters", "--repeat", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    rounds = [line for line in output.splitlines() if line.startswith("round ")]
    assert len(rounds) == 20 and all(line.endswith(" ok") for line in rounds), output[-5000:]
    assert "stress: 20 rounds x 200 submitters" in output and ", 0 round(s) with violations" in output, output[-3000:]
