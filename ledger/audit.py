"""Audit log services: append (in the caller's transaction), sequence into a hash chain, verify.

Design (docs/evidence.md, "The audit log"; docs/audit.md for where its trust is anchored):

* ``audit_append`` is a plain INSERT of the entry's canonical bytes. It takes no lock, so tenants
  and writers never wait on each other; it runs inside the transaction of the change it records.
* ``audit_sequence`` (a periodic task, and before every verification) gives unsequenced entries
  the next ``seq`` numbers and links them: ``entry_hash = SHA-256(prev_hash ‖ payload bytes)``,
  starting from 32 zero bytes. One sequencer runs at a time (an advisory lock), off the hot path.
* ``audit_verify`` walks the chain in ``seq`` order and names the first bad entry: a gap (a
  deleted row), a payload whose hash does not link (a changed, reordered or inserted row), or an
  indexed column that disagrees with the payload. Signed checkpoints of the head catch a chain
  rewritten by someone who can also recompute hashes; because that someone may also delete rows,
  the checkpoints that count are the ones published outside the database (``ledger.checkpoints``),
  checked with ledger keys pinned outside it (``ledger.keys.pinned_ledger_keyring``).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from .checkpoints import CheckpointPublisher, checkpoint_publisher, publish_pending, published_heads
from .crypto.canonical import canonical_json
from .crypto.keyring import KeyRing
from .crypto.note import NoteError, parse_checkpoint, parse_note, sign_checkpoint, verify_checkpoint
from .models import AuditCheckpoint, AuditEntry

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
_SEQUENCER_LOCK = 0x51C05A0D17  # pg_advisory_xact_lock key of the single sequencer


class Outcome:
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    DENIED = "DENIED"


def user_principal(user, tenant_slug: str, roles: Iterable[str]) -> dict[str, Any]:
    return {"user_id": f"user-{user.pk}", "username": user.get_username(), "tenant_id": tenant_slug,
            "roles": sorted(roles)}


def system_principal(name: str, tenant_slug: str = "") -> dict[str, Any]:
    return {"user_id": f"system:{name}", "username": name, "tenant_id": tenant_slug, "roles": ["system"]}


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def audit_append(
    *,
    action: str,
    principal: dict[str, Any],
    resource_type: str = "",
    resource_id: str = "",
    details: dict[str, Any] | None = None,
    outcome: str = Outcome.SUCCESS,
    tenant_slug: str | None = None,
) -> dict[str, Any]:
    """Record one entry and return its payload (``audit_id`` included). Call it inside the
    transaction of the change it records. A single INSERT, no ORM instance, nothing read back:
    appends sit on every state change's path, and inside ``qcos.rowload.pipeline`` they do not
    wait for the server."""
    now = timezone.now()
    tenant = principal.get("tenant_id", "") if tenant_slug is None else tenant_slug
    payload = audit_payload(action=action, principal=principal, resource_type=resource_type,
                            resource_id=resource_id, details=details, outcome=outcome, tenant=tenant, now=now)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {AUDIT_INSERT} VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '', '')",
            [payload["audit_id"], now, tenant, action, resource_type, resource_id, outcome,
             canonical_json(payload).decode("utf-8")],
        )
    return payload


#: The table and columns an append writes, in this order (the last two, the chain's links, are
#: empty until ``audit_sequence``). Also used by statements that append in SQL (the job claim).
AUDIT_INSERT = ("ledger_auditentry (audit_id, timestamp, tenant_slug, action, resource_type, resource_id, outcome, "
                "payload, prev_hash, entry_hash)")


def audit_payload(*, action: str, principal: dict[str, Any], resource_type: str, resource_id: str,
                  details: dict[str, Any] | None, outcome: str, tenant: Any, now: datetime) -> dict[str, Any]:
    """The entry exactly as stored (its canonical JSON is what the chain hashes)."""
    return {
        "audit_id": f"audit-{now:%Y%m%d}-{secrets.token_hex(8)}",
        "timestamp": _timestamp(now),
        "action": action,
        "principal": principal,
        "resource": {"type": resource_type, "id": resource_id},
        "details": details or {},
        "outcome": outcome,
        "tenant_id": tenant,
    }


class Hole(str):
    """A value the database fills in: ``audit_payload_parts`` leaves a gap for it in the entry's
    canonical JSON, and the statement that writes the entry supplies its JSON text (an integer's
    digits, or ``to_json(text)::text``, whose escaping is RFC 8785's for every string)."""

    def __new__(cls, name: str) -> Hole:
        return super().__new__(cls, f"\x00qcos-hole:{name}\x00")


def audit_payload_parts(payload: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The canonical JSON of ``payload`` cut at its ``Hole`` values: ``(texts, holes)`` with
    ``len(texts) == len(holes) + 1``; the entry is ``texts[0] + value(holes[0]) + texts[1] + …``.
    Keys are ordered by name, never by value, so filling the holes keeps the bytes canonical."""
    text = canonical_json(payload).decode("utf-8")
    texts, holes = [], []
    marker = '"\\u0000qcos-hole:'
    while (start := text.find(marker)) >= 0:
        end = text.index('\\u0000"', start + len(marker))
        texts.append(text[:start])
        holes.append(text[start + len(marker):end])
        text = text[end + len('\\u0000"'):]
    texts.append(text)
    return texts, holes


def chain_hash(prev_hash: str, payload: str) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + payload.encode("utf-8")).hexdigest()


def _lock_sequencer() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SEQUENCER_LOCK])


def audit_sequence(*, batch: int = 20_000, checkpoint: bool = False) -> int:
    """Link every unsequenced entry into the chain; returns how many were sequenced. A signed
    checkpoint of the head follows when ``checkpoint`` is set or the last one is old enough; once
    it commits, it and any checkpoint not yet published are published outside the database."""
    total = 0
    while True:
        with transaction.atomic():
            _lock_sequencer()
            head = AuditEntry.objects.filter(seq__isnull=False).order_by("-seq").values_list("seq", "entry_hash").first()
            seq, prev = head if head else (0, GENESIS)
            rows = list(AuditEntry.objects.filter(seq__isnull=True).order_by("id").values_list("id", "payload")[:batch])
            if not rows:
                if head:
                    _maybe_checkpoint(seq, prev, force=checkpoint)
                # After the commit: a checkpoint published from a transaction that then rolled back
                # would state a head the database never had.
                transaction.on_commit(publish_pending, robust=True)
                return total
            updates = []
            for row_id, payload in rows:
                seq += 1
                entry_hash = chain_hash(prev, payload)
                updates.append((seq, prev, entry_hash, row_id))
                prev = entry_hash
            with connection.cursor() as cursor:
                cursor.executemany(
                    "UPDATE ledger_auditentry SET seq = %s, prev_hash = %s, entry_hash = %s "
                    "WHERE id = %s AND seq IS NULL",
                    updates,
                )
            total += len(rows)


@dataclass
class AuditVerification:
    ok: bool
    entries_checked: int
    unsequenced: int
    head_seq: int
    head_hash: str
    first_bad: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    #: Checkpoints published outside the database that the chain was compared with.
    external_checkpoints: int = 0
    #: Checkpoint rows not (yet) published: until they are, they protect nothing.
    unpublished_checkpoints: int = 0
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "entries_checked": self.entries_checked, "unsequenced": self.unsequenced,
            "head_seq": self.head_seq, "head_hash": self.head_hash, "first_bad": self.first_bad, "notes": self.notes,
            "external_checkpoints": self.external_checkpoints, "unpublished_checkpoints": self.unpublished_checkpoints,
            "warnings": self.warnings,
        }


_COLUMNS = ("seq", "audit_id", "tenant_slug", "action", "resource_type", "resource_id", "outcome", "payload",
            "prev_hash", "entry_hash")


def _maybe_checkpoint(seq: int, head: str, *, force: bool) -> None:
    last = AuditCheckpoint.objects.order_by("-seq").first()
    if last is not None and last.seq >= seq:
        return
    age = (timezone.now() - last.created_at).total_seconds() if last else None
    if not force and age is not None and age < settings.QCOS["AUDIT_CHECKPOINT_SECONDS"]:
        return
    from .keys import signer_for

    note = sign_checkpoint(settings.QCOS["AUDIT_ORIGIN"], seq, bytes.fromhex(head), signer_for("ledger"))
    AuditCheckpoint.objects.create(seq=seq, head_hash=head, note=note, created_at=timezone.now())


def _signed_heads(ring: KeyRing, verified: dict[int, str]) -> tuple[dict[int, str], list[dict[str, Any]]]:
    """Checkpoint rows whose signature verifies under the pinned keys, as {seq: head}; and the
    ones that do not. A row holding the very text of a published checkpoint that verified
    (``verified``: {seq: note}) is not checked twice: a signature costs milliseconds."""
    heads: dict[int, str] = {}
    bad: list[dict[str, Any]] = []
    for checkpoint in AuditCheckpoint.objects.order_by("seq"):
        try:
            if verified.get(checkpoint.seq) == checkpoint.note:
                signed = parse_checkpoint(parse_note(checkpoint.note).text)
            else:
                signed = verify_checkpoint(checkpoint.note, ring, origin=settings.QCOS["AUDIT_ORIGIN"])
        except NoteError as exc:
            bad.append({"seq": checkpoint.seq, "audit_id": None, "problem": f"checkpoint signature invalid: {exc}"})
            continue
        if signed.size != checkpoint.seq or signed.root.hex() != checkpoint.head_hash:
            bad.append({"seq": checkpoint.seq, "audit_id": None, "problem": "checkpoint row disagrees with its note"})
            continue
        heads[signed.size] = signed.root.hex()
    return heads, bad


def audit_verify(*, sequence_first: bool = True, chunk_size: int = 20_000,
                 publisher: CheckpointPublisher | None = None, ring: KeyRing | None = None) -> AuditVerification:
    """Check the whole chain against the signed checkpoints, in the database and published outside
    it; stop at and name the first problem. ``publisher`` and ``ring`` default to the configured
    checkpoint store and the pinned ledger keys (an auditor may pass their own copies)."""
    if sequence_first:
        audit_sequence(checkpoint=True)
    try:
        if ring is None:
            from .keys import pinned_ledger_keyring

            ring = pinned_ledger_keyring()
        external = published_heads(publisher or checkpoint_publisher(), ring)
    except Exception:
        # Unreadable pinned keys or checkpoint store: a verdict, not an error page. The cause (paths,
        # key service errors) is for operators, not API clients.
        logger.exception("audit verification could not read the pinned ledger keys or the published checkpoints")
        return AuditVerification(ok=False, entries_checked=0, unsequenced=_unsequenced(), head_seq=0, head_hash="",
                                 first_bad={"seq": None, "audit_id": None, "problem": (
                                     "the pinned ledger keys or the published checkpoints cannot be read "
                                     "(see the server log)")})
    stored, bad_rows = _signed_heads(ring, external.notes)
    unpublished = AuditCheckpoint.objects.filter(published_at__isnull=True).count()
    counts = {"external_checkpoints": len(external.heads), "unpublished_checkpoints": unpublished}
    warnings = []
    if unpublished:
        warnings.append(f"{unpublished} signed checkpoints are not published outside the database yet (see the "
                        "server log); until they are, they do not protect against a database administrator")

    def failed(checked: int, head_seq: int, head_hash: str, bad: dict[str, Any]) -> AuditVerification:
        return AuditVerification(ok=False, entries_checked=checked, unsequenced=_unsequenced(), head_seq=head_seq,
                                 head_hash=head_hash, first_bad=bad, warnings=warnings, **counts)

    if external.bad or bad_rows:
        return failed(0, 0, "", (external.bad or bad_rows)[0])
    expected_seq, prev = 1, GENESIS
    checked = 0
    for row in _chain_rows(chunk_size):
        problem = _check_row(row, expected_seq, prev)
        if not problem and external.heads.get(expected_seq, row[9]) != row[9]:
            problem = ("the chain up to here differs from the checkpoint published outside the database "
                       "(history rewritten at or before this entry)")
        if not problem and stored.get(expected_seq, row[9]) != row[9]:
            problem = "the chain up to here differs from the signed checkpoint (rewritten history)"
        if problem:
            return failed(checked, expected_seq - 1, prev, {"seq": expected_seq, "audit_id": row[1], "problem": problem})
        prev = row[9]
        expected_seq += 1
        checked += 1
    end = expected_seq - 1
    beyond = [seq for seq in (*external.heads, *stored) if seq > end]
    if beyond:
        where = "published outside the database" if max(beyond) in external.heads else "signed"
        return failed(checked, end, prev, {
            "seq": expected_seq, "audit_id": None,
            "problem": f"a checkpoint {where} covers seq {max(beyond)}, but the chain ends at seq {end} "
                       "(entries deleted or the log truncated)"})
    deleted = sorted(seq for seq in external.heads if seq not in stored)
    if deleted:
        return failed(checked, end, prev, {
            "seq": deleted[0], "audit_id": None,
            "problem": f"{len(deleted)} published checkpoints are missing from the database "
                       f"(first: seq {deleted[0]}; checkpoint rows deleted)"})
    return AuditVerification(ok=True, entries_checked=checked, unsequenced=_unsequenced(), head_seq=end,
                             head_hash=prev, warnings=warnings, **counts,
                             notes=[f"{len(stored)} signed checkpoints",
                                    f"{len(external.heads)} checkpoints published outside the database checked"])


def _chain_rows(chunk_size: int):
    """Sequenced rows in order, the timestamp already formatted as in the payload.

    On PostgreSQL a server-side cursor streams them and the database formats the timestamp: the
    per-row work left in Python is one SHA-256 and one JSON parse (a million rows in seconds).
    """
    if connection.vendor == "postgresql":
        columns = ", ".join(_COLUMNS)
        sql = (f"SELECT {columns}, to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
               "FROM ledger_auditentry WHERE seq IS NOT NULL ORDER BY seq")
        with transaction.atomic():
            connection.ensure_connection()
            with connection.connection.cursor(name="qcos_audit_verify") as cursor:
                cursor.itersize = chunk_size
                cursor.execute(sql)
                yield from cursor
        return
    rows = AuditEntry.objects.filter(seq__isnull=False).order_by("seq").values_list(*_COLUMNS, "timestamp")
    for row in rows.iterator(chunk_size=chunk_size):
        yield (*row[:-1], _timestamp(row[-1]))


def _check_row(row, expected_seq: int, prev: str) -> str | None:
    seq, audit_id, tenant, action, rtype, rid, outcome, payload, prev_hash, entry_hash, stamp = row
    if seq != expected_seq:
        return f"entries {expected_seq}..{seq - 1} are missing (deleted?)" if seq > expected_seq else "sequence out of order"
    if prev_hash != prev:
        return "prev_hash does not link to the entry before it (reordered, inserted or changed)"
    if chain_hash(prev, payload) != entry_hash:
        return "entry_hash does not match the payload (the entry was changed)"
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return "payload is not JSON"
    if (body.get("audit_id"), body.get("tenant_id"), body.get("action"), body.get("outcome")) != (
        audit_id, tenant, action, outcome
    ) or body.get("resource") != {"type": rtype, "id": rid}:
        return "indexed columns disagree with the signed payload (a column was changed)"
    if body.get("timestamp") != stamp:
        return "timestamp column disagrees with the payload"
    return None


def _unsequenced() -> int:
    return AuditEntry.objects.filter(seq__isnull=True).count()
