#!/usr/bin/env bash
# The whole test suite on PostgreSQL + Redis + real Celery workers (the integration tests start
# their own redis-server and workers; the machine's shared services are never stopped).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/qcos}"
unset CELERY_BROKER_URL   # unit tests run tasks in-process; integration tests set their own broker

# Make sure PostgreSQL answers; start the local cluster if it is installed but stopped.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
fi
pg_isready -q -h 127.0.0.1 -p 5432 || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server is not installed (apt-get install redis-server)" >&2; exit 1; }

run_pytest() {
  set +e
  .venv/bin/python -m pytest tests -p no:cacheprovider "$@"
  local status=$?
  set -e
  if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure" >&2
    return 1
  fi
  return "$status"
}

# 1. Everything on PostgreSQL, integration tests included.
run_pytest "$@"
# 2. The embedded default (SQLite, tasks in-process) gets its own pass of the non-integration tests.
if [ "$#" -eq 0 ]; then
  sqlite_db="$(mktemp -d)/qcos-test.sqlite3"
  echo "--- embedded default: SQLite pass ($sqlite_db) ---"
  DATABASE_URL="sqlite:///$sqlite_db" QCOS_TEST_EMBEDDED=1 run_pytest -q --ignore=tests/integration
fi
