"""End-to-end runs: ideal scores, dephasing that fools Hellinger, the GHZ bound against a
density-matrix truth on FakeBrisbane, reproducibility, DEV MODE and error paths."""

from __future__ import annotations

import json
import math

import pytest
from qiskit.quantum_info import Statevector, state_fidelity
from qiskit_aer.noise import NoiseModel, pauli_error

from bench.backends import (
    DEV_MODE_WARNING,
    BackendCapacityError,
    ExecutionBackend,
    UnknownBackendError,
    resolve_backend,
)
from bench.runner import (
    SimulationFailedError,
    deterministic_view,
    measured_physical_qubits,
    run_benchmark,
    run_workload,
)
from bench.workloads import WORKLOADS, UnknownWorkloadError, derive_seed, get_workload

SEED_FIELDS = {"id", "type", "qubits", "fidelity", "execution_time_ms", "gate_count", "depth"}
EXTRA_FIELDS = {"hellinger_fidelity", "normalized_fidelity", "state_fidelity_lower_bound",
                "stderr", "entanglement_certified", "execution_time_source", "logical",
                "transpiled", "seed"}


@pytest.fixture(scope="module")
def ideal_report():
    return run_benchmark("simulator", list(WORKLOADS), seed=11)


def test_ideal_simulator_scores_one_everywhere(ideal_report):
    assert not ideal_report["dev_mode"] and ideal_report["warning"] is None
    assert ideal_report["summary"]["average_fidelity"] == 1.0
    for row in ideal_report["workloads"]:
        assert SEED_FIELDS | EXTRA_FIELDS <= row.keys()
        assert row["simulation_method"] == "stabilizer"
        assert row["fidelity"] == 1.0, row["id"]
        # Hellinger/QED-C compare *sampled* counts with the ideal 50/50 split, so they carry
        # shot noise of order 1/shots (0.9998 at 1,024 shots); exactly 1.0 for single outcomes.
        assert row["hellinger_fidelity"] == pytest.approx(1.0, abs=1e-3)
        assert row["normalized_fidelity"] == pytest.approx(1.0, abs=1e-3)
        if row["type"] == "DEPTH_STRESS":
            assert row["success_probability"] == 1.0 and row["passed"]
        else:
            assert row["state_fidelity_lower_bound"] == 1.0 and row["stderr"] == 0.0
            assert row["entanglement_certified"]
    by_id = {row["id"]: row for row in ideal_report["workloads"]}
    assert (by_id["ghz_5q"]["gate_count"], by_id["ghz_5q"]["depth"]) == (5, 5)
    assert by_id["ghz_100q"]["transpiled"]["two_qubit_gates"] == 99
    assert by_id["ghz_100q"]["execution_time_source"] == "aer:result.results[].time_taken"


def test_report_is_plain_json(ideal_report):
    text = json.dumps(ideal_report, allow_nan=False)
    assert json.loads(text)["catalogue_version"] == ideal_report["catalogue_version"]
    assert set(ideal_report["summary"]) == {"total_workloads", "average_fidelity",
                                            "total_execution_time_ms"}


def _dephased_backend(n: int) -> ExecutionBackend:
    """Z on one qubit with probability 1/2 after the last CNOT: GHZ+ and GHZ- mixed 50/50."""
    noise = NoiseModel(basis_gates=["cx", "h"])
    noise.add_quantum_error(pauli_error([("IZ", 0.5), ("II", 0.5)]), "cx", [n - 2, n - 1])
    return ExecutionBackend.custom("dephased", noise)


def test_dephased_ghz_scores_hellinger_one_but_is_not_certified():
    row = run_workload(_dephased_backend(10), get_workload("ghz_10q"), shots=4096, run_seed=3)
    assert row["hellinger_fidelity"] == pytest.approx(1.0, abs=1e-3)
    assert row["population"] == 1.0
    assert abs(row["parity_x"]) <= 4 * row["parity_x_stderr"]
    assert row["state_fidelity_lower_bound"] <= 0.5 + 3 * row["stderr"]
    assert not row["entanglement_certified"]


