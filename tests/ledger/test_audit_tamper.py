"""Tampering with the audit log as its database's owner, and verification that still notices.

The attacker here controls PostgreSQL (a separate connection as the database owner: triggers
disabled, rows rewritten with the chain recomputed by the project's own ``chain_hash``, checkpoint
rows deleted, the log truncated) but not the files outside it: the published checkpoints and the
pinned ledger keys. Both verifiers, ``manage.py verify_audit`` and ``POST /api/v2.1/audit/verify``,
must report every such change.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from ledger.audit import GENESIS, audit_append, audit_sequence, audit_verify, chain_hash, system_principal
from ledger.crypto.note import sign_checkpoint
from ledger.crypto.signing import LocalSigner
from ledger.keys import keyring, pinned_ledger_keyring, signer_for
from ledger.models import AuditCheckpoint, AuditEntry, SigningKey

pytestmark = pytest.mark.django_db(transaction=True)
pg_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="triggers and owners are PostgreSQL's")


@pytest.fixture
def auditor(db):
    from tests.conftest import _actor

    return _actor("research-alpha", "aud@alpha.example", "auditor")


def _append(count: int) -> None:
    for index in range(count):
        audit_append(action="REPORT_GENERATED", principal=system_principal("tamper-test", "research-alpha"),
                     details={"n": index})


@pytest.fixture
def log(auditor):
    """Three checkpoints published as the log grows (the auditor's own entries come first)."""
    for _ in range(3):
        _append(2)
        audit_sequence(checkpoint=True)
    published = sorted(os.listdir(_checkpoint_dir()))
    assert len(published) == 3 and AuditCheckpoint.objects.filter(published_at__isnull=True).count() == 0
    return [int(name.split(".")[0]) for name in published]


def _checkpoint_dir() -> Path:
    from django.conf import settings

    return Path(settings.QCOS["AUDIT_CHECKPOINT_DIR"])


def _owner(dbname: str | None = None) -> psycopg.Connection:
    """A connection of the database's owner, separate from the application's."""
    params = connection.settings_dict
    return psycopg.connect(host=params["HOST"] or "127.0.0.1", port=params["PORT"] or 5432, user=params["USER"],
                           password=params["PASSWORD"] or None, dbname=dbname or params["NAME"], autocommit=True)


def _as_owner(*statements: str) -> None:
    with _owner() as conn:
        conn.execute("ALTER TABLE ledger_auditentry DISABLE TRIGGER USER")
        for statement in statements:
            conn.execute(statement)
        conn.execute("ALTER TABLE ledger_auditentry ENABLE TRIGGER USER")


def _rewrite(seq: int) -> None:
    """Change one entry's outcome and recompute every later link, so the chain is consistent."""
    with _owner() as conn:
        conn.execute("ALTER TABLE ledger_auditentry DISABLE TRIGGER USER")
        prev = GENESIS
        for row_id, row_seq, payload in conn.execute(
            "SELECT id, seq, payload FROM ledger_auditentry WHERE seq IS NOT NULL ORDER BY seq"
        ).fetchall():
            if row_seq == seq:
                payload = payload.replace('"outcome":"SUCCESS"', '"outcome":"FAILURE"')
            entry_hash = chain_hash(prev, payload)
            conn.execute("UPDATE ledger_auditentry SET payload = %s, prev_hash = %s, entry_hash = %s, "
                         "outcome = CASE WHEN seq = %s THEN 'FAILURE' ELSE outcome END WHERE id = %s",
                         [payload, prev, entry_hash, seq, row_id])
            prev = entry_hash
        conn.execute("ALTER TABLE ledger_auditentry ENABLE TRIGGER USER")


def _both_verifiers_fail(auditor, problem: str) -> dict:
    with pytest.raises(CommandError, match="BROKEN") as failure:
        call_command("verify_audit")
    assert problem in str(failure.value)
    report = auditor.client.post("/api/v2.1/audit/verify").json()
    assert report["ok"] is False and problem in report["first_bad"]["problem"], report
    return report


# --- the untouched log ------------------------------------------------------------------------------

def test_an_untouched_log_verifies_against_every_published_checkpoint(log, auditor, capsys):
    call_command("verify_audit")
    assert "3 checkpoints published outside the database checked" in capsys.readouterr().out
    report = auditor.client.post("/api/v2.1/audit/verify").json()
    assert report["ok"] is True and report["external_checkpoints"] == 3 and report["unpublished_checkpoints"] == 0
    assert report["head_seq"] == log[-1] == AuditEntry.objects.count()
    # A published checkpoint is the signed note, byte for byte, in the C2SP checkpoint format.
    text = (_checkpoint_dir() / f"{log[0]:020d}.checkpoint").read_text()
    assert text == AuditCheckpoint.objects.get(seq=log[0]).note and text.startswith(f"qcos.local/audit\n{log[0]}\n")


def test_a_fresh_install_without_checkpoints_verifies(auditor):
    AuditEntry.objects.all().delete() if connection.vendor != "postgresql" else _as_owner("TRUNCATE ledger_auditentry")
    report = audit_verify(sequence_first=False)
    assert report.ok and report.entries_checked == 0 and report.external_checkpoints == 0
    assert "0 checkpoints published outside the database checked" in report.notes


# --- rewritten, deleted, truncated, emptied ---------------------------------------------------------

@pg_only
def test_a_rewritten_history_with_the_checkpoint_rows_deleted_is_reported(log, auditor):
    _rewrite(1)
    _as_owner("DELETE FROM ledger_auditcheckpoint")
    report = _both_verifiers_fail(auditor, "differs from the checkpoint published outside the database")
    assert report["first_bad"]["seq"] == log[0]  # the first published checkpoint after the change


@pg_only
def test_a_rewrite_after_the_first_checkpoint_is_caught_by_a_later_one(log, auditor):
    _rewrite(log[1])
    _as_owner("DELETE FROM ledger_auditcheckpoint")
    assert _both_verifiers_fail(auditor, "published outside")["first_bad"]["seq"] == log[1]


@pg_only
def test_deleted_entries_at_the_end_with_their_checkpoints_are_reported(log, auditor):
    _as_owner(f"DELETE FROM ledger_auditentry WHERE seq > {log[0]}", "DELETE FROM ledger_auditcheckpoint")
    _both_verifiers_fail(auditor, f"covers seq {log[-1]}, but the chain ends at seq {log[0]}")


@pg_only
def test_a_truncated_log_with_its_checkpoints_deleted_is_reported(log, auditor):
    _as_owner("TRUNCATE ledger_auditentry", "TRUNCATE ledger_auditcheckpoint")
    report = audit_verify(sequence_first=False)
    assert not report.ok and report.entries_checked == 0 and report.external_checkpoints == 3
    _both_verifiers_fail(auditor, "entries deleted or the log truncated")


@pg_only
def test_a_truncated_log_that_grows_again_is_still_reported(log, auditor, caplog):
    """After emptying the log the sequencer starts a new chain at seq 1; its checkpoints conflict
    with the published ones, are never published over them, and verification keeps failing."""
    _as_owner("TRUNCATE ledger_auditentry", "TRUNCATE ledger_auditcheckpoint")
    _append(log[0])
    before = {name: (_checkpoint_dir() / name).read_bytes() for name in os.listdir(_checkpoint_dir())}
    with caplog.at_level(logging.ERROR, logger="ledger.checkpoints"):
        audit_sequence(checkpoint=True)
    assert "holds a different checkpoint" in caplog.text
    assert {name: (_checkpoint_dir() / name).read_bytes() for name in os.listdir(_checkpoint_dir())} == before
    _both_verifiers_fail(auditor, "differs from the checkpoint published outside the database")


def test_deleted_checkpoint_rows_alone_are_reported(log, auditor):
    AuditCheckpoint.objects.filter(seq__lt=log[-1]).delete()
    _both_verifiers_fail(auditor, "published checkpoints are missing from the database")


def test_a_published_checkpoint_that_was_altered_is_reported(log, auditor):
    path = _checkpoint_dir() / f"{log[1]:020d}.checkpoint"
    text = path.read_text()
    os.chmod(path, 0o644)
    path.write_text(text.replace(f"\n{log[1]}\n", f"\n{log[1] + 1}\n"))
    _both_verifiers_fail(auditor, "not signed by a pinned ledger key")


# --- keys: only what the key source and the pinned files say -----------------------------------------

def _rogue_key_row() -> LocalSigner:
    rogue = LocalSigner.generate()
    from django.utils import timezone

    SigningKey.objects.create(key_id=rogue.key_id, role="ledger", public_key_der=rogue.public_key_der,
                              not_before=timezone.now())
    return rogue


def test_a_key_found_only_in_the_database_is_not_trusted(log):
    rogue = _rogue_key_row()
    assert rogue.key_id in keyring() and rogue.key_id not in pinned_ledger_keyring()
    assert signer_for("ledger").key_id in pinned_ledger_keyring()


@pg_only
def test_a_history_re_signed_with_a_key_planted_in_the_database_is_reported(log, auditor):
    """The attacker rewrites the chain, deletes the real checkpoints and signs the new head with a
    key of their own, which they add to the key table the old verifier trusted."""
    _rewrite(2)
    _as_owner("DELETE FROM ledger_auditcheckpoint")
    rogue = _rogue_key_row()
    head = AuditEntry.objects.get(seq=log[-1]).entry_hash
    from django.conf import settings
    from django.utils import timezone

    note = sign_checkpoint(settings.QCOS["AUDIT_ORIGIN"], log[-1], bytes.fromhex(head), rogue)
    AuditCheckpoint.objects.create(seq=log[-1], head_hash=head, note=note, created_at=timezone.now(),
                                   published_at=timezone.now())
    _both_verifiers_fail(auditor, "checkpoint signature invalid")


def test_an_auditor_verifies_with_their_own_copies_of_keys_and_checkpoints(log, tmp_path, capsys):
    from ledger.keys import trusted_keys_dir

    keys, copies = tmp_path / "keys", tmp_path / "checkpoints"
    keys.mkdir()
    copies.mkdir()
    for pinned in trusted_keys_dir().glob("*.pem"):
        (keys / pinned.name).write_bytes(pinned.read_bytes())
    for name in os.listdir(_checkpoint_dir()):
        (copies / name).write_bytes((_checkpoint_dir() / name).read_bytes())
    call_command("verify_audit", "--no-sequence", "--trusted-keys", str(keys), "--checkpoint-dir", str(copies))
    assert "3 checkpoints published outside the database checked" in capsys.readouterr().out
    # The same checkpoints against another key: nothing is trusted.
    other = tmp_path / "other.pem"
    other.write_bytes(_public_pem(LocalSigner.generate()))
    with pytest.raises(CommandError, match="not signed by a pinned ledger key"):
        call_command("verify_audit", "--no-sequence", "--trusted-keys", str(other), "--checkpoint-dir", str(copies))


def _public_pem(signer: LocalSigner) -> bytes:
    from cryptography.hazmat.primitives import serialization

    from ledger.crypto.signing import load_public_key

    return load_public_key(signer.public_key_der).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture
def env_key(monkeypatch, settings, tmp_path):
    """The ledger key from the environment (as a KMS key would be: no file QCOS could keep)."""
    settings.QCOS = {**settings.QCOS, "LEDGER_TRUSTED_KEYS_DIR": str(tmp_path / "trusted")}

    def use(signer: LocalSigner) -> LocalSigner:
        monkeypatch.setenv("QCOS_LEDGER_SIGNING_KEY", signer.private_key_pem().decode("ascii"))
        return signer

    return use


def test_a_replaced_key_source_keeps_verifying_what_its_old_key_signed(auditor, env_key, tmp_path):
    old = env_key(LocalSigner.generate())
    _append(2)
    audit_sequence(checkpoint=True)
    env_key(LocalSigner.generate())
    _append(2)
    audit_sequence(checkpoint=True)
    report = audit_verify(sequence_first=False)
    assert report.ok and report.external_checkpoints == 2
    # The old key is trusted because it was pinned when it was loaded, not because the database lists it.
    (tmp_path / "trusted" / f"ledger-{old.key_id}.pem").unlink()
    report = audit_verify(sequence_first=False)
    assert not report.ok and "not signed by a pinned ledger key" in report.first_bad["problem"]


def test_an_upgraded_deployment_pins_its_earlier_keys_from_the_database_once(auditor, env_key, capsys):
    """Before pinning existed, a replaced key was known only to the database: verification refuses
    its checkpoints until an operator pins it (here from the database, which they vouch for)."""
    env_key(LocalSigner.generate())
    earlier = _rogue_key_row()  # a ledger key row nobody pinned, as on a deployment from before
    _append(2)
    audit_sequence()
    # What the deployment looked like before the upgrade: a checkpoint by the earlier key, unpublished.
    AuditCheckpoint.objects.all().delete()
    for name in os.listdir(_checkpoint_dir()):
        (_checkpoint_dir() / name).unlink()
    head = AuditEntry.objects.order_by("-seq").values_list("seq", "entry_hash").first()
    from django.conf import settings
    from django.utils import timezone

    AuditCheckpoint.objects.create(seq=head[0], head_hash=head[1], created_at=timezone.now(),
                                   note=sign_checkpoint(settings.QCOS["AUDIT_ORIGIN"], head[0],
                                                        bytes.fromhex(head[1]), earlier))
    audit_sequence()
    report = audit_verify(sequence_first=False)
    assert "checkpoint signature invalid" in report.first_bad["problem"] and report.unpublished_checkpoints == 1
    call_command("pin_ledger_keys", "--from-database")
    assert f"ledger-{earlier.key_id}.pem" in capsys.readouterr().out
    audit_sequence()  # publishes the earlier checkpoint, now that its key is trusted
    report = audit_verify(sequence_first=False)
    assert report.ok and report.external_checkpoints == 1 and report.unpublished_checkpoints == 0
    with pytest.raises(CommandError, match="give PEM files"):
        call_command("pin_ledger_keys")


def test_an_unreadable_pinned_key_is_a_failed_verification_not_an_error_page(log, auditor, env_key, tmp_path):
    env_key(LocalSigner.generate())
    (tmp_path / "trusted").mkdir(exist_ok=True)
    (tmp_path / "trusted" / "garbage.pem").write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    response = auditor.client.post("/api/v2.1/audit/verify")
    assert response.status_code == 200 and response.json()["ok"] is False
    assert response.json()["first_bad"]["problem"].startswith("the pinned ledger keys or the published checkpoints")
    assert str(tmp_path) not in response.content.decode()
    with pytest.raises(CommandError, match="garbage.pem is not a P-384 public key"):
        call_command("verify_audit")
    with pytest.raises(CommandError, match="does not exist"):
        call_command("verify_audit", "--trusted-keys", str(tmp_path / "missing"))


# --- publication failures lose nothing and are visible ------------------------------------------------

def test_a_failed_publication_keeps_the_entries_is_reported_and_is_retried(auditor, settings, tmp_path, caplog):
    blocked = tmp_path / "checkpoints"
    blocked.write_text("not a directory")
    settings.QCOS = {**settings.QCOS, "AUDIT_CHECKPOINT_DIR": str(blocked)}
    _append(3)
    with caplog.at_level(logging.ERROR, logger="ledger.checkpoints"):
        audit_sequence(checkpoint=True)
    assert "could not be published" in caplog.text and "the next sequencing retries" in caplog.text
    assert AuditEntry.objects.filter(seq__isnull=True).count() == 0
    assert AuditCheckpoint.objects.filter(published_at__isnull=True).count() == 1
    report = auditor.client.post("/api/v2.1/audit/verify").json()
    assert report["ok"] is True and report["external_checkpoints"] == 0 and report["unpublished_checkpoints"] >= 1
    assert "not published outside the database" in report["warnings"][0]
    blocked.unlink()
    audit_sequence()
    report = audit_verify(sequence_first=False)
    assert report.ok and report.unpublished_checkpoints == 0 and report.external_checkpoints >= 1 and not report.warnings
    assert sorted(os.listdir(blocked))


# --- TRUNCATE: test databases only, whatever a session sets --------------------------------------------

def _guard_definition() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_functiondef('ledger_audit_guard'::regproc)")
        return cursor.fetchone()[0]


@pg_only
def test_a_session_setting_cannot_allow_truncate_outside_a_test_database():
    """The guard installed by the migrations, applied in a scratch database that is not named
    test_*, the way a production database is not."""
    guard = _guard_definition()
    scratch = f"qcos_audit_guard_{uuid.uuid4().hex[:8]}"
    with _owner() as admin:
        admin.execute(f'CREATE DATABASE "{scratch}"')
    try:
        with _owner(scratch) as conn:
            conn.execute("CREATE TABLE ledger_auditentry (id bigint, audit_id text, timestamp timestamptz, "
                         "tenant_slug text, action text, resource_type text, resource_id text, outcome text, "
                         "payload text, seq bigint, prev_hash text, entry_hash text)")
            conn.execute(guard)
            conn.execute("CREATE TRIGGER ledger_audit_no_truncate BEFORE TRUNCATE ON ledger_auditentry "
                         "FOR EACH STATEMENT EXECUTE FUNCTION ledger_audit_guard()")
            conn.execute("INSERT INTO ledger_auditentry (id, payload) VALUES (1, '{}')")
            conn.execute("SET qcos.audit_truncate_allowed = 'on'")
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute("TRUNCATE ledger_auditentry")
            assert conn.execute("SELECT count(*) FROM ledger_auditentry").fetchone()[0] == 1
    finally:
        with _owner() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


@pg_only
def test_a_test_database_may_truncate_the_log(log):
    assert connection.settings_dict["NAME"].startswith("test_")
    with _owner() as conn:
        conn.execute("TRUNCATE ledger_auditentry")
    assert AuditEntry.objects.count() == 0
