"""Estimators on hand-built counts: definitions, bit order, standard errors, readout mitigation,
and the dephased-GHZ case that Hellinger cannot see."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import DensityMatrix, Statevector
from qiskit.quantum_info import hellinger_fidelity as qiskit_hellinger

from bench import metrics
from bench.workloads import ghz_preparation


def test_hellinger_matches_qiskit():
    p = {"00": 480, "11": 430, "01": 60, "10": 54}
    q = {"00": 0.5, "11": 0.5}
    assert metrics.hellinger_fidelity(p, q) == pytest.approx(qiskit_hellinger(p, q), abs=1e-12)


def test_normalized_fidelity_floors():
    assert metrics.uniform_floor(metrics.ghz_ideal_distribution(5), 5) == pytest.approx(2**-4)
    assert metrics.uniform_floor({"0101": 1.0}, 4) == pytest.approx(2**-4)
    uniform = {format(i, "03b"): 1 for i in range(8)}
    assert metrics.normalized_fidelity(uniform, metrics.ghz_ideal_distribution(3), 3) == 0.0
    assert metrics.normalized_fidelity({"000": 5, "111": 5}, metrics.ghz_ideal_distribution(3),
                                       3) == pytest.approx(1.0)


def test_bit_order_and_register_spaces():
    # qiskit strings are little-endian: "01" means clbit 0 = 1, clbit 1 = 0.
    bits, _ = metrics.bit_matrix({"01": 1})
    assert bits.tolist() == [[1, 0]]
    bits, _ = metrics.bit_matrix({"1 00": 1})
    assert bits.tolist() == [[0, 0, 1]]
    assert metrics.parity_expectation({"0 1": 3, "1 1": 1}).value == pytest.approx(-0.5)
    assert metrics.outcome_probability({"0 1": 3, "1 1": 1}, ["01"]).value == pytest.approx(0.75)


def test_parity_standard_error_is_the_binomial_one():
    n_even, n_odd = 700, 300
    est = metrics.parity_expectation({"00": n_even, "01": n_odd})
    mean = (n_even - n_odd) / 1000
    assert est.value == pytest.approx(mean)
    assert est.stderr == pytest.approx(math.sqrt((1 - mean**2) * 1000 / 999 / 1000))


def test_bell_fidelity_formula():
    ideal = metrics.bell_fidelity({"00": 50, "11": 50}, {"00": 50, "11": 50},
                                  {"01": 50, "10": 50})
    assert ideal.fidelity.value == pytest.approx(1.0) and ideal.certified
    product = metrics.bell_fidelity({"00": 100}, {"00": 25, "01": 25, "10": 25, "11": 25},
                                    {"00": 25, "01": 25, "10": 25, "11": 25})
    assert product.fidelity.value == pytest.approx(0.5) and not product.certified  # |00>


def _dephased_counts(n: int, shots: int) -> tuple[dict[str, int], dict[str, int]]:
    plus = Statevector(ghz_preparation(n))
    flip = QuantumCircuit(n)
    flip.z(0)
    minus = plus.evolve(flip)
    rho = DensityMatrix(plus) * 0.5 + DensityMatrix(minus) * 0.5
    rotate = QuantumCircuit(n)
    rotate.h(range(n))

    def counts(state: DensityMatrix) -> dict[str, int]:
        probs = state.probabilities_dict()
        return {k: round(p * shots) for k, p in probs.items() if round(p * shots)}

    return counts(rho), counts(rho.evolve(rotate))


def test_dephased_ghz_fools_hellinger_but_not_the_bound():
    n = 8
    z_counts, x_counts = _dephased_counts(n, shots=2**n * 4)
    hellinger = metrics.hellinger_fidelity(z_counts, metrics.ghz_ideal_distribution(n))
    bound = metrics.ghz_fidelity_lower_bound(z_counts, x_counts)
    assert hellinger == pytest.approx(1.0, abs=1e-12)
    assert bound.population.value == pytest.approx(1.0)
    assert bound.parity.value == pytest.approx(0.0, abs=1e-12)
    assert bound.lower_bound.value <= 0.5 + 1e-12
    assert not bound.certified


def _flip(bits: np.ndarray, assignment, rng) -> np.ndarray:
    out = bits.copy()
    for i, (a, b) in enumerate(assignment):
        r = rng.random(len(out))
        out[:, i] ^= np.where(out[:, i] == 0, r < a, r < b)
    return out


def _to_counts(bits: np.ndarray) -> dict[str, int]:
    return dict(Counter("".join(map(str, row[::-1])) for row in bits))


def test_readout_mitigation_recovers_the_ideal_ghz_statistics():
    rng = np.random.default_rng(5)
    assignment = [(0.02, 0.05), (0.03, 0.01), (0.10, 0.15), (0.0, 0.0)]
    shots = 200_000
    z = np.repeat(rng.integers(2, size=shots)[:, None], 4, axis=1)  # ideal GHZ Z-basis samples
    noisy = _to_counts(_flip(z, assignment, rng))
    raw = metrics.outcome_probability(noisy, ["0000", "1111"])
    mitigated = metrics.outcome_probability(noisy, ["0000", "1111"], assignment)
    parity = metrics.parity_expectation(noisy, assignment)
    assert raw.value < 0.85
    assert mitigated.value == pytest.approx(1.0, abs=4 * mitigated.stderr)
    assert parity.value == pytest.approx(1.0, abs=4 * parity.stderr)
    assert metrics.mitigation_gamma(assignment) == pytest.approx(
        1 / 0.93 / 0.96 / 0.75, rel=1e-9)


def test_mirror_score():
    score = metrics.mirror_score({"0110": 900, "0111": 100}, "0110")
    assert score.success.value == pytest.approx(0.9)
    assert score.polarization.value == pytest.approx((0.9 - 1 / 16) / (1 - 1 / 16))
    assert score.passed
    assert not metrics.mirror_score({"0110": 30, "0000": 70}, "0110").passed
