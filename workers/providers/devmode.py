"""DEV MODE for hardware backend names: jobs run locally on the benchmark noise models.

Without a provider's credentials, a job sent to ``ibm_brisbane``, ``ibm_heron``, ``ibm_torino``,
``ionq_aria``, ``rigetti_ankaa`` or ``quantinuum_h2`` (or to a ``fake_<device>`` calibration
snapshot) is simulated by qiskit-aer under the same noise model the Benchmarking API uses
(:func:`bench.backends.resolve_backend`: IBM names on their fake backend's calibration, the
others on a model of the device's published error rates), transpiled to the device's basis and
coupling map. The outcome says so: ``metadata.dev_mode``/``metadata.warning`` and a calibration
record whose ``calibration_id`` names the snapshot or model, both of which land in the job's
signed evidence bundle.

Clifford circuits (after transpilation) run on the stabilizer method at any width the device
has; others on the statevector method with noise sampled per shot (trajectories), which is why
the catalogue caps them at :data:`DEV_MODE_MAX_DENSE_QUBITS` active qubits.

The registry names adapters by a zero-argument factory; ``workers.providers.devmode:<name>``
resolves through the module ``__getattr__`` below to a factory for that backend name.
"""

from __future__ import annotations

from collections.abc import Callable

from qiskit import QuantumCircuit
from qiskit_aer import __version__ as aer_version

from bench.backends import DEV_MODE_WARNING, ExecutionBackend, is_clifford_circuit, resolve_backend

from .base import ExecutionOutcome, ProviderError

DEV_MODE_MAX_DENSE_QUBITS = 20
DEFAULT_SEED_TRANSPILER = 0
"""Jobs carry no seed: a fixed transpiler seed keeps a circuit's layout stable across runs."""


class DevModeAdapter:
    def __init__(self, name: str) -> None:
        self.name = name
        self._backend: ExecutionBackend = resolve_backend(name)  # builds the noise model once per worker

    def run(self, circuit: QuantumCircuit, *, shots: int, seed: int | None = None) -> ExecutionOutcome:
        backend = self._backend
        try:
            (prepared,) = backend.prepare([circuit], DEFAULT_SEED_TRANSPILER if seed is None else seed)
        except Exception as exc:
            raise ProviderError(f"cannot transpile for {self.name}: {exc}", code="TRANSPILE_FAILED") from exc
        method = "stabilizer" if is_clifford_circuit(prepared) else "statevector"
        options = {"shots": shots, "noise_model": backend.noise_model_for([prepared])}
        if seed is not None:
            options["seed_simulator"] = seed
        try:
            result = backend.simulator(method).run(prepared, **options).result()
        except Exception as exc:
            raise ProviderError(f"simulation failed: {exc}", code="SIMULATION_FAILED") from exc
        if not result.success or not result.results[0].success:
            raise ProviderError(f"simulation failed: {result.status}", code="SIMULATION_FAILED")
        experiment = result.results[0]
        calibration = dict(backend.calibration)
        snapshot = calibration.get("snapshot") or calibration.get("model")
        return ExecutionOutcome(
            counts={str(k): int(v) for k, v in result.get_counts(0).items()},
            execution_ms=float(experiment.time_taken) * 1000.0,
            execution_ms_source="aer.result.results[0].time_taken (DEV MODE simulation)",
            backend_version=f"qiskit-aer {aer_version} dev-mode {self.name}",
            metadata={"method": method, "dev_mode": backend.dev_mode, "warning": backend.warning,
                      "simulated_on": backend.description, "seed_simulator": experiment.seed_simulator},
            calibration={"calibration_id": f"dev-mode:{self.name}:{snapshot}", "dev_mode": backend.dev_mode,
                         "warning": backend.warning or DEV_MODE_WARNING, "noise_model": calibration},
        )


def __getattr__(name: str) -> Callable[[], DevModeAdapter]:
    if name.startswith("__"):
        raise AttributeError(name)
    return lambda: DevModeAdapter(name)
