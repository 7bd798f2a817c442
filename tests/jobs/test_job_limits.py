"""Jobs end to end in the embedded mode (the job runs on commit, in its sandbox): user-defined
gates run on every backend, and a job past its limits fails once, cleanly, with its charge
released."""

import pytest

from finops.models import Charge
from qcos.jobs.models import JobResult, QuantumJob
from tests.factories import job_body, slow_circuit

pytestmark = pytest.mark.django_db(transaction=True)

CUSTOM_GATES = """OPENQASM 2.0;
include "qelib1.inc";
gate bell a, b { h a; cx a, b; }
gate flipped_bell a, b { bell a, b; x b; }
qreg q[2];
creg c[2];
flipped_bell q[0], q[1];
measure q -> c;
"""


@pytest.mark.parametrize("backend", ["simulator", "ibm_brisbane"])
def test_a_circuit_with_user_defined_gates_completes(alice, backend):
    response = alice.client.post("/api/v2.1/jobs", job_body(CUSTOM_GATES, backend=backend, shots=500),
                                 format="json")
    assert response.status_code == 202, response.content
    job = alice.client.get(f"/api/v2.1/jobs/{response.json()['job_id']}").json()
    assert job["status"] == "COMPLETED", (job.get("error_code"), job.get("error_message"))
    counts = job["counts"]
    assert sum(counts.values()) == 500
    if backend == "simulator":
        assert set(counts) == {"01", "10"}
    else:  # noisy: the ideal outcomes dominate
        assert counts.get("01", 0) + counts.get("10", 0) > 400


def test_a_job_past_its_wall_clock_limit_fails_once_and_releases_its_charge(alice, settings):
    settings.QCOS = {**settings.QCOS, "JOB_WALL_SECONDS": 1.0}
    # A legitimate circuit that simulates for far longer than a second (noisy, 16 dense qubits).
    body = job_body(slow_circuit(qubits=16, layers=40), backend="ibm_brisbane", shots=2000)
    response = alice.client.post("/api/v2.1/jobs", body, format="json")
    assert response.status_code == 202, response.content
    job_id = response.json()["job_id"]
    job = QuantumJob.objects.get(pk=job_id)
    assert (job.status, job.error_code, job.attempts) == ("FAILED", "TIME_LIMIT_EXCEEDED", 1)
    assert "wall-clock limit of 1 s" in job.error_message and job.lease_expires_at is None
    assert not JobResult.objects.filter(job_id=job_id).exists()
    charge = Charge.objects.get(resource_type="quantum_job", resource_id=job_id)
    assert charge.status == "RELEASED" and charge.settled_micros == 0
    shown = alice.client.get(f"/api/v2.1/jobs/{job_id}").json()
    assert shown["status"] == "FAILED" and shown["error"]["code"] == "TIME_LIMIT_EXCEEDED"


def test_a_job_past_its_memory_limit_fails_with_memory_limit_exceeded(alice, settings):
    settings.QCOS = {**settings.QCOS, "JOB_MEMORY_MB": 256}
    response = alice.client.post("/api/v2.1/jobs", job_body(slow_circuit(qubits=26, layers=1), shots=10),
                                 format="json")
    assert response.status_code == 202, response.content
    job = QuantumJob.objects.get(pk=response.json()["job_id"])
    assert (job.status, job.error_code, job.attempts) == ("FAILED", "MEMORY_LIMIT_EXCEEDED", 1)
    assert "memory limit of 256 MB" in job.error_message
