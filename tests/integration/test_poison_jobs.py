"""Poison jobs on real worker processes: each fails once at its limit, frees its slot for other
jobs, and leaves no simulation running and no worker grown."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from finops.models import Charge
from ledger.models import AuditEntry
from qcos.api.serializers import job_representation
from qcos.jobs import circuits, services
from qcos.jobs.models import JobResult, QuantumJob
from qcos.tenancy.principal import Principal
from tests.factories import BELL_QASM3, slow_circuit
from workers.dispatch import send_run_job

from .conftest import wait_for

pytestmark = pytest.mark.integration

# 104 bytes that loop 10^9 times: what an attacker sent before submissions counted loop trips.
LOOP = ('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[1] q; bit[1] c;\n'
        "for int i in [0:1000000000] { h q[0]; }\nc[0] = measure q[0];\n")
LIMITS = {"QCOS_JOB_WALL_SECONDS": "3", "QCOS_JOB_CPU_SECONDS": "30", "QCOS_JOB_MEMORY_MB": "300"}
TICKS = os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    children = [int(child) for child in out.split()]
    return children + [grand for child in children for grand in descendants(child)]


def cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except FileNotFoundError:
        return 0.0


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def submit(principal, circuit: str, backend: str = "simulator", shots: int = 100) -> QuantumJob:
    return services.job_submit(principal=principal, circuit=circuit, backend=backend, shots=shots,
                               render=job_representation).job


def test_poison_jobs_fail_once_at_their_limits_and_never_hold_the_workers(
    alice, redis_server, celery_on, start_worker, monkeypatch
):
    celery_on(redis_server.url)
    worker = start_worker(redis_server.url, concurrency=2, env=LIMITS)
    principal = Principal(user=alice.user, tenant=alice.tenant, roles=frozenset({"researcher"}))
    wait_for(lambda: sum("workers.sandbox" in cmdline(pid) for pid in descendants(worker.process.pid)) == 2,
             30, 0.2, "a sandbox per pool process")
    warm = submit(principal, BELL_QASM3)
    wait_for(lambda: QuantumJob.objects.get(pk=warm.pk).status == "COMPLETED", 30, 0.1, "warm-up job")
    pool = descendants(worker.process.pid)
    rss_before = {pid: rss_mb(pid) for pid in pool}

    # Two legitimate circuits within every submission limit that simulate for far longer than
    # 3 s (a 22-qubit state vector; a noisy dense circuit, priced, on a DEV MODE device) hold
    # both slots; a 26-qubit state vector (1 GiB) is over the 300 MB limit. The 10^9-iteration
    # loop goes in through the ORM, past the submission checks: the worker checks again.
    monkeypatch.setattr("qcos.jobs.services._enqueue", lambda job_id, queue: None)
    heavy = submit(principal, slow_circuit(qubits=22, layers=30), shots=10)
    slow = submit(principal, slow_circuit(qubits=16, layers=40), backend="ibm_brisbane", shots=2000)
    big = submit(principal, slow_circuit(qubits=26, layers=1), shots=10)
    loop = submit(principal, BELL_QASM3)
    QuantumJob.objects.filter(pk=loop.pk).update(circuit=LOOP, circuit_hash=circuits.circuit_hash(LOOP))
    normal = submit(principal, BELL_QASM3)
    poison = [heavy.pk, slow.pk, big.pk, loop.pk]
    started = time.monotonic()
    for job_id in poison:
        send_run_job(job_id, "jobs.local")
    wait_for(lambda: QuantumJob.objects.filter(pk__in=[heavy.pk, slow.pk], status="RUNNING").count() == 2,
             20, 0.05, "both slow jobs running")
    send_run_job(normal.pk, "jobs.local")  # both slots are held now

    wait_for(lambda: QuantumJob.objects.get(pk=normal.pk).status == "COMPLETED", 30, 0.05, "the normal job")
    assert time.monotonic() - started < 3 + 12, "the normal job waited for more than the poison jobs' limit"
    wait_for(lambda: QuantumJob.objects.filter(pk__in=poison, status="FAILED").count() == 4, 30, 0.1,
             "poison jobs failed")
    failed = list(QuantumJob.objects.filter(pk__in=poison))
    codes = {job.pk: job.error_code for job in failed}
    assert codes == {heavy.pk: "TIME_LIMIT_EXCEEDED", slow.pk: "TIME_LIMIT_EXCEEDED",
                     big.pk: "MEMORY_LIMIT_EXCEEDED", loop.pk: "INVALID_CIRCUIT"}, {
        job.pk: job.error_message for job in failed}
    for job in failed:
        assert job.attempts == 1 and job.lease_expires_at is None
        charge = Charge.objects.get(resource_type="quantum_job", resource_id=job.pk)
        assert charge.status == "RELEASED" and charge.settled_micros == 0
    assert Charge.objects.get(resource_type="quantum_job", resource_id=slow.pk).reserved_micros > 0
    assert not JobResult.objects.filter(job_id__in=poison).exists()

    # The processes: no simulation left running, nothing grown.
    time.sleep(1)
    processes = descendants(worker.process.pid)
    busy = {pid: cpu_seconds(pid) for pid in processes}
    time.sleep(1.5)
    assert {pid: round(cpu_seconds(pid) - used, 2) for pid, used in busy.items()
            if cpu_seconds(pid) - used > 0.3} == {}, "a simulation is still running"
    sandboxes = [pid for pid in processes if "workers.sandbox" in cmdline(pid)]
    assert len(sandboxes) == 2, [cmdline(pid) for pid in processes]
    for pid in pool:
        if pid in processes:
            assert rss_mb(pid) < rss_before[pid] + 100, (cmdline(pid), rss_before[pid], rss_mb(pid))
    assert all(rss_mb(pid) < 800 for pid in processes), {cmdline(pid): rss_mb(pid) for pid in processes}

    # Failed once, for good: the reconciler (every second here) never requeues them.
    time.sleep(2)
    for job in failed:
        actions = list(AuditEntry.objects.filter(resource_id=job.pk).values_list("action", flat=True))
        assert actions.count("JOB_FAILED") == 1 and "JOB_REQUEUED" not in actions, actions
        assert QuantumJob.objects.get(pk=job.pk).attempts == 1
