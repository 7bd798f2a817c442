"""On PostgreSQL, ``NOTIFY qcos_job_finished`` when a job reaches a terminal state.

A trigger on ``jobs_quantumjob`` sends one notification when an UPDATE moves a job into
COMPLETED, FAILED, CANCELLED or REJECTED, whichever code path made the change. PostgreSQL delivers
it to every session that ran ``LISTEN qcos_job_finished``, and only when the transaction commits,
so a listener never hears of a state that could still roll back. The payload is a JSON object:
``{"job_id": ..., "tenant_id": ..., "status": ...}``. Listeners are operators' tools on the
database itself (``perf/pipeline.py`` uses it to see a job finish without polling); the API
does not expose it.

Only terminal transitions notify, one per job: PostgreSQL serialises the commits of
notifying transactions on its notification queue, so the job's other transitions stay silent.
"""

from django.db import migrations

FORWARD = r"""
CREATE OR REPLACE FUNCTION qcos_job_finished_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('qcos_job_finished', json_build_object(
        'job_id', NEW.id, 'tenant_id', NEW.tenant_id, 'status', NEW.status)::text);
    RETURN NULL;
END;
$$;
CREATE TRIGGER qcos_job_finished
    AFTER UPDATE OF status ON jobs_quantumjob
    FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status
          AND NEW.status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'REJECTED'))
    EXECUTE FUNCTION qcos_job_finished_notify();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS qcos_job_finished ON jobs_quantumjob;
DROP FUNCTION IF EXISTS qcos_job_finished_notify();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("jobs", "0005_drop_pattern_ops_indexes")]
    operations = [migrations.RunPython(forward, backward)]
