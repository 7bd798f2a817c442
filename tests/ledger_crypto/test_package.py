"""The crypto core must stay importable by the SDK and CLI without Django or boto3."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_core_pulls_in_neither_django_nor_boto3() -> None:
    code = (
        "import sys, ledger.crypto, ledger.crypto.archive; "
        "bad = [m for m in ('django', 'boto3', 'botocore') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env={"PYTHONPATH": str(ROOT)})
