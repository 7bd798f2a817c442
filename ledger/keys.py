"""Signing keys: where private keys come from, how public keys are published and rotated.

* The **ledger** key notarizes bundles, registry checkpoints and audit checkpoints. It comes from
  AWS KMS (``QCOS_LEDGER_KMS_KEY_ARN``, an ECC_NIST_P384 key), or a PEM in
  ``QCOS_LEDGER_SIGNING_KEY`` / ``QCOS_LEDGER_SIGNING_KEY_FILE``, or ``<QCOS_KEY_DIR>/ledger.pem``,
  generated on first use when ``QCOS_GENERATE_KEYS`` is on (the default in the embedded mode).
* Each **worker** host signs what it executed with its own key: ``QCOS_WORKER_SIGNING_KEY(_FILE)``
  or ``<QCOS_KEY_DIR>/worker-<host>.pem``, generated on first use likewise.

Every public key is recorded in ``SigningKey`` with a validity window; rows are never deleted,
so a bundle signed by a retired key keeps verifying. Rotation (``manage.py rotate_signing_key``)
writes a new key file, retires the old key from that moment and keeps its file as
``<name>.<key_id[:16]>.retired.pem``. Processes notice a rotated key file by its mtime.

What the **audit verifier** trusts (``pinned_ledger_keyring``) never comes from the database: a
``SigningKey`` row is what anyone with write access to PostgreSQL could add. It trusts the public
key derived from the configured key source, the retired key files beside it, and the public keys
pinned in ``QCOS_LEDGER_TRUSTED_KEYS_DIR`` (default ``<QCOS_KEY_DIR>/trusted``). Each ledger key a
process loads is pinned there (best effort), so a KMS or environment key that is later replaced
keeps verifying the checkpoints it signed. Remove a pinned file to stop trusting that key.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .crypto.keyring import KeyRing, TrustedKey
from .crypto.signing import KmsSigner, LocalSigner, Signer, load_public_key, public_key_der
from .models import SigningKey

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_cache: dict[str, tuple[object, Signer]] = {}
# Key ids known to be in SigningKey (added once their registering transaction commits).
_registered: set[str] = set()


def _config() -> dict:
    return settings.QCOS


def _key_dir() -> Path:
    return Path(_config()["KEY_DIR"])


def _host() -> str:
    return socket.gethostname()


@dataclass(frozen=True)
class _Source:
    """Where a role's private key comes from; ``stamp`` changes when the key does."""

    kind: str  # "kms" | "env" | "file"
    value: str
    stamp: object


def _source(role: str) -> _Source:
    prefix = "LEDGER" if role == "ledger" else "WORKER"
    arn = os.environ.get(f"QCOS_{prefix}_KMS_KEY_ARN", "")
    if arn:
        return _Source("kms", arn, arn)
    pem = os.environ.get(f"QCOS_{prefix}_SIGNING_KEY", "")
    if pem:
        return _Source("env", pem, pem)
    path = os.environ.get(f"QCOS_{prefix}_SIGNING_KEY_FILE") or str(_key_path(role))
    try:
        stamp: object = os.stat(path).st_mtime_ns
    except FileNotFoundError:
        stamp = None
    return _Source("file", path, stamp)


def _key_path(role: str) -> Path:
    return _key_dir() / ("ledger.pem" if role == "ledger" else f"worker-{_host()}.pem")


def _load(source: _Source, role: str) -> Signer:
    if source.kind == "kms":
        import boto3

        return KmsSigner(boto3.client("kms"), source.value)
    if source.kind == "env":
        return LocalSigner.from_pem(source.value)
    path = Path(source.value)
    if not path.exists():
        if not _config()["GENERATE_KEYS"]:
            raise RuntimeError(
                f"no {role} signing key: set QCOS_{role.upper()}_SIGNING_KEY_FILE, QCOS_{role.upper()}_KMS_KEY_ARN "
                f"or QCOS_GENERATE_KEYS=true (which creates {path})"
            )
        _write_new_key(path)
    return LocalSigner.from_file(path)


def _write_new_key(path: Path) -> LocalSigner:
    signer = LocalSigner.generate()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(signer.private_key_pem())
    os.replace(temporary, path)
    return signer


def signer_for(role: str) -> Signer:
    """The current signer of ``role`` ("ledger" or "worker"), registered as a public key."""
    source = _source(role)
    with _lock:
        cached = _cache.get(role)
        if cached and cached[0] == source.stamp and source.stamp is not None:
            signer = cached[1]
        else:
            signer = _load(source, role)
            _cache[role] = (_source(role).stamp, signer)
            if role == "ledger":
                _pin(signer.public_key_der)
    if signer.key_id not in _registered:
        _register(signer, role, backend=source.kind, arn=source.value if source.kind == "kms" else "")
        key = signer.key_id
        transaction.on_commit(lambda: _registered.add(key))
    return signer


