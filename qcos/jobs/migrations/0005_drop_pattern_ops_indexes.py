"""Drop the ``varchar_pattern_ops`` ("_like") indexes Django adds beside the indexes of the job
tables' text keys. They serve only left-anchored LIKE queries, which nothing here runs (the admin
searches job ids with ``icontains``), yet every job writes an entry into each. PostgreSQL only;
going back does not recreate them."""

from django.db import migrations

TABLES = ["jobs_quantumjob", "jobs_jobresult", "jobs_idempotencyrecord"]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = ANY(%s) "
            "AND indexdef LIKE '%%varchar_pattern_ops%%'", [TABLES],
        )
        names = [name for (name,) in cursor.fetchall()]
    for name in names:
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}", params=None)


class Migration(migrations.Migration):
    dependencies = [("jobs", "0004_quantumjob_tenant_no_own_index")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
