"""Execution targets for benchmarks, all simulated locally with qiskit-aer.

Three kinds, resolved by name (:func:`resolve_backend`, cached per process because building a
127-qubit noise model costs about a second):

* ``simulator`` — ideal ``AerSimulator``; circuits are *not* transpiled (transpiling against the
  stabilizer method's 10,000-qubit target costs seconds and changes nothing for these gates).
* ``fake_<device>`` — every ``qiskit_ibm_runtime.fake_provider`` calibration snapshot (e.g.
  ``fake_brisbane``, ``fake_sherbrooke``, ``fake_torino``). Noise is
  ``NoiseModel.from_backend(backend, thermal_relaxation=False)``: depolarizing gate errors plus
  readout errors, which Aer's stabilizer method accepts (thermal relaxation is not Clifford), so
  ``ghz_100q`` runs noisy; each run gets that model restricted to the qubits it touches (same
  physics, ~5x faster per-shot noise sampling; see :class:`bench.noise.DeviceNoise`). Circuits
  are transpiled to the device with ``seed_transpiler``, with
  level-2 layout (noise-aware VF2 keeps bad-readout qubits out of small circuits); see
  :meth:`ExecutionBackend.prepare`.
* hardware names — ``ibm_brisbane`` → fake_brisbane, ``ibm_heron``/``ibm_torino`` → fake_torino
  (any ``ibm_<x>`` with a ``fake_<x>`` snapshot maps the same way), and ``ionq_aria``,
  ``rigetti_ankaa``, ``quantinuum_h2`` on :data:`bench.noise.MODELLED_DEVICES`. These are never real hardware
  here: results carry ``dev_mode=True`` and :data:`DEV_MODE_WARNING`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qiskit import QuantumCircuit
from qiskit.circuit.library import RZGate
from qiskit.transpiler import CouplingMap, PassManager, generate_preset_pass_manager
from qiskit_aer import AerSimulator
from qiskit_aer.noise import NoiseModel

from bench.noise import MODELLED_DEVICES, DeviceErrorRates, DeviceNoise, modelled_noise_model

DEV_MODE_WARNING = (
    "DEV MODE: Using SimulatorExecutor. Results are simulated. Data stored in-memory only."
)
LAYOUT_LEVEL = 2
OPTIMIZATION_LEVEL = 1
SNAP_TOLERANCE = 1e-9
"""rz angles within this of a multiple of pi/2 are snapped onto it: transpiled Clifford circuits
carry float round-off that Aer's stabilizer method rejects (qiskit-aer #1928)."""

STABILIZER_GATES = frozenset(
    {"cx", "cy", "cz", "ecr", "h", "id", "rz", "s", "sdg", "swap", "sx", "sxdg", "x", "y", "z",
     "measure", "barrier", "delay", "reset"}
)
MAX_DENSE_QUBITS = 28
"""Above this a non-Clifford circuit cannot be simulated here (statevector memory)."""


class UnknownBackendError(ValueError):
    """The backend name is not available here (API error code ``BACKEND_UNAVAILABLE``)."""

    code = "BACKEND_UNAVAILABLE"


class BackendCapacityError(ValueError):
    """A workload needs more qubits than the backend has."""

    code = "BACKEND_TOO_SMALL"


HARDWARE_ALIASES: dict[str, str] = {
    "ibm_brisbane": "fake_brisbane",
    "ibm_heron": "fake_torino",
    "ibm_torino": "fake_torino",
}


def _fake_classes() -> dict[str, type]:
    """``fake_<device>`` → FakeBackendV2 subclass, derived from class names without instantiating."""
    from qiskit_ibm_runtime import fake_provider
    from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

    found: dict[str, type] = {}
    for attr in dir(fake_provider):
        cls = getattr(fake_provider, attr)
        if not (isinstance(cls, type) and issubclass(cls, FakeBackendV2)):
            continue
        if not attr.startswith("Fake") or attr == "FakeFractionalBackend":
            continue  # FakeFractionalBackend is a feature demo, not a device snapshot
        stem = attr[len("Fake"):]
        stem = stem[:-2] if stem.endswith("V2") else stem
        found[f"fake_{stem.lower()}"] = cls
    return found


