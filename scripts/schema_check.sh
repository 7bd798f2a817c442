#!/usr/bin/env bash
# Run schemathesis against the served OpenAPI schema (tests/api/test_openapi_schemathesis.py) and
# list the operations whose answers the schema does not describe, with the first failure of each.
#
#   scripts/schema_check.sh                      # PostgreSQL (DATABASE_URL or the local default), then SQLite
#   scripts/schema_check.sh -k 'POST and jobs'   # one operation (any pytest arguments)
#   QCOS_SCHEMA_MAX_EXAMPLES=200 scripts/schema_check.sh   # a deeper run than the suite's 20 per operation
#
# Full output of each pass: var/schema-check-<pass>.log.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p var
status=0
run_pass() {
  local name="$1"; shift
  local log="var/schema-check-$name.log"
  echo "--- $name ---"
  env "$@" COLUMNS=200 .venv/bin/python -m pytest tests/api/test_openapi_schemathesis.py -p no:cacheprovider \
    -q --tb=short -p no:logging "${PYTEST_ARGS[@]}" > "$log" 2>&1
  local rc=$?
  # One line per failing operation, then the distinct kinds of failure found.
  grep -E '^_+ test_every_answer_is_documented\[' "$log" | sed -E 's/^_+ test_every_answer_is_documented\[(.*)\] _+$/FAILED \1/'
  grep -E '^\s+\| - [A-Z]{2}[0-9]+ ' "$log" | sed -E 's/^\s+\| - //' | sort | uniq -c
  tail -1 "$log"
  [ "$rc" -eq 0 ] || status=1
}
PYTEST_ARGS=("$@")
run_pass postgresql DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/qcos}"
run_pass sqlite DATABASE_URL="sqlite:///$(mktemp -d)/qcos-schema.sqlite3" QCOS_TEST_EMBEDDED=1
exit "$status"
