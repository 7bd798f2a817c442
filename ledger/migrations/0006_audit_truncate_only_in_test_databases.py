"""TRUNCATE of the audit log only in a test database, whatever a session sets.

0002 let TRUNCATE through when the setting ``qcos.audit_truncate_allowed`` was on; any session can
``SET`` a custom setting, so any session could empty the log. The guard now lets TRUNCATE through
only when the current database's name starts with ``test_`` (the test databases pytest-django and
Django's test runner create). A session cannot change which database it is connected to, and
PostgreSQL refuses to rename the database a session is using. The setting is ignored from now on.
"""

from django.db import migrations

GUARD = r"""
CREATE OR REPLACE FUNCTION ledger_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Test databases are emptied between tests with TRUNCATE (docs/audit.md).
    IF TG_OP = 'TRUNCATE' AND current_database() LIKE 'test\_%' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE'
       AND OLD.seq IS NULL AND NEW.seq IS NOT NULL
       AND NEW.id = OLD.id AND NEW.audit_id = OLD.audit_id AND NEW.timestamp = OLD.timestamp
       AND NEW.tenant_slug = OLD.tenant_slug AND NEW.action = OLD.action
       AND NEW.resource_type = OLD.resource_type AND NEW.resource_id = OLD.resource_id
       AND NEW.outcome = OLD.outcome AND NEW.payload = OLD.payload
       AND OLD.prev_hash = '' AND OLD.entry_hash = '' THEN
        RETURN NEW;  -- the sequencer links an entry into the chain, once
    END IF;
    RAISE EXCEPTION 'ledger_auditentry is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(GUARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        from importlib import import_module

        previous = import_module("ledger.migrations.0002_audit_append_only").FORWARD
        schema_editor.execute(previous.split("CREATE TRIGGER", 1)[0], params=None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0005_bundles_of_benchmarks")]
    operations = [migrations.RunPython(forward, backward)]