@functools.cache
def fake_backend_names() -> tuple[str, ...]:
    return tuple(sorted(_fake_classes()))


def list_backends() -> list[dict[str, Any]]:
    """Every backend name accepted by :func:`resolve_backend`, with its kind and dev-mode flag."""
    rows: list[dict[str, Any]] = [{"id": "simulator", "kind": "ideal", "dev_mode": False}]
    rows += [{"id": n, "kind": "fake_ibm", "dev_mode": False} for n in fake_backend_names()]
    rows += [{"id": n, "kind": "fake_ibm", "dev_mode": True, "calibration": t}
             for n, t in sorted(HARDWARE_ALIASES.items())]
    rows += [{"id": n, "kind": "modelled", "dev_mode": True, "qubits": d.qubits}
             for n, d in sorted(MODELLED_DEVICES.items())]
    return rows


def _canonical_fake(name: str) -> str | None:
    if name in HARDWARE_ALIASES:
        return HARDWARE_ALIASES[name]
    if name.startswith("ibm_") and f"fake_{name[4:]}" in fake_backend_names():
        return f"fake_{name[4:]}"
    return None


def snap_clifford_angles(circuit: QuantumCircuit, tol: float = SNAP_TOLERANCE) -> QuantumCircuit:
    """Snap rz angles within ``tol`` of k·pi/2 onto k·pi/2 (in place; returns the circuit)."""
    half_pi = math.pi / 2
    for index, instruction in enumerate(circuit.data):
        if instruction.operation.name != "rz":
            continue
        angle = instruction.operation.params[0]
        if not isinstance(angle, float | int):
            continue
        k = round(float(angle) / half_pi)
        snapped = k * half_pi
        if abs(float(angle) - snapped) <= tol and float(angle) != snapped:
            circuit.data[index] = instruction.replace(operation=RZGate(snapped))
    return circuit


def is_clifford_circuit(circuit: QuantumCircuit) -> bool:
    """Gates the stabilizer method accepts, with every rz angle an exact multiple of pi/2."""
    for instruction in circuit.data:
        op = instruction.operation
        if op.name not in STABILIZER_GATES:
            return False
        if op.name == "rz":
            angle = op.params[0]
            if not isinstance(angle, float | int):
                return False
            quarter_turns = float(angle) / (math.pi / 2)
            if abs(quarter_turns - round(quarter_turns)) > SNAP_TOLERANCE:
                return False
    return True


