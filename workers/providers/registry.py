"""The backend catalogue. Adapters are imported lazily so that the web process never pays for a
provider SDK it does not call, and each worker process builds an adapter once and keeps it warm.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module

from .base import BackendSpec, ProviderAdapter

# Dense (non-Clifford) circuits on the noise models: statevector trajectories, 2^20 amplitudes.
DEV_MODE_MAX_DENSE_QUBITS = 20
DEV_MODE_BACKENDS: tuple[tuple[str, str, int, str], ...] = (
    ("ibm_brisbane", "ibm_quantum", 127, "IBM Brisbane on the fake_brisbane calibration snapshot"),
    ("ibm_heron", "ibm_quantum", 133, "IBM Heron on the fake_torino calibration snapshot"),
    ("ibm_torino", "ibm_quantum", 133, "IBM Torino on the fake_torino calibration snapshot"),
    ("ionq_aria", "ionq", 25, "IonQ Aria on a model of its published error rates"),
    ("rigetti_ankaa", "rigetti", 84, "Rigetti Ankaa-3 on a model of its published error rates"),
    ("quantinuum_h2", "quantinuum", 56, "Quantinuum H2 on a model of its published error rates"),
    ("fake_brisbane", "local", 127, "FakeBrisbane calibration snapshot"),
    ("fake_sherbrooke", "local", 127, "FakeSherbrooke calibration snapshot"),
    ("fake_torino", "local", 133, "FakeTorino calibration snapshot"),
)

BACKENDS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in [
        BackendSpec(
            name="simulator",
            provider="local",
            description="Ideal local simulator (qiskit-aer; stabilizer method for Clifford circuits).",
            max_qubits=28,
            max_qubits_clifford=1000,
            queue="jobs.local",
            adapter="workers.providers.aer:AerAdapter",
        ),
        # DEV MODE (workers/providers/devmode.py): hardware names and IBM calibration snapshots,
        # simulated locally on the Benchmarking API's noise models until provider credentials exist.
        *[
            BackendSpec(
                name=name, provider=provider, description=(f"DEV MODE: {description} (simulated locally)." if provider != "local"
                             else f"{description} (simulated locally)."),
                max_qubits=min(qubits, DEV_MODE_MAX_DENSE_QUBITS), max_qubits_clifford=qubits,
                queue="jobs.local", adapter=f"workers.providers.devmode:{name}",
                warning=(f"DEV MODE: {name} is simulated locally on a noise model of the device; "
                         "the results are simulated, not measured on hardware." if provider != "local" else ""),
            )
            for name, provider, qubits, description in DEV_MODE_BACKENDS
        ],
    ]
}

# The queue every worker listens on for periodic maintenance (the reconciler).
MAINTENANCE_QUEUE = "maintenance"


def get_backend(name: str) -> BackendSpec | None:
    return BACKENDS.get(name)


def all_queues() -> list[str]:
    return sorted({spec.queue for spec in BACKENDS.values()} | {MAINTENANCE_QUEUE})


@cache
def adapter_for(name: str) -> ProviderAdapter:
    spec = BACKENDS[name]
    module_name, _, attr = spec.adapter.partition(":")
    return getattr(import_module(module_name), attr)()
