"""The SDK must stay installable and importable without the server's stack."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


def test_imports_with_django_blocked():
    proc = run(
        'import sys; sys.modules["django"] = None; '
        "import qcos_sdk, qcos_sdk.cli; "
        "from qcos_sdk import QCOSClient; "
        'assert not any(m == "django" or m.startswith("django.") for m in sys.modules '
        'if sys.modules[m] is not None), "django imported"; print("ok")'
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_sdk_source_never_mentions_django_import():
    for path in (REPO / "qcos_sdk").glob("*.py"):
        text = path.read_text()
        assert "import django" not in text and "from django" not in text, path


def test_python_dash_m_entrypoint():
    proc = run("import runpy, sys; sys.argv = ['qcos', '--version']; "
               "runpy.run_module('qcos_sdk', run_name='__main__')")
    assert proc.returncode == 0, proc.stderr
    assert "qcos 0.1.0" in proc.stdout
