"""Drop the ``varchar_pattern_ops`` ("_like") indexes Django adds beside the indexes of the ledger
tables' text keys. They serve only left-anchored LIKE queries, which nothing here runs (the admin
searches them by exact value), yet every job writes an entry into each. PostgreSQL only;
going back does not recreate them."""

from django.db import migrations

TABLES = ["ledger_auditentry", "ledger_bundlerecord", "ledger_provenance", "ledger_registryleaf"]


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
    dependencies = [("ledger", "0003_evidence_registry_keys")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