def test_ghz_bound_sits_just_below_the_density_matrix_truth_on_fake_brisbane():
    backend = resolve_backend("fake_brisbane")
    workload, run_seed = get_workload("ghz_10q"), 7
    row = run_workload(backend, workload, shots=8192, run_seed=run_seed)

    built = workload.build(derive_seed(run_seed, workload.id, "circuit"))
    z_circuit = backend.prepare(built.circuits, derive_seed(run_seed, workload.id, "transpile"))[0]
    physical = measured_physical_qubits(z_circuit)  # clbit i <- logical qubit i, after layout
    assert physical == row["transpiled"]["physical_qubits"]
    state = z_circuit.remove_final_measurements(inplace=False)
    state.save_density_matrix(qubits=physical, label="rho")
    result = backend.simulator("density_matrix").run(
        state, shots=1, noise_model=backend.noise_model_for([state])).result()
    assert result.success
    truth = state_fidelity(result.data(0)["rho"], Statevector(built.preparation))

    bound, stderr = row["state_fidelity_lower_bound"], row["stderr"]
    assert row["readout_mitigation"]["applied"]
    assert 0.7 < truth < 1.0
    assert truth - 0.05 <= bound <= truth + 3 * stderr, (bound, stderr, truth)
    assert row["state_fidelity_lower_bound_raw"] < bound  # readout error costs the raw bound
    assert row["hellinger_fidelity"] < 1.0 and row["entanglement_certified"]


def test_same_seed_same_numbers_whatever_the_suite():
    first = run_benchmark("fake_brisbane", ["bell_state", "ghz_5q"], seed=1234)
    second = run_benchmark("fake_brisbane", ["bell_state", "ghz_5q"], seed=1234)
    assert deterministic_view(first) == deterministic_view(second)
    alone = run_benchmark("fake_brisbane", ["ghz_5q"], seed=1234)
    assert deterministic_view(alone["workloads"][0]) == deterministic_view(first["workloads"][1])
    other = run_benchmark("fake_brisbane", ["ghz_5q"], seed=1235)
    assert other["workloads"][0]["counts_sha256"] != alone["workloads"][0]["counts_sha256"]
    generated = run_benchmark("simulator", ["bell_state"])
    assert generated["seed_source"] == "generated" and isinstance(generated["seed"], int)


def test_ghz_100q_runs_noisy_on_the_stabilizer_method():
    row = run_benchmark("fake_brisbane", ["ghz_100q"], shots=128, seed=5)["workloads"][0]
    assert row["simulation_method"] == "stabilizer"
    assert row["transpiled"]["two_qubit_gates"] >= 99
    assert row["fidelity"] < 0.2  # raw 100-qubit GHZ on Eagle-class noise lands near 0
    assert not row["entanglement_certified"]


@pytest.mark.parametrize("name", ["ionq_aria", "quantinuum_h2", "rigetti_ankaa"])
def test_modelled_hardware_runs_in_dev_mode(name):
    report = run_benchmark(name, ["bell_state"], seed=2)
    assert report["dev_mode"] and report["warning"] == DEV_MODE_WARNING
    row = report["workloads"][0]
    assert 0.9 < row["fidelity"] <= 1.0 and row["entanglement_certified"]
    assert "source" in report["backend"]["calibration"]


def test_request_errors_are_clear_and_raised_before_running():
    with pytest.raises(UnknownWorkloadError, match="unknown workload 'ghz_3q'"):
        run_benchmark("simulator", ["ghz_5q", "ghz_3q"])
    with pytest.raises(UnknownBackendError):
        run_benchmark("dwave_advantage", ["ghz_5q"])
    with pytest.raises(BackendCapacityError, match="ghz_100q.*quantinuum_h2"):
        run_benchmark("quantinuum_h2", ["bell_state", "ghz_100q"])
    with pytest.raises(BackendCapacityError):
        run_benchmark("fake_cairo", ["ghz_50q"])  # 27 qubits
    for shots in (0, 100_001, 1.5, True):
        with pytest.raises(ValueError, match="shots"):
            run_benchmark("simulator", ["bell_state"], shots=shots)
    with pytest.raises(ValueError, match="seed"):
        run_benchmark("simulator", ["bell_state"], seed=-1)


def test_a_failed_simulation_is_never_scored():
    backend = ExecutionBackend.custom("broken", None)

    def unsnapped(circuits, seed_transpiler):
        out = []
        for circuit in circuits:
            bad = circuit.copy()
            bad.data.insert(0, bad.data[0].replace(operation=_rz(math.pi / 2 + 1e-12)))
            out.append(bad)
        return out

    backend.prepare = unsnapped  # Aer reports success=False for this without raising
    with pytest.raises(SimulationFailedError, match="bell_state on broken"):
        run_workload(backend, get_workload("bell_state"), shots=16, run_seed=1)


def _rz(angle: float):
    from qiskit.circuit.library import RZGate

    return RZGate(angle)