@dataclass
class ExecutionBackend:
    """A resolved, ready-to-run target. Build with :func:`resolve_backend`, not directly."""

    name: str
    kind: str
    num_qubits: int
    dev_mode: bool
    description: str
    readout: Mapping[int, tuple[float, float]] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    _device: Any = None
    _basis_gates: tuple[str, ...] | None = None
    _coupling_map: CouplingMap | None = None
    _noise_model: NoiseModel | None = None
    _local_errors: DeviceNoise | None = None
    _simulators: dict[str, AerSimulator] = field(default_factory=dict)

    @property
    def noise_model(self) -> NoiseModel | None:
        """The whole-device model (for fake backends: ``from_backend(thermal_relaxation=False)``)."""
        if self._noise_model is None and self._local_errors is not None:
            self._noise_model = self._local_errors.restricted(None)
        return self._noise_model

    def noise_model_for(self, circuits: Sequence[QuantumCircuit]) -> NoiseModel | None:
        """The device model restricted to the physical qubits ``circuits`` touch.

        Same physics (an error on an idle qubit can never fire), but Aer's per-shot noise
        sampling looks errors up per gate and qubit tuple, and with all 127 qubits' entries a
        noisy 10-qubit mirror circuit ran ~5x slower (3.0 s vs 0.6 s at 1,024 shots).
        """
        if self._local_errors is None:
            return self._noise_model
        active: set[int] = set()
        for circuit in circuits:
            for inst in circuit.data:
                if inst.operation.name != "barrier":
                    active.update(circuit.find_bit(q).index for q in inst.qubits)
        return self._local_errors.restricted(active)

    @classmethod
    def custom(cls, name: str, noise_model: NoiseModel | None, num_qubits: int = 10_000
               ) -> ExecutionBackend:
        """Logical circuits (no transpilation) under a caller-supplied Aer noise model.

        For tests and what-if studies (e.g. injecting pure dephasing); never dev-mode hardware.
        """
        return cls(name=name, kind="custom", num_qubits=num_qubits, dev_mode=False,
                   description="custom Aer noise model on logical circuits",
                   calibration={"model": "custom"}, _noise_model=noise_model)

    @property
    def warning(self) -> str | None:
        return DEV_MODE_WARNING if self.dev_mode else None

    def check_capacity(self, workload_id: str, qubits: int) -> None:
        if qubits > self.num_qubits:
            raise BackendCapacityError(
                f"workload {workload_id!r} needs {qubits} qubits but backend {self.name!r} has "
                f"{self.num_qubits}"
            )

    def _pass_manager(self, level: int, seed_transpiler: int) -> PassManager:
        if self._device is not None:
            return generate_preset_pass_manager(optimization_level=level, backend=self._device,
                                                seed_transpiler=seed_transpiler)
        return generate_preset_pass_manager(
            optimization_level=level, basis_gates=list(self._basis_gates or ()),
            coupling_map=self._coupling_map, seed_transpiler=seed_transpiler)

    def prepare(self, circuits: Sequence[QuantumCircuit], seed_transpiler: int) -> list[QuantumCircuit]:
        """Transpile for the device (not for ``simulator``) and snap Clifford rz angles.

        Layout, routing and translation come from optimisation level 2 (noise-aware VF2 layout);
        the ``init`` and ``optimization`` stages from level 1. Why: level 2's two-qubit block
        re-synthesis turns Clifford blocks into KAK forms with arbitrary rz angles (e.g. rz(-2.18)
        around an ECR), which the stabilizer method rejects even though the block is Clifford.
        If a Clifford input still comes out non-Clifford, plain level 1 is used instead.
        """
        if self._device is None and self._basis_gates is None:
            return list(circuits)  # ideal or custom: run the logical circuits as built
        pm = self._pass_manager(LAYOUT_LEVEL, seed_transpiler)
        light = self._pass_manager(OPTIMIZATION_LEVEL, seed_transpiler)
        pm.init, pm.optimization = light.init, light.optimization
        out = [snap_clifford_angles(c) for c in pm.run(list(circuits))]
        if all(is_clifford_circuit(c) for c in circuits) and not all(map(is_clifford_circuit, out)):
            out = [snap_clifford_angles(c) for c in light.run(list(circuits))]
        return out

    def simulation_method(self, circuits: Sequence[QuantumCircuit]) -> str:
        """``stabilizer`` for Clifford batches; dense methods only where memory allows."""
        if all(is_clifford_circuit(c) for c in circuits):
            return "stabilizer"
        widest = max(c.num_qubits for c in circuits)
        if widest > MAX_DENSE_QUBITS:
            raise BackendCapacityError(
                f"non-Clifford circuit on {widest} qubits cannot be simulated here"
            )
        noisy = self._noise_model is not None or self._local_errors is not None
        return "density_matrix" if noisy else "statevector"

    def simulator(self, method: str) -> AerSimulator:
        """One AerSimulator per method; the noise model is passed per run (see ``noise_model_for``)."""
        if method not in self._simulators:
            self._simulators[method] = AerSimulator(method=method)
        return self._simulators[method]

    def assignment(self, physical_qubits: Sequence[int]) -> list[tuple[float, float]] | None:
        """Readout (P(1|0), P(0|1)) per measured physical qubit, or None when readout is ideal."""
        if not self.readout:
            return None
        return [self.readout.get(q, (0.0, 0.0)) for q in physical_qubits]


