"""Real parts for integration tests: PostgreSQL (the test database), a private redis-server on a
free port, real ``celery -A qcos worker`` processes, and the live HTTP server.

The machine's shared Redis is never touched: fault tests stop and restart their own. Under
``CI=true`` missing PostgreSQL or redis-server is a failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() == "true"


# The embedded-default pass (test.sh's second pass, SQLite) runs after the PostgreSQL pass has run
# every PostgreSQL-only test: there, and only there, missing PostgreSQL is expected, not a failure.
EMBEDDED_PASS = bool(os.environ.get("QCOS_TEST_EMBEDDED"))


def _unavailable(reason: str) -> None:
    if IN_CI and not EMBEDDED_PASS:
        pytest.fail(f"integration prerequisites missing under CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture
def postgres_db(transactional_db):
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        _unavailable("integration tests need DATABASE_URL on PostgreSQL")


def _tied_to_this_process() -> None:
    """preexec_fn: own process group, and SIGTERM when the test process dies (even by a crash),
    so no worker or redis-server outlives the test run that started it."""
    import ctypes

    os.setsid()
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, interval: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


@dataclass
class RedisServer:
    """A private redis-server that a test may stop and start again on the same port."""

    port: int
    workdir: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            _unavailable("redis-server is not installed")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_tied_to_this_process,
        )
        wait_for(self._pong, 10, message=f"redis on {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    server = RedisServer(port=free_port(), workdir=tmp_path)
    server.start()
    yield server
    server.stop()


def database_url() -> str:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@dataclass
class Worker:
    process: subprocess.Popen
    log: Path
    extra: dict = field(default_factory=dict)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def children(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


# Short leases and intervals so that recovery happens within seconds in tests.
TEST_WORKER_ENV = {
    "QCOS_JOB_LEASE_SECONDS": "2",
    "QCOS_RECONCILE_INTERVAL": "1",
    "QCOS_REQUEUE_AFTER_SECONDS": "2",
    "QCOS_REGISTRY_SEQUENCE_INTERVAL": "1",
    "QCOS_AUDIT_SEQUENCE_INTERVAL": "1",
    "CONN_MAX_AGE": "0",
}


def _shared_audit_dirs(settings) -> dict[str, str]:
    """Workers run tests.settings too: publish audit checkpoints where this process verifies them and
    pin the ledger key they load where this process trusts keys (tests/settings.py)."""
    from ledger.keys import trusted_keys_dir

    return {"QCOS_TEST_AUDIT_CHECKPOINT_DIR": settings.QCOS["AUDIT_CHECKPOINT_DIR"],
            "QCOS_TEST_LEDGER_TRUSTED_KEYS_DIR": str(trusted_keys_dir())}


@pytest.fixture
def start_worker(postgres_db, tmp_path, settings):
    """Start ``celery -A qcos worker -B`` processes against the test database and a broker."""
    workers: list[Worker] = []
    settings.QCOS = {**settings.QCOS, **{"JOB_LEASE_SECONDS": 2.0, "REQUEUE_AFTER_SECONDS": 2.0}}

    def start(broker_url: str, *, concurrency: int = 1, beat: bool = True, env: dict | None = None) -> Worker:
        """``env``: extra environment for this worker (job limits, a DATABASE_URL through a proxy)."""
        extra = env or {}
        index = len(workers)
        log = tmp_path / f"worker{index}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
        env.update(TEST_WORKER_ENV, DATABASE_URL=database_url(), CELERY_BROKER_URL=broker_url,
                   QCOS_KEY_DIR=settings.QCOS["KEY_DIR"], **_shared_audit_dirs(settings),
                   CELERY_TASK_ALWAYS_EAGER="false", PYTHONPATH=str(ROOT))
        env.update(extra)
        cmd = [sys.executable, "-m", "celery", "-A", "qcos", "worker", "--loglevel", "INFO",
               "--concurrency", str(concurrency), "--pool", "prefork", "-Q", "jobs.local,maintenance",
               "-n", f"test{index}-{os.getpid()}@%h", "--without-mingle", "--without-gossip"]
        if beat:
            cmd += ["-B", "-s", str(tmp_path / f"beat{index}")]
        # QCOS keeps the root logger (CELERY_WORKER_HIJACK_ROOT_LOGGER=False): the log is stderr.
        with open(log, "wb") as sink:
            process = subprocess.Popen(cmd, cwd=ROOT, env=env, preexec_fn=_tied_to_this_process,
                                       stdout=sink, stderr=subprocess.STDOUT)
        worker = Worker(process=process, log=log)
        workers.append(worker)
        wait_for(lambda: "ready." in worker.text() or process.poll() is not None, 60, 0.2, "worker ready")
        assert process.poll() is None, worker.text()
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def celery_on(settings):
    """Point this process's Celery app (the web side) at a broker instead of eager execution."""
    from qcos.celery import app

    def use(broker_url: str) -> None:
        app.conf.update(broker_url=broker_url, task_always_eager=False)
        _drop_connections(app)

    yield use
    app.conf.update(broker_url=settings.CELERY_BROKER_URL, task_always_eager=settings.CELERY_TASK_ALWAYS_EAGER)
    _drop_connections(app)


def _drop_connections(app) -> None:
    """Forget pooled broker connections (kombu keeps global pools keyed by connection, which even
    eager mode acquires a producer from)."""
    from kombu import pools

    pools.reset()
    app._pool = None
    if "amqp" in app.__dict__:
        app.amqp._producer_pool = None


class DatabaseProxy:
    """A TCP proxy to the test database on a fixed loopback port, for fault tests: ``stop()`` closes
    the port and every connection through it, as a database host going away does (``reset=True``
    answers with RST instead of FIN); ``start()`` opens the same port again."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self, *, reset: bool = False) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            try:
                if reset:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                else:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def database_url(self) -> str:
        db = settings.DATABASES["default"]
        return database_url().replace(f"@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/",
                                      f"@127.0.0.1:{self.port}/")

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # stopped meanwhile
                    client.close()
                    server.close()
                    return
                self._open.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def db_proxy(postgres_db) -> Iterator[DatabaseProxy]:
    db = settings.DATABASES["default"]
    proxy = DatabaseProxy((db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)))
    proxy.start()
    yield proxy
    proxy.stop()