def _register(signer: Signer, role: str, *, backend: str, arn: str) -> None:
    """Record the public key once. ``ON CONFLICT DO NOTHING`` rather than get-or-create: workers
    racing to register the same key never see an error, so this may also run inside a pipelined
    completion (``qcos.rowload.pipeline``), where errors surface only after the statement."""
    SigningKey.objects.bulk_create([SigningKey(
        key_id=signer.key_id,
        role=role,
        backend="kms" if backend == "kms" else "local",
        host=_host() if role == "worker" else "",
        public_key_der=signer.public_key_der,
        kms_key_arn=arn,
        not_before=timezone.now(),
    )], ignore_conflicts=True)


def keyring() -> KeyRing:
    """Every public key ever used, with its window and role (what auditors pin)."""
    ring = KeyRing()
    for key in SigningKey.objects.all():
        ring.add(
            TrustedKey(
                public_key_der=bytes(key.public_key_der),
                not_before=key.not_before,
                not_after=key.not_after,
                status=key.status,
                # The ledger key also signs registry and audit checkpoints ("log").
                roles=frozenset({"ledger", "log"}) if key.role == "ledger" else frozenset({key.role}),
            )
        )
    return ring


@transaction.atomic
def signing_key_rotate(*, role: str) -> tuple[str | None, str]:
    """Replace the file-held key of ``role`` (on this host, for workers); returns (old, new) ids.

    KMS and environment keys are rotated where they live: point the setting at the new key.
    """
    source = _source(role)
    if source.kind != "file":
        raise RuntimeError(f"the {role} key comes from {source.kind}; rotate it there and restart")
    path = Path(source.value)
    old = LocalSigner.from_file(path) if path.exists() else None
    now = timezone.now()
    if old is not None:
        path.rename(path.with_name(f"{path.stem}.{old.key_id[:16]}.retired.pem"))
        SigningKey.objects.filter(key_id=old.key_id).update(status="retired", not_after=now)
    new = _write_new_key(path)
    SigningKey.objects.create(
        key_id=new.key_id, role=role, backend="local", host=_host() if role == "worker" else "",
        public_key_der=new.public_key_der, not_before=now,
    )
    with _lock:
        _cache.pop(role, None)
    transaction.on_commit(lambda: _registered.add(new.key_id))
    return (old.key_id if old else None), new.key_id


# --- What the audit verifier trusts ----------------------------------------------------------------

_PIN_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def trusted_keys_dir() -> Path:
    return Path(_config().get("LEDGER_TRUSTED_KEYS_DIR") or _key_dir() / "trusted")


def _pin(der: bytes) -> None:
    """Pin a ledger key the process loaded from its key source (best effort)."""
    try:
        pin_ledger_key(der)
    except OSError as exc:
        # Verification still trusts the key while it is the configured one; only after a rotation
        # would its checkpoints stop verifying, so say so now.
        logger.warning("could not pin the ledger public key in %s: %s", trusted_keys_dir(), exc)


def pin_ledger_key(der: bytes) -> Path:
    """Write a ledger public key to the trusted directory, once (a pinned file is never rewritten)."""
    der = public_key_der(load_public_key(der))
    directory = trusted_keys_dir()
    path = directory / f"ledger-{hashlib.sha256(der).hexdigest()}.pem"
    if path.exists():
        return path
    pem = load_public_key(der).public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    directory.mkdir(parents=True, exist_ok=True, mode=0o755)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return path
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return path


def _source_public_key() -> bytes | None:
    """The public half of the configured ledger key, without creating a key that does not exist."""
    source = _source("ledger")
    if source.kind == "file" and not Path(source.value).exists():
        return None
    return signer_for("ledger").public_key_der


def _retired_key_files() -> set[Path]:
    source = _source("ledger")
    places = {(_key_dir(), "ledger")}
    if source.kind == "file":
        path = Path(source.value)
        places.add((path.parent, path.stem))
    return {found for directory, stem in places for found in directory.glob(f"{stem}.*.retired.pem")}


def read_trusted_keys(directory: Path) -> list[bytes]:
    """DER public keys of every ``*.pem`` public key file in ``directory`` (none if it is absent).
    A file that is not a P-384 public key is an error: a pin that silently does nothing would
    leave the auditor trusting less, or other, than they think."""
    if directory.is_file():
        files = [directory]
    elif directory.is_dir():
        files = sorted(directory.glob("*.pem"))
    else:
        return []
    keys = []
    for path in files:
        try:
            keys.append(public_key_der(load_public_key(path.read_bytes())))
        except (OSError, ValueError, TypeError) as exc:
            raise RuntimeError(f"pinned key file {path} is not a P-384 public key: {exc}") from None
    return keys


def pinned_ledger_keyring(trusted: Path | None = None) -> KeyRing:
    """The ledger keys audit checkpoints are checked against (module docstring). With ``trusted``
    (an auditor's own directory or file of public keys) only those keys are trusted."""
    if trusted is not None:
        ders = read_trusted_keys(trusted)
    else:
        ders = read_trusted_keys(trusted_keys_dir())
        ders += [LocalSigner.from_file(path).public_key_der for path in sorted(_retired_key_files())]
        current = _source_public_key()
        if current is not None:
            ders.append(current)
    ring = KeyRing()
    for der in ders:
        key = TrustedKey(public_key_der=der, not_before=_PIN_EPOCH, roles=frozenset({"ledger", "log"}))
        if key.key_id not in ring:
            ring.add(key)
    return ring
