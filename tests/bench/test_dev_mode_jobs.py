"""Jobs sent to hardware names through /api/v2.1/jobs get the benchmarks' DEV MODE treatment."""

from __future__ import annotations

import pytest

from bench.backends import DEV_MODE_WARNING
from ledger.crypto import EvidenceBundle
from tests.factories import BELL_QASM2, job_body
from workers.providers.devmode import DevModeAdapter
from workers.providers.registry import BACKENDS, DEV_MODE_BACKENDS, all_queues, get_backend


def test_hardware_names_are_in_the_job_catalogue_on_a_queue_every_worker_consumes():
    for name, *_ in DEV_MODE_BACKENDS:
        spec = get_backend(name)
        assert spec is not None and spec.queue == "jobs.local"
        assert spec.adapter == f"workers.providers.devmode:{name}"
    assert BACKENDS["simulator"].adapter == "workers.providers.aer:AerAdapter"  # unchanged
    assert get_backend("ionq_aria").max_qubits_clifford == 25
    assert get_backend("ibm_brisbane").description.startswith("DEV MODE")
    assert all_queues() == ["jobs.local", "maintenance"]


def test_the_adapter_runs_on_the_device_noise_model_and_says_so():
    from qcos.jobs.circuits import parse_circuit

    outcome = DevModeAdapter("ibm_brisbane").run(parse_circuit(BELL_QASM2), shots=500, seed=11)
    assert sum(outcome.counts.values()) == 500
    assert set(outcome.counts) > {"00", "11"}  # noise: some 01/10
    assert outcome.counts["00"] + outcome.counts["11"] > 400
    assert outcome.metadata["dev_mode"] is True and outcome.metadata["warning"] == DEV_MODE_WARNING
    assert outcome.metadata["method"] == "stabilizer"
    assert outcome.calibration["calibration_id"] == "dev-mode:ibm_brisbane:fake_brisbane"
    again = DevModeAdapter("ibm_brisbane").run(parse_circuit(BELL_QASM2), shots=500, seed=11)
    assert again.counts == outcome.counts


def test_non_clifford_circuits_run_on_trajectories():
    from qcos.jobs.circuits import parse_circuit

    circuit = parse_circuit('OPENQASM 2.0; include "qelib1.inc"; qreg q[2]; creg c[2]; '
                            "rx(0.3) q[0]; cx q[0],q[1]; measure q -> c;")
    outcome = DevModeAdapter("ionq_aria").run(circuit, shots=300, seed=2)
    assert outcome.metadata["method"] == "statevector" and sum(outcome.counts.values()) == 300


@pytest.mark.django_db(transaction=True)
def test_a_job_on_a_hardware_name_completes_in_dev_mode_with_signed_evidence(alice):
    response = alice.client.post("/api/v2.1/jobs", job_body(BELL_QASM2, backend="ionq_aria", shots=256),
                                 format="json")
    assert response.status_code == 202, response.json()
    job = alice.client.get(f"/api/v2.1/jobs/{response.json()['job_id']}").json()
    assert job["status"] == "COMPLETED", job
    assert sum(job["counts"].values()) == 256 and job["backend"] == "ionq_aria"
    bundle = alice.client.get(f"/api/v2.1/jobs/{job['job_id']}/evidence").json()
    items = {i["type"]: i["content"] for i in bundle["items"]}
    assert items["calibration"]["dev_mode"] is True and items["calibration"]["warning"] == DEV_MODE_WARNING
    assert items["calibration"]["calibration_id"] == "dev-mode:ionq_aria:depolarizing+readout"
    assert EvidenceBundle(bundle).verify().is_valid
