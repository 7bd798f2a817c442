"""Append-only audit log on PostgreSQL: triggers refuse UPDATE (except the sequencer's one-time
linking of an unsequenced entry), DELETE and TRUNCATE. Someone who owns the table can still
disable triggers; the hash chain and signed checkpoints are what catch that."""

from django.db import migrations

FORWARD = r"""
CREATE OR REPLACE FUNCTION ledger_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Test databases are emptied between tests with TRUNCATE; they opt in per database with
    -- ALTER DATABASE ... SET qcos.audit_truncate_allowed = 'on' (which needs the owner, who could
    -- drop the trigger anyway). Production never sets it.
    IF TG_OP = 'TRUNCATE' AND current_setting('qcos.audit_truncate_allowed', true) = 'on' THEN
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
CREATE TRIGGER ledger_audit_no_update BEFORE UPDATE ON ledger_auditentry
    FOR EACH ROW EXECUTE FUNCTION ledger_audit_guard();
CREATE TRIGGER ledger_audit_no_delete BEFORE DELETE ON ledger_auditentry
    FOR EACH ROW EXECUTE FUNCTION ledger_audit_guard();
CREATE TRIGGER ledger_audit_no_truncate BEFORE TRUNCATE ON ledger_auditentry
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_audit_guard();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS ledger_audit_no_update ON ledger_auditentry;
DROP TRIGGER IF EXISTS ledger_audit_no_delete ON ledger_auditentry;
DROP TRIGGER IF EXISTS ledger_audit_no_truncate ON ledger_auditentry;
DROP FUNCTION IF EXISTS ledger_audit_guard();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
