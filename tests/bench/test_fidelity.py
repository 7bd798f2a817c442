"""The fidelity figures as the API reports them (the estimators themselves are unit-tested in
tests/bench_core): dephasing that fools Hellinger, and the GHZ bound on fake_brisbane against a
density-matrix truth computed here."""

from __future__ import annotations

import pytest
from qiskit.quantum_info import Statevector, state_fidelity
from qiskit_aer.noise import NoiseModel, pauli_error

from bench.backends import ExecutionBackend, resolve_backend
from bench.runner import measured_physical_qubits
from bench.workloads import derive_seed, get_workload

from .conftest import completed

pytestmark = pytest.mark.django_db


def test_a_dephased_ghz_scores_hellinger_one_but_is_not_certified(alice, monkeypatch):
    """Z on the last qubit with probability 1/2 after the last CNOT: GHZ+ and GHZ- mixed 50/50, the
    same Z-basis counts as the ideal state, no coherence."""
    noise = NoiseModel(basis_gates=["cx", "h"])
    noise.add_quantum_error(pauli_error([("IZ", 0.5), ("II", 0.5)]), "cx", [8, 9])
    dephased = ExecutionBackend.custom("dephased", noise)
    monkeypatch.setattr("bench.runner.resolve_backend", lambda name: dephased)
    row = completed(alice, backend_id="simulator", workloads=["ghz_10q"], shots=4096, seed=3)["report"]["workloads"][0]
    assert row["hellinger_fidelity"] == pytest.approx(1.0, abs=1e-3)
    assert row["population"] == 1.0
    assert row["state_fidelity_lower_bound"] <= 0.5 + 3 * row["stderr"]
    assert row["fidelity"] <= 0.5 + 3 * row["stderr"]
    assert row["entanglement_certified"] is False


def test_ghz_10q_on_fake_brisbane_sits_just_below_the_density_matrix_truth(alice):
    seed, shots = 7, 4096
    row = completed(alice, backend_id="fake_brisbane", workloads=["ghz_10q"], shots=shots,
                    seed=seed)["report"]["workloads"][0]
    # Truth: the same transpiled Z-basis circuit, its final density matrix on the measured qubits.
    backend, workload = resolve_backend("fake_brisbane"), get_workload("ghz_10q")
    built = workload.build(derive_seed(seed, workload.id, "circuit"))
    z_circuit = backend.prepare(built.circuits, derive_seed(seed, workload.id, "transpile"))[0]
    physical = measured_physical_qubits(z_circuit)
    assert physical == row["transpiled"]["physical_qubits"]
    state = z_circuit.remove_final_measurements(inplace=False)
    state.save_density_matrix(qubits=physical, label="rho")
    result = backend.simulator("density_matrix").run(
        state, shots=1, noise_model=backend.noise_model_for([state])).result()
    truth = state_fidelity(result.data(0)["rho"], Statevector(built.preparation))
    estimate, stderr = row["state_fidelity_lower_bound"], row["stderr"]
    assert 0.7 < truth < 1.0
    assert truth - 0.05 <= estimate <= truth + 3 * stderr, (estimate, stderr, truth)
    assert row["fidelity"] == pytest.approx(min(1.0, estimate))
    assert row["readout_mitigation"]["applied"] and row["entanglement_certified"]
