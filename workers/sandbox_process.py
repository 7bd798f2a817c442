"""The sandbox process: runs one job's simulation at a time for a worker (``sandbox.py``).

Started by the worker as ``python -m workers.sandbox_process <request fd> <answer fd> <worker
pid>``. It arms the parent-death signal, imports the providers and runs a warm-up simulation,
measures its footprint, announces itself, then answers one request frame at a time under the
request's CPU and memory limits, until the worker closes the pipe.
"""

from __future__ import annotations

import logging
import math
import os
import resource
import signal
import sys
from dataclasses import asdict
from typing import Any

from .providers.base import ExecutionOutcome, ProviderError
from .sandbox import read_frame, write_frame

logger = logging.getLogger(__name__)


def _vm_kb() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * resource.getpagesize() // 1024


def _rss_kb() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() // 1024


_MEMORY_MARKERS = ("Insufficient memory", "Cannot allocate memory", "bad_alloc", "MemoryError",
                   "failed to map segment")


class _Runner:
    def __init__(self) -> None:
        from qcos.jobs import circuits

        from .providers import devmode  # noqa: F401  (imported before the limit, like Aer: see below)
        from .providers.aer import AerAdapter
        from .providers.registry import adapter_for

        self._parse = circuits.parse_circuit
        self._circuit_error = circuits.CircuitError
        self._adapter_for = adapter_for
        self._memory_aware = (AerAdapter,)
        self._memory_mb: int | None = None
        # Warm up: the imports and the first simulation load the libraries and Aer's threads,
        # which the baseline (and so the memory limit) must include; an import under the limit
        # could fail half-way and leave this process unusable.
        self.execute({"backend": "simulator", "shots": 1, "seed": 1, "circuit":
                      'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[1];\nh q[0];\nmeasure q -> c;\n'})
        self.baseline_kb = _vm_kb()

    def limit(self, *, cpu_seconds: int, memory_mb: int) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
        soft = math.ceil(usage.ru_utime + usage.ru_stime) + cpu_seconds
        resource.setrlimit(resource.RLIMIT_CPU, (soft if cpu_hard == resource.RLIM_INFINITY else min(soft, cpu_hard),
                                                 cpu_hard))
        if memory_mb != self._memory_mb:
            _, as_hard = resource.getrlimit(resource.RLIMIT_AS)
            soft = (self.baseline_kb + memory_mb * 1024) * 1024
            resource.setrlimit(resource.RLIMIT_AS, (soft if as_hard == resource.RLIM_INFINITY else min(soft, as_hard),
                                                    as_hard))
            self._memory_mb = memory_mb

    def execute(self, request: dict[str, Any]) -> ExecutionOutcome:
        circuit = self._parse(request["circuit"])
        adapter = self._adapter_for(request["backend"])
        options = {}
        if self._memory_mb is not None and isinstance(adapter, self._memory_aware):
            options["max_memory_mb"] = self._memory_mb
        return adapter.run(circuit, shots=request["shots"], seed=request.get("seed"), **options)

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        memory_mb = int(request["memory_mb"])
        try:
            self.limit(cpu_seconds=int(request["cpu_seconds"]), memory_mb=memory_mb)
            outcome = self.execute(request)
        except MemoryError:
            return _failure("MEMORY_LIMIT_EXCEEDED", f"the simulation needs more than the job's memory limit "
                                                     f"of {memory_mb} MB")
        except ProviderError as exc:
            if any(marker in str(exc) for marker in _MEMORY_MARKERS):
                return _failure("MEMORY_LIMIT_EXCEEDED", f"the simulation needs more than the job's memory limit "
                                                         f"of {memory_mb} MB ({exc})")
            return _failure(exc.code, str(exc), exc.transient)
        except self._circuit_error as exc:  # checked at submission; limits may have changed since
            return _failure("INVALID_CIRCUIT", str(exc))
        except Exception as exc:
            if any(marker in str(exc) for marker in _MEMORY_MARKERS):
                return _failure("MEMORY_LIMIT_EXCEEDED", f"the simulation needs more than the job's memory limit "
                                                         f"of {memory_mb} MB ({type(exc).__name__}: {exc})")
            logger.exception("simulation failed unexpectedly")
            return _failure("EXECUTION_ERROR", f"{type(exc).__name__}: {exc}")
        return {"ok": True, "outcome": asdict(outcome), "rss_kb": _rss_kb()}


def _failure(code: str, message: str, transient: bool = False) -> dict[str, Any]:
    return {"ok": False, "code": code, "message": message, "transient": transient, "rss_kb": _rss_kb()}


def _die_with_parent(parent_pid: int) -> None:
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)


def main(argv: list[str]) -> int:
    recv_fd, send_fd, parent_pid = (int(arg) for arg in argv)
    _die_with_parent(parent_pid)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXCPU and aborts must not write core files
    os.dup2(2, 1)  # a library's print goes to the worker's log, never into a frame
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s sandbox %(message)s")
    runner = _Runner()
    write_frame(send_fd, {"ready": True, "vm_kb": runner.baseline_kb, "rss_kb": _rss_kb(), "pid": os.getpid()})
    while True:
        request = read_frame(recv_fd)
        if request is None:  # the worker closed the pipe: retire quietly
            return 0
        write_frame(send_fd, runner.answer(request))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
