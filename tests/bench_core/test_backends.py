"""Backend resolution, noise models, DEV MODE marking, Clifford angle snapping."""

from __future__ import annotations

import math

import pytest
from qiskit import QuantumCircuit
from qiskit_aer import AerSimulator
from qiskit_aer.noise import NoiseModel

from bench import backends
from bench.backends import (
    DEV_MODE_WARNING,
    BackendCapacityError,
    UnknownBackendError,
    resolve_backend,
    snap_clifford_angles,
)
from bench.noise import MODELLED_DEVICES


def test_listing_covers_simulators_fakes_and_hardware_names():
    ids = {row["id"]: row for row in backends.list_backends()}
    for name in ("simulator", "fake_brisbane", "fake_sherbrooke", "fake_torino", "ibm_brisbane",
                 "ibm_heron", "ibm_torino", "ionq_aria", "rigetti_ankaa", "quantinuum_h2"):
        assert name in ids
    assert len(backends.fake_backend_names()) >= 60
    assert not ids["fake_brisbane"]["dev_mode"] and ids["ionq_aria"]["dev_mode"]


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(UnknownBackendError, match="unknown backend 'ibm_nowhere'") as info:
        resolve_backend("ibm_nowhere")
    assert info.value.code == "BACKEND_UNAVAILABLE"


def _strip_ids(model: NoiseModel) -> dict:
    data = model.to_dict()
    for error in data["errors"]:
        error.pop("id", None)
    return data


def test_fake_backend_noise_is_from_backend_without_relaxation():
    brisbane = resolve_backend("fake_brisbane")
    assert brisbane.num_qubits == 127 and not brisbane.dev_mode and brisbane.warning is None
    reference = NoiseModel.from_backend(brisbane._device, thermal_relaxation=False)
    assert _strip_ids(brisbane.noise_model) == _strip_ids(reference)
    assert brisbane.calibration["last_update_date"]
    # Per-run restriction keeps exactly the entries on the touched qubits.
    qc = QuantumCircuit(127)
    qc.ecr(1, 0)
    qc.measure_all()
    restricted = brisbane.noise_model_for([qc])
    assert set(restricted.noise_qubits) <= set(range(127))
    assert {tuple(q) for q in restricted._local_readout_errors} == {(q,) for q in range(127)}
    small = QuantumCircuit(127, 2)
    small.ecr(1, 0)
    small.measure([0, 1], [0, 1])
    assert {tuple(q) for q in brisbane.noise_model_for([small])._local_readout_errors} == {(0,), (1,)}


def test_hardware_names_are_dev_mode_on_their_snapshots():
    heron = resolve_backend("ibm_heron")
    assert heron.calibration["snapshot"] == "fake_torino"
    assert heron.dev_mode and heron.warning == DEV_MODE_WARNING
    assert DEV_MODE_WARNING == (
        "DEV MODE: Using SimulatorExecutor. Results are simulated. Data stored in-memory only.")
    assert resolve_backend("ibm_brisbane").calibration["snapshot"] == "fake_brisbane"


@pytest.mark.parametrize("name", sorted(MODELLED_DEVICES))
def test_modelled_devices_cite_their_figures(name):
    rates = MODELLED_DEVICES[name]
    backend = resolve_backend(name)
    assert backend.dev_mode and backend.warning == DEV_MODE_WARNING
    assert backend.num_qubits == rates.qubits
    assert "source" in backend.calibration and len(rates.source) > 80
    assert 0 < rates.one_qubit < rates.two_qubit < 0.05 and 0 < rates.readout < 0.05


def test_capacity_is_checked():
    with pytest.raises(BackendCapacityError, match="needs 50 qubits.*has 25"):
        resolve_backend("ionq_aria").check_capacity("ghz_50q", 50)
    resolve_backend("fake_brisbane").check_capacity("ghz_100q", 100)


def test_rz_angles_are_snapped_for_the_stabilizer_method():
    qc = QuantumCircuit(1)
    qc.rz(math.pi / 2 + 1e-12, 0)
    qc.rz(-math.pi + 3e-10, 0)
    qc.rz(0.3, 0)  # genuinely non-Clifford: left alone
    snap_clifford_angles(qc)
    assert [inst.operation.params[0] for inst in qc.data] == [math.pi / 2, -math.pi, 0.3]

    raw = QuantumCircuit(1)
    raw.rz(math.pi / 2 + 1e-12, 0)
    raw.measure_all()
    sim = AerSimulator(method="stabilizer")
    assert not sim.run(raw).result().success  # Aer fails without raising
    assert sim.run(snap_clifford_angles(raw)).result().success


def test_restricting_the_noise_model_changes_no_sample():
    brisbane = resolve_backend("fake_brisbane")
    from bench.workloads import get_workload

    prepared = brisbane.prepare(get_workload("ghz_5q").build(0).circuits, seed_transpiler=3)
    sim = brisbane.simulator("stabilizer")

    def counts(noise):
        result = sim.run(prepared, shots=512, seed_simulator=9, noise_model=noise).result()
        return [result.get_counts(i) for i in range(len(prepared))]

    assert counts(brisbane.noise_model_for(prepared)) == counts(brisbane.noise_model)
