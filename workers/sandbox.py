"""Simulations in a subprocess that the operating system can stop.

A simulation is native code (qiskit-aer's C++ and OpenMP threads): Celery's soft time limit
cannot interrupt it, and a worker process that ran it keeps the memory it grew to. So every
job's simulation runs in a sandbox: a separate Python process, started fresh with
``python -m workers.sandbox_process`` (fork and exec, never a bare fork of a process that has Aer's
threads; ``sandbox_process.py``), that imports the providers once and then runs one job at a
time for as long as it lives. Per job it gets the circuit's text, the backend's name and the shots over a pipe and
answers with the counts and metadata (JSON frames both ways: nothing it sends can execute code
in the worker).

The limits (``QCOS["JOB_WALL_SECONDS"]``, ``JOB_CPU_SECONDS``, ``JOB_MEMORY_MB``) are enforced by
the kernel and by the waiting worker, not by the code they bound:

* memory: ``RLIMIT_AS`` of the sandbox's own footprint after its warm-up plus the limit, and Aer's
  ``max_memory_mb`` (Aer then refuses a state vector that would not fit before allocating it);
  an allocation past the limit fails, and the job fails with ``MEMORY_LIMIT_EXCEEDED``;
* CPU: ``RLIMIT_CPU`` set before each job to the CPU the sandbox has used so far plus the limit;
  past it the kernel ends the sandbox with SIGXCPU (``TIME_LIMIT_EXCEEDED``);
* wall clock: the worker waits for the answer at most that long, then SIGKILLs the sandbox
  (``TIME_LIMIT_EXCEEDED``).

A sandbox that was killed is replaced at once, in the background, so the next job finds one
warm. A sandbox dies with the thread that started it (``PR_SET_PDEATHSIG``; they are started from
one long-lived thread per process): a worker process killed by -9 or by Celery's hard time
limit leaves no simulation running. Per job the cost is a pipe round trip; the ~1 s start (the
imports and a warm-up simulation) is paid when a worker process starts or after a kill.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import struct
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .providers.base import ExecutionOutcome, ProviderError

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 120.0
"""How long a job waits for a new sandbox's imports and warm-up (seconds on a busy host)."""
RECYCLE_GROWTH_MB = 256
"""A sandbox whose resident memory grew by more than this over a job is replaced, so that a big
simulation's heap does not stay with the worker."""
_HEADER = struct.Struct(">I")
_MAX_FRAME = 64 * 1024 * 1024


@dataclass(frozen=True)
class Limits:
    wall_seconds: float
    cpu_seconds: int
    memory_mb: int

    @classmethod
    def from_settings(cls) -> Limits:
        from django.conf import settings

        config = settings.QCOS
        return cls(wall_seconds=float(config["JOB_WALL_SECONDS"]), cpu_seconds=int(config["JOB_CPU_SECONDS"]),
                   memory_mb=int(config["JOB_MEMORY_MB"]))


class LimitExceeded(ProviderError):
    """The job's simulation was stopped at one of its limits; trying again cannot help."""

    def __init__(self, message: str, *, code: str):
        super().__init__(message, code=code, transient=False)


class SandboxUnavailable(ProviderError):
    def __init__(self, message: str):
        super().__init__(message, code="SANDBOX_UNAVAILABLE", transient=True)


# --- framing (both sides) ------------------------------------------------------------------------


def write_frame(fd: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload, separators=(",", ":"), default=_plain).encode()
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None  # the other side is gone
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> dict[str, Any] | None:
    header = _read_exactly(fd, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > _MAX_FRAME:
        raise ValueError(f"sandbox frame of {size} bytes")
    data = _read_exactly(fd, size)
    return None if data is None else json.loads(data)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars in Aer's metadata
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# --- the worker's side ---------------------------------------------------------------------------


_spawner: tuple[int, ThreadPoolExecutor] | None = None
_spawner_lock = threading.Lock()


def _spawn_thread() -> ThreadPoolExecutor:
    """One long-lived thread per process starts every sandbox: the kernel's parent-death signal
    follows the thread that forked, and a request thread (embedded mode) may end any time."""
    global _spawner
    with _spawner_lock:
        if _spawner is None or _spawner[0] != os.getpid():
            _spawner = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="qcos-sandbox-spawner"))
        return _spawner[1]


