"""The tables every job writes carry only the indexes something reads through."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's indexes"),
]

HOT_TABLES = ["jobs_quantumjob", "jobs_jobresult", "jobs_idempotencyrecord", "ledger_auditentry",
              "ledger_bundlerecord", "ledger_provenance", "ledger_registryleaf"]


def _indexes(table: str) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])
        return dict(cursor.fetchall())


def test_no_pattern_ops_index_on_the_tables_each_job_writes():
    """Django adds a varchar_pattern_ops twin to every text key's index; nothing here runs a
    left-anchored LIKE, and each twin costs every job an index entry (migrations jobs 0005 and
    ledger 0004 drop them)."""
    twins = {table: name for table in HOT_TABLES for name, definition in _indexes(table).items()
             if "pattern_ops" in definition}
    assert twins == {}


def test_a_jobs_tenant_lookups_use_the_composite_indexes():
    definitions = _indexes("jobs_quantumjob").values()
    assert not any(d.endswith("USING btree (tenant_id)") for d in definitions)
    assert any("(tenant_id, submitted_at DESC)" in d for d in definitions)
    assert any("(tenant_id, status)" in d for d in definitions)
