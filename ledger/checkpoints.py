"""Audit checkpoints published outside the database they protect.

Someone who controls PostgreSQL can disable the audit triggers, rewrite entries, recompute the
hash chain and delete the checkpoint rows. What they cannot do is change what was already
published elsewhere: each signed checkpoint (C2SP tlog-checkpoint, ``ledger.crypto.note``) is
also written, once, to a publisher, and verification compares the chain in the database with
every published checkpoint (``ledger.audit.audit_verify``; docs/audit.md).

A publisher is a small write-once store keyed by the checkpoint's tree size. QCOS never
overwrites or deletes a published checkpoint. ``DirectoryPublisher`` (one file per checkpoint,
``QCOS_AUDIT_CHECKPOINT_DIR``) is the one shipped; an object store with write-once retention
fits the same interface.

Publication happens after the checkpoint row commits (``publish_pending``, run by every
sequencing). A failure loses nothing: the row stays marked unpublished, the next sequencing tries
again, the failure is logged, and verification reports how many checkpoints are unpublished.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from django.conf import settings
from django.utils import timezone

from .crypto.keyring import KeyRing
from .crypto.note import MAX_NOTE_BYTES, NoteError, verify_checkpoint
from .models import AuditCheckpoint

logger = logging.getLogger(__name__)


class AlreadyPublished(Exception):
    """A checkpoint of this size was published before; ``existing`` is its text."""

    def __init__(self, seq: int, existing: str) -> None:
        super().__init__(f"a checkpoint of size {seq} is already published")
        self.seq = seq
        self.existing = existing


class CheckpointPublisher(Protocol):
    """Write-once storage of signed checkpoints, outside the database."""

    #: Where the checkpoints go, for operators' messages (never sent to API clients).
    location: str

    def publish(self, seq: int, note: str) -> None:
        """Store ``note`` as the checkpoint of size ``seq``; raise :class:`AlreadyPublished` when
        one is stored already (never replace it), ``OSError`` when the store cannot be written."""

    def published(self) -> Iterator[tuple[int, str]]:
        """Every stored checkpoint as ``(seq, note text)``, in ``seq`` order."""


_NAME = re.compile(r"([0-9]{20})\.checkpoint")


class DirectoryPublisher:
    """One file per checkpoint, ``<seq, 20 digits>.checkpoint``, created and never rewritten.

    The file is written under a temporary name, flushed to disk and hard-linked into place, so a
    reader never sees half a checkpoint and an existing one is never replaced (``link`` fails when
    the name exists). Give the directory to the QCOS processes only, on storage the database's
    administrators cannot write, and back it up or mirror it (docs/audit.md).
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.location = str(self.directory)

    def _path(self, seq: int) -> Path:
        return self.directory / f"{seq:020d}.checkpoint"

    def publish(self, seq: int, note: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(seq)
        temporary = self.directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(note.encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                raise AlreadyPublished(seq, self._read(path)) from None
            self._sync_directory()
        finally:
            temporary.unlink(missing_ok=True)

    def published(self) -> Iterator[tuple[int, str]]:
        if not self.directory.is_dir():
            return
        names = sorted(name for name in os.listdir(self.directory) if _NAME.fullmatch(name))
        for name in names:
            yield int(name[:20]), self._read(self.directory / name)

    @staticmethod
    def _read(path: Path) -> str:
        with open(path, "rb") as handle:
            data = handle.read(MAX_NOTE_BYTES + 1)
        return data.decode("utf-8", errors="replace")

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def checkpoint_publisher() -> CheckpointPublisher:
    """The configured publisher (``QCOS_AUDIT_CHECKPOINT_DIR``)."""
    return DirectoryPublisher(settings.QCOS["AUDIT_CHECKPOINT_DIR"])


def _origin() -> str:
    return settings.QCOS["AUDIT_ORIGIN"]


def publish_pending(publisher: CheckpointPublisher | None = None, ring: KeyRing | None = None) -> int:
    """Publish every checkpoint row not yet published, oldest first; returns how many were.

    Never raises: it runs after the sequencer's commit, and a store that cannot be written must
    not stop sequencing (the rows stay pending and the next run retries them). A row whose note
    is not signed by a pinned ledger key, or that disagrees with what is already published at its
    size, is never published: it is logged and verification reports it.
    """
    try:
        pending = list(AuditCheckpoint.objects.filter(published_at__isnull=True).order_by("seq"))
        if not pending:
            return 0
        from .keys import pinned_ledger_keyring

        publisher = publisher or checkpoint_publisher()
        ring = ring or pinned_ledger_keyring()
    except Exception:
        logger.exception("audit checkpoint publication could not start; the next sequencing retries it")
        return 0
    done = 0
    for row in pending:
        try:
            signed = verify_checkpoint(row.note, ring, origin=_origin())
            if signed.size != row.seq or signed.root.hex() != row.head_hash:
                raise NoteError("the row disagrees with its note")
        except NoteError as exc:
            logger.error("audit checkpoint %s not published: not a valid ledger checkpoint (%s)", row.seq, exc)
            continue
        try:
            publisher.publish(row.seq, row.note)
        except AlreadyPublished as exc:
            if not _same_head(exc.existing, signed.size, signed.root, ring):
                logger.error("audit checkpoint %s not published: %s holds a different checkpoint of that size "
                             "(the audit history was rewritten)", row.seq, publisher.location)
                continue
        except OSError as exc:
            logger.error("audit checkpoint %s could not be published to %s (%s); the next sequencing retries",
                         row.seq, publisher.location, exc)
            break  # the store is unavailable: later checkpoints would fail the same way
        AuditCheckpoint.objects.filter(pk=row.pk).update(published_at=timezone.now())
        done += 1
    return done


def _same_head(existing: str, size: int, root: bytes, ring: KeyRing) -> bool:
    """Whether an already published checkpoint states the same head (signatures differ each time:
    ECDSA is randomized, so a re-signed head is not byte-identical)."""
    try:
        published = verify_checkpoint(existing, ring, origin=_origin())
    except NoteError:
        return False
    return published.size == size and published.root == root


@dataclass
class PublishedHeads:
    """What the published checkpoints state: ``{seq: head hash}``; the texts that verified (a row
    holding the same text needs no second signature check); and the ones that fail."""

    heads: dict[int, str]
    bad: list[dict]
    notes: dict[int, str]


def published_heads(publisher: CheckpointPublisher, ring: KeyRing) -> PublishedHeads:
    heads: dict[int, str] = {}
    notes: dict[int, str] = {}
    bad: list[dict] = []
    for seq, text in publisher.published():
        try:
            signed = verify_checkpoint(text, ring, origin=_origin())
        except NoteError as exc:
            bad.append({"seq": seq, "audit_id": None,
                        "problem": f"published checkpoint {seq} is not signed by a pinned ledger key: {exc}"})
            continue
        if signed.size != seq:
            bad.append({"seq": seq, "audit_id": None,
                        "problem": f"published checkpoint {seq} states size {signed.size} (file renamed?)"})
            continue
        heads[seq] = signed.root.hex()
        notes[seq] = text
    return PublishedHeads(heads, bad, notes)
