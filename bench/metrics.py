"""Fidelity estimators computed from measurement counts, each with its shot-noise standard error.

Why more than Hellinger: Hellinger fidelity (SupermarQ's GHZ score, QED-C's basis) compares output
*distributions* and so cannot see coherence — a fully dephased 50/50 mixture of |0…0> and |1…1>
scores 1.0 while its state fidelity with GHZ is 0.5. The headline estimators here are therefore
coherence-aware and Clifford-only (so they run at 100 qubits on the stabilizer simulator):

* GHZ: two-setting lower bound F >= P + (<X^n> - 1)/2, P = P(0^n) + P(1^n).
* Bell |Phi+>: F = (1 + <XX> - <YY> + <ZZ>)/4 (exact for two qubits, not just a bound).
* depth_stress (mirror circuit): success probability s and polarization (s - 2^-n)/(1 - 2^-n).

Counts follow qiskit: keys are little-endian (the rightmost character is clbit 0) and separate
registers with spaces; :func:`bit_matrix` undoes both. Every estimator is the sample mean of a
per-shot value, so its standard error is the sample standard deviation over sqrt(shots).

Readout mitigation: given per-clbit assignment errors (a = P(read 1 | 0), b = P(read 0 | 1)), the
per-shot values are taken through the inverse of the tensor-product assignment matrix, which
removes readout bias exactly when readout errors are independent per qubit (as in Aer's models)
at the price of amplifying shot noise by Γ = Π 1/(1 - a - b); :func:`mitigation_gamma` reports it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

Counts = Mapping[str, int]
Assignment = Sequence[tuple[float, float]]
"""Per clbit i: (P(read 1 | prepared 0), P(read 0 | prepared 1))."""

ENTANGLEMENT_THRESHOLD = 0.5
"""GHZ/Bell fidelity above 1/2 witnesses genuine multipartite entanglement."""

CERTIFICATION_SIGMAS = 2.0
"""Certification needs the estimate to clear the threshold by this many standard errors, so a
noisy estimate sitting just above 0.5 is not advertised as certified."""

MIRROR_PASS_POLARIZATION = 1 / math.e
"""Mirror-circuit pass line (Proctor et al.): polarization >= 1/e."""


@dataclass(frozen=True)
class Estimate:
    """A sample-mean estimate and its standard error (0.0 when every shot agreed)."""

    value: float
    stderr: float


def bit_matrix(counts: Counts) -> tuple[np.ndarray, np.ndarray]:
    """(bits, weights): bits[j, i] is clbit i of the j-th distinct outcome; weights are its counts.

    Register separators are dropped and the string reversed so that column i is clbit i.
    """
    keys = [k.replace(" ", "") for k in counts]
    if not keys:
        raise ValueError("empty counts")
    width = len(keys[0])
    if any(len(k) != width for k in keys):
        raise ValueError("counts keys have different widths")
    raw = np.frombuffer("".join(keys).encode("ascii"), dtype=np.uint8).reshape(len(keys), width)
    bits = (raw[:, ::-1] - ord("0")).astype(np.intp)
    if bits.size and (bits.min() < 0 or bits.max() > 1):
        raise ValueError("counts keys must be binary strings")
    weights = np.fromiter(counts.values(), dtype=np.float64, count=len(keys))
    return bits, weights


def _mean_and_stderr(values: np.ndarray, weights: np.ndarray) -> Estimate:
    shots = float(weights.sum())
    if shots <= 0:
        raise ValueError("counts hold no shots")
    mean = float(np.dot(weights, values) / shots)
    if shots < 2:
        return Estimate(mean, 0.0)
    variance = float(np.dot(weights, (values - mean) ** 2) / (shots - 1))
    return Estimate(mean, math.sqrt(max(variance, 0.0) / shots))


def _inverse_assignment(assignment: Assignment | None, width: int) -> np.ndarray:
    """inv[i, s, k]: entry (true s, read k) of the inverse assignment matrix of clbit i."""
    inv = np.zeros((width, 2, 2))
    inv[:, 0, 0] = inv[:, 1, 1] = 1.0
    if assignment is None:
        return inv
    if len(assignment) != width:
        raise ValueError(f"assignment has {len(assignment)} entries for {width} clbits")
    for i, (a, b) in enumerate(assignment):
        det = 1.0 - a - b
        if det <= 0:
            raise ValueError(f"readout error on clbit {i} too large to invert (a={a}, b={b})")
        inv[i] = np.array([[1 - b, -b], [-a, 1 - a]]) / det
    return inv


def mitigation_gamma(assignment: Assignment | None) -> float:
    """Shot-noise amplification of a mitigated full-register parity: Π 1/(1 - a - b)."""
    if not assignment:
        return 1.0
    return float(np.prod([1.0 / (1.0 - a - b) for a, b in assignment]))


def parity_expectation(counts: Counts, assignment: Assignment | None = None) -> Estimate:
    """<Z⊗…⊗Z> over all clbits (after a basis change this is <X^n>, <XX>, <YY>, …)."""
    bits, weights = bit_matrix(counts)
    inv = _inverse_assignment(assignment, bits.shape[1])
    # g[i, k] = sum_s (-1)^s inv[i, s, k]: the per-clbit factor of the mitigated parity.
    g = inv[:, 0, :] - inv[:, 1, :]
    values = np.prod(g[np.arange(bits.shape[1]), bits], axis=1)
    return _mean_and_stderr(values, weights)


def outcome_probability(counts: Counts, targets: Sequence[str],
                        assignment: Assignment | None = None) -> Estimate:
    """P(any of ``targets``) (qiskit-ordered bitstrings), optionally readout-mitigated."""
    bits, weights = bit_matrix(counts)
    width = bits.shape[1]
    inv = _inverse_assignment(assignment, width)
    values = np.zeros(len(weights))
    columns = np.arange(width)
    for target in targets:
        if len(target) != width:
            raise ValueError(f"target {target!r} has {len(target)} bits, counts have {width}")
        true_bits = np.array([int(c) for c in reversed(target)], dtype=np.intp)
        values += np.prod(inv[columns, true_bits[None, :], bits], axis=1)
    return _mean_and_stderr(values, weights)


def _normalised(dist: Mapping[str, float]) -> dict[str, float]:
    total = float(sum(dist.values()))
    if total <= 0:
        raise ValueError("distribution sums to zero")
    merged: dict[str, float] = {}
    for key, value in dist.items():
        k = key.replace(" ", "")
        merged[k] = merged.get(k, 0.0) + float(value) / total
    return merged


def hellinger_fidelity(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """(Σ_i sqrt(p_i q_i))², the same quantity as ``qiskit.quantum_info.hellinger_fidelity``.

    Accepts counts or probabilities (each side is normalised).
    """
    pn, qn = _normalised(p), _normalised(q)
    overlap = sum(math.sqrt(v * qn[k]) for k, v in pn.items() if k in qn)
    return min(1.0, overlap * overlap)


def uniform_floor(ideal: Mapping[str, float], num_qubits: int) -> float:
    """F_H(uniform, ideal) = (Σ sqrt(q_i))² / 2^n: 2^(1-n) for GHZ, 2^-n for one bitstring."""
    qn = _normalised(ideal)
    root_sum = sum(math.sqrt(v) for v in qn.values())
    return root_sum * root_sum / 2.0**num_qubits


def normalized_fidelity(measured: Mapping[str, float], ideal: Mapping[str, float],
                        num_qubits: int) -> float:
    """QED-C normalised fidelity: (F_H - floor)/(1 - floor) clipped to [0, 1]."""
    floor = uniform_floor(ideal, num_qubits)
    raw = hellinger_fidelity(measured, ideal)
    if floor >= 1.0:
        return 1.0
    return min(1.0, max(0.0, (raw - floor) / (1.0 - floor)))


def ghz_ideal_distribution(num_qubits: int) -> dict[str, float]:
    """{0^n: 1/2, 1^n: 1/2}."""
    return {"0" * num_qubits: 0.5, "1" * num_qubits: 0.5}


def is_certified(estimate: Estimate, threshold: float = ENTANGLEMENT_THRESHOLD,
                 sigmas: float = CERTIFICATION_SIGMAS) -> bool:
    """True when ``estimate`` exceeds ``threshold`` by at least ``sigmas`` standard errors."""
    return estimate.value - sigmas * estimate.stderr > threshold


@dataclass(frozen=True)
class GHZFidelity:
    """Two-setting GHZ bound and its ingredients."""

    lower_bound: Estimate
    population: Estimate
    parity: Estimate

    @property
    def certified(self) -> bool:
        return is_certified(self.lower_bound)


def ghz_fidelity_lower_bound(z_counts: Counts, x_counts: Counts,
                             z_assignment: Assignment | None = None,
                             x_assignment: Assignment | None = None) -> GHZFidelity:
    """F >= P + (<X^n> - 1)/2 from a Z-basis and an all-H run (independent shots).

    Why it never overestimates (in expectation): F = P/2 + Re ρ(0ⁿ,1ⁿ) and
    <X^n> = 2 Re ρ(0ⁿ,1ⁿ) + Σ 2 Re ρ(s, s̄) over the other antipodal pairs, whose magnitude is at
    most the population outside {0ⁿ, 1ⁿ}, 1 - P. Substituting gives the bound; it is tight when
    all population sits in {0ⁿ, 1ⁿ} and loose by at most (1 - P)/2.
    Var = Var(P) + Var(<X^n>)/4.
    """
    width = len(next(iter(z_counts)).replace(" ", ""))
    population = outcome_probability(z_counts, ["0" * width, "1" * width], z_assignment)
    parity = parity_expectation(x_counts, x_assignment)
    value = population.value + (parity.value - 1.0) / 2.0
    stderr = math.sqrt(population.stderr**2 + parity.stderr**2 / 4.0)
    return GHZFidelity(Estimate(value, stderr), population, parity)


@dataclass(frozen=True)
class BellFidelity:
    """Stabilizer-expectation Bell fidelity and its three correlators."""

    fidelity: Estimate
    zz: Estimate
    xx: Estimate
    yy: Estimate

    @property
    def certified(self) -> bool:
        return is_certified(self.fidelity)


def bell_fidelity(zz_counts: Counts, xx_counts: Counts, yy_counts: Counts,
                  assignments: Sequence[Assignment | None] = (None, None, None)) -> BellFidelity:
    """F(|Phi+>) = (1 + <XX> - <YY> + <ZZ>)/4; the three settings are independent runs."""
    zz = parity_expectation(zz_counts, assignments[0])
    xx = parity_expectation(xx_counts, assignments[1])
    yy = parity_expectation(yy_counts, assignments[2])
    value = (1.0 + xx.value - yy.value + zz.value) / 4.0
    stderr = math.sqrt(xx.stderr**2 + yy.stderr**2 + zz.stderr**2) / 4.0
    return BellFidelity(Estimate(value, stderr), zz, xx, yy)


@dataclass(frozen=True)
class MirrorScore:
    """Mirror-circuit success probability s and polarization (s - 2^-n)/(1 - 2^-n)."""

    success: Estimate
    polarization: Estimate
    passed: bool


def mirror_score(counts: Counts, ideal_bitstring: str) -> MirrorScore:
    """Raw (unmitigated) score: the mirror test is meant to charge the whole stack, SPAM included."""
    n = len(ideal_bitstring)
    success = outcome_probability(counts, [ideal_bitstring])
    floor = 2.0**-n
    scale = 1.0 / (1.0 - floor)
    polarization = Estimate((success.value - floor) * scale, success.stderr * scale)
    return MirrorScore(success, polarization, polarization.value >= MIRROR_PASS_POLARIZATION)