class Sandbox:
    """One sandbox process and the two pipes to it. Not thread-safe: one job at a time."""

    def __init__(self) -> None:
        self._ready = self._timed_out = False
        self.baseline_kb = self.start_rss_kb = self.rss_kb = 0
        self.process, self._send_fd, self._recv_fd = _spawn_thread().submit(self._start).result()

    @staticmethod
    def _start() -> tuple[subprocess.Popen, int, int]:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        env = dict(os.environ)
        # One BLAS thread and two malloc arenas: the address space the memory limit counts is
        # the simulation's, not idle thread pools'.
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        env.setdefault("MALLOC_ARENA_MAX", "2")
        env.setdefault("DJANGO_SETTINGS_MODULE", "qcos.settings")
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "workers.sandbox_process", str(to_child_r), str(from_child_w), str(os.getpid())],
                cwd=ROOT, env=env, pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL,
                stdout=None, stderr=None, close_fds=True,
            )
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        os.set_inheritable(to_child_w, False)
        os.set_inheritable(from_child_r, False)
        return process, to_child_w, from_child_r

    @property
    def alive(self) -> bool:
        return self._send_fd >= 0 and self.process.poll() is None

    @property
    def grown(self) -> bool:
        return self.rss_kb - self.start_rss_kb > RECYCLE_GROWTH_MB * 1024

    def run(self, *, backend: str, circuit: str, shots: int, seed: int | None, limits: Limits) -> ExecutionOutcome:
        if not self._ready:
            ready = self._receive(START_TIMEOUT_SECONDS)
            if ready is None or not ready.get("ready"):
                self.kill()
                raise SandboxUnavailable(self._death_message("the simulation sandbox did not start"))
            self._ready, self.baseline_kb = True, int(ready["vm_kb"])
            self.start_rss_kb = self.rss_kb = int(ready["rss_kb"])
        request = {"backend": backend, "circuit": circuit, "shots": shots, "seed": seed,
                   "cpu_seconds": limits.cpu_seconds, "memory_mb": limits.memory_mb}
        try:
            write_frame(self._send_fd, request)
            answer = self._receive(limits.wall_seconds)
        except BrokenPipeError:
            answer = None
        except BaseException:
            # Celery's soft time limit (or anything else) interrupted the wait: the simulation
            # must not outlive the job.
            self.kill()
            raise
        if answer is None:
            raise self._stopped(limits)
        self.rss_kb = int(answer["rss_kb"])
        if not answer["ok"]:
            raise ProviderError(answer["message"], code=answer["code"], transient=answer["transient"])
        return ExecutionOutcome(**answer["outcome"])

    def _receive(self, timeout: float) -> dict[str, Any] | None:
        """The next frame, or None if none came within ``timeout`` (the sandbox is then killed)
        or the sandbox died."""
        ready, _, _ = select.select([self._recv_fd], [], [], timeout)
        if not ready:
            self.kill(timed_out=True)
            return None
        frame = read_frame(self._recv_fd)
        if frame is None:
            self.process.wait()
            self._close()
        return frame

    def _stopped(self, limits: Limits) -> ProviderError:
        status = self.process.returncode
        if self._timed_out:
            return LimitExceeded(f"the simulation ran past the job's wall-clock limit of {limits.wall_seconds:g} s "
                                 "and was stopped", code="TIME_LIMIT_EXCEEDED")
        if status == -signal.SIGXCPU:
            return LimitExceeded(f"the simulation used more than the job's CPU time limit of {limits.cpu_seconds} s "
                                 "and was stopped", code="TIME_LIMIT_EXCEEDED")
        if status in (-signal.SIGABRT, -signal.SIGKILL, -signal.SIGSEGV, -signal.SIGBUS):
            # Under RLIMIT_AS a failed allocation in native code aborts (an uncaught bad_alloc) or
            # faults; a SIGKILL we did not send is the kernel's OOM killer.
            return LimitExceeded(f"the simulation was ended by signal {-status} (most likely out of memory under "
                                 f"the job's limit of {limits.memory_mb} MB)", code="MEMORY_LIMIT_EXCEEDED")
        return ProviderError(f"the simulation sandbox exited unexpectedly (status {status})",
                             code="EXECUTION_ERROR", transient=False)

    def _death_message(self, what: str) -> str:
        return f"{what} (exit status {self.process.returncode})"

    def kill(self, *, timed_out: bool = False) -> None:
        self._timed_out = timed_out
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._close()

    def close(self) -> None:
        """Let an idle sandbox exit on its own (it reads end of file)."""
        self._close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()

    def _close(self) -> None:
        for name in ("_send_fd", "_recv_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)


class SandboxPool:
    """The idle sandboxes of this process: a job takes one (or starts one) and gives it back.
    One per process suffices under the prefork pool; the threads pool and the embedded mode's
    request threads get one each while they run a job."""

    def __init__(self) -> None:
        self._idle: list[Sandbox] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def _mine(self) -> None:
        if self._pid != os.getpid():  # forked: the parent's sandboxes are not ours to use
            self._idle, self._lock, self._pid = [], threading.Lock(), os.getpid()

    def take(self) -> Sandbox:
        self._mine()
        with self._lock:
            while self._idle:
                sandbox = self._idle.pop()
                if sandbox.alive:
                    return sandbox
                sandbox.kill()
        return Sandbox()

    def give(self, sandbox: Sandbox) -> None:
        self._mine()
        if sandbox.alive and sandbox.grown:
            sandbox.close()
        if not sandbox.alive:
            sandbox = Sandbox()  # a replacement warms up in the background
        with self._lock:
            self._idle.append(sandbox)

    def prewarm(self) -> None:
        self._mine()
        with self._lock:
            if self._idle:
                return
        self.give(Sandbox())

    def shutdown(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for sandbox in idle:
            sandbox.close()


pool = SandboxPool()


def simulate(*, backend: str, circuit: str, shots: int, seed: int | None = None,
             limits: Limits | None = None) -> ExecutionOutcome:
    """Run ``circuit`` (OpenQASM text) on ``backend`` in a sandbox under ``limits`` (the
    settings' by default). Raises ProviderError; ``LimitExceeded`` when a limit stopped it."""
    limits = limits or Limits.from_settings()
    sandbox = pool.take()
    try:
        return sandbox.run(backend=backend, circuit=circuit, shots=shots, seed=seed, limits=limits)
    finally:
        pool.give(sandbox)
