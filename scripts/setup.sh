#!/usr/bin/env bash
# Create .venv (if needed) and install QCOS with every dependency. Sourced by dev.sh and test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.qcos-installed
if [ ! -f "$stamp" ] || [ requirements.txt -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "Installing QCOS and its dependencies into .venv (log: .venv/install.log)…"
  {
    .venv/bin/python -m pip install --upgrade pip &&
    .venv/bin/python -m pip install -r requirements.txt &&
    .venv/bin/python -m pip install --no-deps -e .
  } > .venv/install.log 2>&1 || { tail -40 .venv/install.log >&2; exit 1; }
  touch "$stamp"
fi
