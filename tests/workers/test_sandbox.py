"""The simulation sandbox, for real: its own process, stopped by the kernel or by the waiting
worker at a job's limits, reused between jobs, and gone when its worker process dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from tests.factories import BELL_QASM3, slow_circuit
from workers import sandbox
from workers.providers.base import ProviderError

ROOT = Path(__file__).resolve().parents[2]
# A legitimate circuit within every submission limit (22 qubits, 1,290 operations, 20 KB) that
# simulates for far longer than these tests' limits (over 20 s, single-threaded).
HEAVY = slow_circuit(qubits=22, layers=30)
# The attacker's circuit: 104 bytes, one loop of 10^9 iterations.
LOOP = ('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[1] q; bit[1] c;\n'
        "for int i in [0:1000000000] { h q[0]; }\nc[0] = measure q[0];\n")
CUSTOM_GATE = """OPENQASM 3.0;
include "stdgates.inc";
gate flip a { x a; }
gate entangle a, b { h a; cx a, b; }
qubit[2] q;
bit[2] c;
for int i in [0:2] { flip q[1]; }  // three times (ranges are inclusive)
entangle q[0], q[1];
c = measure q;
"""
LIMITS = sandbox.Limits(wall_seconds=30, cpu_seconds=30, memory_mb=512)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def sandbox_pids() -> set[int]:
    return {box.process.pid for box in sandbox.pool._idle if box.alive}


def run(circuit: str, limits: sandbox.Limits = LIMITS, backend: str = "simulator", shots: int = 64):
    return sandbox.simulate(backend=backend, circuit=circuit, shots=shots, seed=7, limits=limits)


def test_jobs_reuse_one_sandbox_process_that_is_not_this_one():
    assert sum(run(BELL_QASM3).counts.values()) == 64
    (pid,) = sandbox_pids()
    assert pid != os.getpid()
    for _ in range(5):
        assert set(run(BELL_QASM3).counts) <= {"00", "11"}
    assert sandbox_pids() == {pid}  # a pipe round trip per job, not a process


def test_a_simulation_past_the_wall_clock_limit_is_killed_and_the_next_job_runs():
    run(BELL_QASM3)
    (before,) = sandbox_pids()
    started = time.monotonic()
    with pytest.raises(ProviderError) as stopped:
        run(HEAVY, sandbox.Limits(wall_seconds=1.5, cpu_seconds=60, memory_mb=512))
    assert 1.5 <= time.monotonic() - started < 5
    assert stopped.value.code == "TIME_LIMIT_EXCEEDED" and not stopped.value.transient
    assert "wall-clock limit of 1.5 s" in str(stopped.value)
    assert not alive(before)  # the simulation does not outlive its job
    assert set(run(BELL_QASM3).counts) <= {"00", "11"}
    assert sandbox_pids() and before not in sandbox_pids()


def test_the_kernel_stops_a_simulation_past_its_cpu_limit():
    run(BELL_QASM3)
    (before,) = sandbox_pids()
    started = time.monotonic()
    with pytest.raises(ProviderError) as stopped:
        run(HEAVY, sandbox.Limits(wall_seconds=60, cpu_seconds=1, memory_mb=512))
    assert time.monotonic() - started < 10
    assert stopped.value.code == "TIME_LIMIT_EXCEEDED" and "CPU time limit of 1 s" in str(stopped.value)
    assert not alive(before)


def test_a_state_vector_past_the_memory_limit_fails_and_the_sandbox_stays_small():
    with pytest.raises(ProviderError) as refused:
        run(slow_circuit(qubits=26, layers=1), sandbox.Limits(wall_seconds=30, cpu_seconds=30, memory_mb=300))
    assert refused.value.code == "MEMORY_LIMIT_EXCEEDED" and not refused.value.transient
    assert "memory limit of 300 MB" in str(refused.value)
    (box,) = sandbox.pool._idle
    assert box.rss_kb - box.start_rss_kb < 100 * 1024
    assert set(run(BELL_QASM3).counts) <= {"00", "11"}


def test_the_address_space_limit_stops_an_allocation_aer_did_not_refuse():
    """The DEV MODE adapters do not pass Aer a memory budget: only RLIMIT_AS stands in the way."""
    with pytest.raises(ProviderError) as refused:
        run(slow_circuit(qubits=20, layers=1), sandbox.Limits(wall_seconds=60, cpu_seconds=60, memory_mb=64),
            backend="ibm_brisbane")
    assert refused.value.code == "MEMORY_LIMIT_EXCEEDED", refused.value
    assert set(run(BELL_QASM3).counts) <= {"00", "11"}


def test_the_sandbox_applies_the_circuit_limits_again():
    """A circuit stored past the submission checks (limits lowered since, or written to the
    database directly) is refused before it is simulated."""
    with pytest.raises(ProviderError) as refused:
        run(LOOP)
    assert refused.value.code == "INVALID_CIRCUIT" and not refused.value.transient


def test_user_defined_gates_run_on_the_simulator():
    counts = run(CUSTOM_GATE, shots=200).counts
    assert set(counts) <= {"01", "10"} and sum(counts.values()) == 200


def test_an_interrupted_wait_kills_the_simulation():
    """Celery's soft time limit raises in the waiting thread: the simulation must stop with it."""
    run(BELL_QASM3)
    (before,) = sandbox_pids()

    def soft_limit(signum, frame):
        raise SoftTimeLimitExceeded()

    previous = signal.signal(signal.SIGALRM, soft_limit)
    signal.alarm(1)
    try:
        with pytest.raises(SoftTimeLimitExceeded):
            run(HEAVY)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert not alive(before)
    assert set(run(BELL_QASM3).counts) <= {"00", "11"}


def test_a_sandbox_dies_with_the_worker_process_that_started_it(tmp_path):
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qcos.settings")
        from workers import sandbox
        box = sandbox.Sandbox()
        print(box.process.pid, flush=True)
        box.run(backend="simulator", circuit={HEAVY!r}, shots=1, seed=None,
                limits=sandbox.Limits(wall_seconds=120, cpu_seconds=120, memory_mb=512))
    """)
    worker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        child = int(worker.stdout.readline())
        time.sleep(3)  # started and simulating
        assert alive(child)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        deadline = time.monotonic() + 5
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(child)
    finally:
        worker.kill()
        worker.wait(10)


def test_limits_come_from_the_settings(settings):
    settings.QCOS = {**settings.QCOS, "JOB_WALL_SECONDS": 7.5, "JOB_CPU_SECONDS": 9, "JOB_MEMORY_MB": 321}
    assert sandbox.Limits.from_settings() == sandbox.Limits(wall_seconds=7.5, cpu_seconds=9, memory_mb=321)


@pytest.mark.parametrize("env, message", [
    ({"QCOS_JOB_WALL_SECONDS": "1790"}, "QCOS_TASK_SOFT_TIME_LIMIT (1800 s) must be at least"),
    ({"QCOS_JOB_MEMORY_MB": "10"}, "QCOS_JOB_MEMORY_MB >= 64"),
    ({"QCOS_JOB_WALL_SECONDS": "0"}, "QCOS_JOB_WALL_SECONDS must be > 0"),
])
def test_unworkable_limits_refuse_to_start(env, message):
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "qcos.settings", **env}
    done = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "ImproperlyConfigured" in done.stderr and message in done.stderr
