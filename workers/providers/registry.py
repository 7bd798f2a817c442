"""The backend catalogue. Adapters are imported lazily so that the web process never pays for a
provider SDK it does not call, and each worker process builds an adapter once and keeps it warm.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module

from .base import BackendSpec, ProviderAdapter

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
