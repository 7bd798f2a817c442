"""``qcos_fence(ok, code)`` on PostgreSQL: raises SQLSTATE ``code`` unless ``ok``.

A pipelined transaction (``qcos.rowload.pipeline``) sends its conditional statements, its writes
and its COMMIT together, before any result is read. A condition that must hold for the writes to
be kept -- the completing attempt still holds its job -- is checked by the server instead: the
statement calls ``qcos_fence``, whose error aborts the transaction, so the COMMIT that follows
rolls it back. Codes: ``QC001`` (the attempt lost its job), ``QC002`` (a charge was no longer HELD).
"""

from django.db import migrations

FORWARD = r"""
CREATE OR REPLACE FUNCTION qcos_fence(ok boolean, code text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION 'qcos fence % failed', code USING ERRCODE = code;
    END IF;
    RETURN true;
END;
$$;
"""

BACKWARD = "DROP FUNCTION IF EXISTS qcos_fence(boolean, text);"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("jobs", "0002_job_costs")]
    operations = [migrations.RunPython(forward, backward)]
