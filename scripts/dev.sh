#!/usr/bin/env bash
# The embedded default: SQLite under var/, tasks executed in-process, the local Aer simulator.
# Sets everything up, prints a demo tenant, an admin login and an API key, runs one Bell job,
# then serves QCOS on http://127.0.0.1:${PORT:-8000} (admin at /admin/, API docs at /api/docs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DEBUG="${DEBUG:-true}"
unset CELERY_BROKER_URL
mkdir -p var
.venv/bin/python manage.py migrate --noinput -v0
.venv/bin/python manage.py collectstatic --noinput -v0
.venv/bin/python manage.py reconcile_jobs >/dev/null   # finish jobs a previous run left behind
.venv/bin/python manage.py demo
echo "  Try:          QCOS_API_KEY=<key above> .venv/bin/qcos execute circuit.qasm --backend simulator --shots 1024"
exec .venv/bin/python manage.py runserver --noreload "127.0.0.1:${PORT:-8000}"
