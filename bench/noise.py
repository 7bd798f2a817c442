"""Noise models behind the simulated backends, and where their numbers come from.

Two sources, both depolarizing + readout so that Aer's stabilizer method accepts them (it rejects
thermal relaxation, which is not a Pauli channel) and GHZ up to 100 qubits stays simulable:

* :class:`DeviceNoise` — an IBM calibration snapshot (``qiskit_ibm_runtime`` fake backend), the
  entries of ``NoiseModel.from_backend(device, thermal_relaxation=False)``;
* :data:`MODELLED_DEVICES` — published headline error rates of non-IBM devices, applied uniformly
  to every qubit (:func:`modelled_noise_model`). These are coarse: no crosstalk, no idle or
  transport errors, no leakage. Results on them run in DEV MODE and must not be sold as hardware.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error


@dataclass(frozen=True)
class DeviceErrorRates:
    """Published headline error rates used for a depolarizing + readout model of a device.

    ``one_qubit``/``two_qubit`` are average gate *infidelities* r; the model applies
    ``depolarizing_error(λ)`` with λ = r·d/(d−1) (d = 2 or 4), which has exactly that average
    infidelity. ``readout`` is a symmetric assignment error per qubit.
    """

    display_name: str
    qubits: int
    one_qubit: float
    two_qubit: float
    readout: float
    topology: str
    source: str
    basis_gates: tuple[str, ...] = ("rz", "sx", "x", "cz")
    grid: tuple[int, int] | None = None


MODELLED_DEVICES: dict[str, DeviceErrorRates] = {
    "ionq_aria": DeviceErrorRates(
        display_name="IonQ Aria (modelled)", qubits=25,
        one_qubit=5e-4, two_qubit=4e-3, readout=3.9e-3, topology="all-to-all",
        source=(
            "Microsoft Azure Quantum, 'IonQ provider' page, IonQ Aria system fidelity table: "
            "1q 99.95% (SPAM-corrected), 2q 99.6%, SPAM 99.61%; 25 qubits, all-to-all. "
            "The native MS gate is modelled as CZ (locally equivalent)."
        ),
    ),
    "quantinuum_h2": DeviceErrorRates(
        display_name="Quantinuum H2 (modelled)", qubits=56,
        one_qubit=3e-5, two_qubit=1.8e-3, readout=1.6e-3, topology="all-to-all",
        source=(
            "Moses et al., 'A Race-Track Trapped-Ion Quantum Processor', PRX 13, 041052 (2023), "
            "arXiv:2305.03828: SPAM error 1.6e-3; 1q infidelity ~3e-5 and 2q infidelity ~1.8e-3 "
            "(abstract figures for the 32-qubit configuration; only the SPAM figure was "
            "re-checked when this model was written). 56 qubits per Azure Quantum's H2-1 "
            "listing. The native ZZ gate is modelled as CZ (locally equivalent)."
        ),
    ),
    "rigetti_ankaa": DeviceErrorRates(
        display_name="Rigetti Ankaa-3 (modelled)", qubits=84,
        one_qubit=1e-3, two_qubit=1e-2, readout=3e-2, topology="square lattice 7x12",
        grid=(7, 12),
        source=(
            "Rigetti Ankaa-3 launch figures (Dec 2024): median 2q fidelity 99.0% (iSWAP), "
            "1q ~99.9%; 84 qubits per Azure Quantum's Ankaa-3 listing. Readout 3% is an "
            "assumption (no headline readout figure was verified). CZ is one of Ankaa's native "
            "entanglers; connectivity is a 7x12 square lattice."
        ),
    ),
}

def modelled_noise_model(rates: DeviceErrorRates) -> NoiseModel:
    """All-qubit depolarizing errors on ``sx``/``x`` and the 2q gate, symmetric readout error.

    ``rz`` is virtual (error-free), as on the devices modelled.
    """
    noise = NoiseModel(basis_gates=list(rates.basis_gates))
    one_q = [g for g in rates.basis_gates if g in ("sx", "x")]
    noise.add_all_qubit_quantum_error(depolarizing_error(rates.one_qubit * 2, 1), one_q)
    noise.add_all_qubit_quantum_error(depolarizing_error(rates.two_qubit * 4 / 3, 2), ["cz"])
    e = rates.readout
    noise.add_all_qubit_readout_error(ReadoutError([[1 - e, e], [e, 1 - e]]))
    return noise


@dataclass(frozen=True)
class DeviceNoise:
    """The entries of ``NoiseModel.from_backend(device, thermal_relaxation=False)``, kept as lists.

    Built with the same public helpers ``from_backend`` uses (readout errors first, then gate
    errors, onto a model whose basis is the device's operation names), so
    :meth:`restricted` with ``None`` reproduces that model and with a qubit set gives its exact
    restriction.
    """

    basis_gates: tuple[str, ...]
    readout_errors: tuple[tuple[tuple[int, ...], ReadoutError], ...]
    gate_errors: tuple[tuple[str, tuple[int, ...], Any], ...]

    @classmethod
    def from_device(cls, device: Any) -> DeviceNoise:
        from qiskit_aer.noise.device import basic_device_gate_errors, basic_device_readout_errors

        readout = basic_device_readout_errors(target=device.target)
        gates = basic_device_gate_errors(thermal_relaxation=False, target=device.target)
        return cls(
            basis_gates=tuple(device.operation_names),
            readout_errors=tuple((tuple(q), e) for q, e in readout),
            gate_errors=tuple((name, tuple(q), e) for name, q, e in gates),
        )

    def restricted(self, qubits: set[int] | None) -> NoiseModel:
        model = NoiseModel(basis_gates=list(self.basis_gates))
        for q, error in self.readout_errors:
            if qubits is None or set(q) <= qubits:
                model.add_readout_error(error, list(q))
        for name, q, error in self.gate_errors:
            if qubits is None or set(q) <= qubits:
                model.add_quantum_error(error, name, list(q))
        return model
