"""The collector settings of the server processes (qcos.runtime), checked in fresh interpreters."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

REPORT = "import gc, json, sys; print(json.dumps([gc.get_freeze_count(), gc.get_threshold()[0], sorted(m for m in ('qiskit', 'qiskit_aer', 'qcos.api.views', 'workers.execution') if m in sys.modules)]))"


def _run(code: str) -> list:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "qcos.settings", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code + "\n" + REPORT], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_fresh_interpreter_has_the_defaults():
    frozen, gen0, _ = _run("pass")
    assert frozen == 0 and gen0 == 700


def test_gunicorn_workers_load_the_views_then_freeze():
    frozen, gen0, loaded = _run("import qcos.wsgi")
    assert frozen > 50_000 and gen0 == 700
    assert {"qiskit", "qcos.api.views"} <= set(loaded)  # imported before freezing, not on a first request


def test_celery_workers_freeze_before_the_pool_forks():
    frozen, gen0, loaded = _run("from qcos.celery import app\nfrom celery.signals import worker_init\n"
                                "worker_init.send(sender=None)")
    assert frozen > 50_000 and gen0 == 700
    assert {"qiskit_aer", "workers.execution"} <= set(loaded)