def _modelled(name: str, rates: DeviceErrorRates) -> ExecutionBackend:
    e = rates.readout
    coupling = CouplingMap.from_grid(*rates.grid) if rates.grid else None
    return ExecutionBackend(
        name=name, kind="modelled", num_qubits=rates.qubits, dev_mode=True,
        description=f"{rates.display_name}: depolarizing + readout model, {rates.topology}",
        _noise_model=modelled_noise_model(rates), readout={q: (e, e) for q in range(rates.qubits)},
        calibration={
            "model": "depolarizing+readout",
            "one_qubit_error": rates.one_qubit, "two_qubit_error": rates.two_qubit,
            "readout_error": rates.readout, "topology": rates.topology, "source": rates.source,
        },
        _basis_gates=rates.basis_gates, _coupling_map=coupling,
    )


def _fake_ibm(name: str, fake_name: str) -> ExecutionBackend:
    device = _fake_classes()[fake_name]()
    noise = DeviceNoise.from_device(device)
    readout: dict[int, tuple[float, float]] = {}
    for qubits, error in noise.readout_errors:
        probs = error.probabilities
        readout[int(qubits[0])] = (float(probs[0][1]), float(probs[1][0]))
    props = device.properties()
    last_update = getattr(props, "last_update_date", None)
    return ExecutionBackend(
        name=name, kind="fake_ibm", num_qubits=device.num_qubits,
        dev_mode=name != fake_name,
        description=f"{fake_name} calibration snapshot, depolarizing + readout noise "
                    f"(thermal relaxation off for the stabilizer method)",
        _local_errors=noise, readout=readout,
        calibration={
            "model": "NoiseModel.from_backend(thermal_relaxation=False)",
            "snapshot": fake_name, "backend_version": str(getattr(device, "backend_version", "")),
            "last_update_date": last_update.isoformat() if last_update else None,
        },
        _device=device,
    )


@dataclass(frozen=True)
class BackendInfo:
    """What a request needs to know about a backend name, without building its noise model."""

    name: str
    kind: str
    num_qubits: int
    dev_mode: bool

    @property
    def warning(self) -> str | None:
        return DEV_MODE_WARNING if self.dev_mode else None

    def check_capacity(self, workload_id: str, qubits: int) -> None:
        if qubits > self.num_qubits:
            raise BackendCapacityError(
                f"workload {workload_id!r} needs {qubits} qubits but backend {self.name!r} has "
                f"{self.num_qubits}"
            )


def available_backends() -> list[str]:
    return ["simulator", *sorted(HARDWARE_ALIASES), *sorted(MODELLED_DEVICES), "fake_<device>", "ibm_<device>"]


@functools.lru_cache(maxsize=128)
def backend_info(name: str) -> BackendInfo:
    """Kind, size and DEV-MODE flag of a backend name (cheap: for validating requests in the web
    process). Unknown names raise :class:`UnknownBackendError`, as :func:`resolve_backend` does."""
    if name == "simulator":
        return BackendInfo(name, "ideal", 10_000, False)
    if name in MODELLED_DEVICES:
        return BackendInfo(name, "modelled", MODELLED_DEVICES[name].qubits, True)
    fake = name if name in fake_backend_names() else _canonical_fake(name)
    if fake is not None:
        return BackendInfo(name, "fake_ibm", _fake_classes()[fake]().num_qubits, name != fake)
    raise UnknownBackendError(f"unknown backend {name!r}; available: {', '.join(available_backends())}")


@functools.lru_cache(maxsize=16)
def resolve_backend(name: str) -> ExecutionBackend:
    """Name → cached :class:`ExecutionBackend`; unknown names raise :class:`UnknownBackendError`."""
    if name == "simulator":
        return ExecutionBackend(
            name="simulator", kind="ideal", num_qubits=10_000, dev_mode=False,
            description="ideal AerSimulator (stabilizer method for Clifford circuits)",
            calibration={"model": "ideal"},
        )
    if name in MODELLED_DEVICES:
        return _modelled(name, MODELLED_DEVICES[name])
    fake = name if name in fake_backend_names() else _canonical_fake(name)
    if fake is not None:
        return _fake_ibm(name, fake)
    known = ["simulator", *sorted(HARDWARE_ALIASES), *sorted(MODELLED_DEVICES), "fake_<device>"]
    raise UnknownBackendError(f"unknown backend {name!r}; available: {', '.join(known)}")
