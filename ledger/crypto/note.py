"""C2SP signed notes (c2sp.org/signed-note) and transparency-log checkpoints
(c2sp.org/tlog-checkpoint), signed with our ECDSA P-384 keys.

Why this format: it is what Go's checksum database, Rekor, Tessera and the witness
ecosystem exchange, so a QCOS checkpoint can be archived, witnessed or checked by tools we
do not write. A checkpoint is a note whose text is ``<origin>\\n<size>\\n<base64 root>\\n``
(optionally followed by extension lines), then a blank line, then signature lines
``— <key name> <base64(4-byte key ID ‖ signature)>``.

Signature type: signed-note assigns ``0x02`` to "ECDSA signatures as implemented by
github.com/transparency-dev/witness" and allows P-256, P-384 and P-521, so we use 0x02
rather than inventing a type under ``0xff``. For 0x02 the spec overrides the generic
key-ID recipe (SHA-256(name ‖ 0x0A ‖ type ‖ key)[:4]): the key ID is the first four bytes
of SHA-256 of the DER SubjectPublicKeyInfo, and that implementation (like Rekor's
``SignedNote``) signs SHA-256(note text). We follow it exactly for interoperability:

    key ID    = SHA-256(DER SPKI)[:4]            (big-endian uint32 on the wire)
    signature = DER ECDSA-P384 over SHA-256(note text)

KMS P-384 keys only sign 48-byte (SHA-384-sized) digests. ECDSA turns the hash into the
integer e from its leftmost 384 bits (FIPS 186-5 §6.4.1, SEC 1 §4.1.3 step 5); sixteen
zero bytes followed by the 32-byte SHA-256 digest therefore yield the same e as the
SHA-256 digest alone, and the resulting signature verifies under any standard
"ECDSA over SHA-256" P-384 verifier. Cross-protocol reuse with our SHA-384 bundle
signatures would need a SHA-384 output starting with 128 zero bits.

Verification follows the spec: unknown (name, key ID) pairs are ignored, a failing
signature from a known key rejects the note, and at least one known key must verify.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .canonical import b64decode_strict, b64encode
from .keyring import KeyRing
from .merkle import HASH_SIZE
from .signing import Signer, verify_digest_signature

__all__ = [
    "SIG_TYPE_ECDSA",
    "Checkpoint",
    "InvalidNoteSignatureError",
    "MalformedNoteError",
    "Note",
    "NoteError",
    "NoteSignature",
    "NoteVerifier",
    "UnknownNoteKeyError",
    "WrongOriginError",
    "format_checkpoint",
    "note_key_hash",
    "parse_checkpoint",
    "parse_note",
    "sign_checkpoint",
    "sign_note",
    "verify_checkpoint",
    "verify_note",
]

SIG_TYPE_ECDSA = 0x02
MAX_SIGNATURES = 64  # the spec asks verifiers to accept at least 16
MAX_NOTE_BYTES = 1 << 20
_DASH = "\u2014"
_SIZE = re.compile(r"0|[1-9][0-9]*")


class NoteError(ValueError):
    """Base class: the note or checkpoint cannot be accepted."""


class MalformedNoteError(NoteError):
    """The text does not follow the signed-note / checkpoint grammar."""


class UnknownNoteKeyError(NoteError):
    """No signature line comes from a trusted key."""


class InvalidNoteSignatureError(NoteError):
    """A signature from a trusted key does not verify."""


class WrongOriginError(NoteError):
    """The checkpoint is for another log than the one expected."""


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_hash: bytes  # 4 bytes
    signature: bytes


@dataclass(frozen=True)
class Note:
    text: str  # includes its final newline, excludes the separating blank line
    signatures: tuple[NoteSignature, ...]


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()
    verified_key_ids: tuple[str, ...] = ()


def note_key_hash(public_key_der: bytes) -> bytes:
    """Key ID for signature type 0x02: SHA-256(DER SPKI)[:4] (see module docstring)."""
    return hashlib.sha256(public_key_der).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(ch.isspace() or ch == "+" for ch in name):
        raise MalformedNoteError(f"key name {name!r} must be non-empty, without spaces or '+'")


def _check_chars(text: str) -> None:
    if any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise MalformedNoteError("notes must not contain control characters other than newline")


class NoteVerifier:
    """A trusted (name, P-384 public key) pair for verifying type-0x02 note signatures."""

    def __init__(self, name: str, public_key_der: bytes, key_id: str | None = None) -> None:
        _check_name(name)
        self.name = name
        self.public_key_der = bytes(public_key_der)
        self.key_hash = note_key_hash(self.public_key_der)
        self.key_id = key_id or hashlib.sha256(self.public_key_der).hexdigest()

    @property
    def vkey(self) -> str:
        """Go ``note`` verifier-key string: ``<name>+<hex key ID>+<base64(0x02 ‖ DER)>``."""
        blob = bytes([SIG_TYPE_ECDSA]) + self.public_key_der
        return f"{self.name}+{self.key_hash.hex()}+{b64encode(blob)}"

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        parts = vkey.split("+", 2)
        blob = b64decode_strict(parts[2]) if len(parts) == 3 else None
        if blob is None or len(blob) < 2 or blob[0] != SIG_TYPE_ECDSA:
            raise MalformedNoteError("not a type-0x02 verifier key")
        verifier = cls(parts[0], blob[1:])
        if verifier.key_hash.hex() != parts[1].lower().rjust(8, "0"):
            raise MalformedNoteError("verifier key hash does not match its public key")
        return verifier

    def verify(self, text: bytes, signature: bytes) -> bool:
        return verify_digest_signature(self.public_key_der, hashlib.sha256(text).digest(), signature, "sha256")


def sign_note(text: str, signer: Signer, name: str) -> str:
    """Sign note text (which must end in a newline) and return the complete note."""
    _check_name(name)
    _check_chars(text)
    if not text.endswith("\n"):
        raise MalformedNoteError("note text must end with a newline")
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    # 16 zero bytes ‖ SHA-256 gives the same ECDSA integer e on P-384 (module docstring).
    signature = signer.sign_digest(bytes(16) + digest)
    line = f"{_DASH} {name} {b64encode(note_key_hash(signer.public_key_der) + signature)}\n"
    return f"{text}\n{line}"


def parse_note(text: str | bytes) -> Note:
    """Split a signed note into text and signature lines (signed-note §Format). Does NOT
    verify anything; raises :class:`MalformedNoteError`."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedNoteError("notes must be valid UTF-8") from exc
    if not isinstance(text, str) or len(text.encode("utf-8")) > MAX_NOTE_BYTES:
        raise MalformedNoteError("note is not text or is too large")
    _check_chars(text)
    split = text.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("no blank line separates the text from its signatures")
    body, block = text[: split + 1], text[split + 2 :]
    if not block or not block.endswith("\n"):
        raise MalformedNoteError("the signature block must be non-empty and end with a newline")
    signatures = []
    for line in block[:-1].split("\n"):
        if not line.startswith(_DASH + " "):
            raise MalformedNoteError(f"bad signature line {line[:40]!r}")
        fields = line[2:].split(" ")
        if len(fields) != 2:
            raise MalformedNoteError(f"bad signature line {line[:40]!r}")
        name, encoded = fields
        _check_name(name)
        raw = b64decode_strict(encoded)
        if raw is None or len(raw) < 5:
            raise MalformedNoteError(f"signature by {name} is not valid base64 of key ID ‖ signature")
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
    if len(signatures) > MAX_SIGNATURES:
        raise MalformedNoteError(f"more than {MAX_SIGNATURES} signatures")
    return Note(body, tuple(signatures))


def verify_note(text: str | bytes, verifiers: Iterable[NoteVerifier]) -> tuple[Note, tuple[NoteVerifier, ...]]:
    """Verify a note against trusted verifiers; returns the note and the keys that signed."""
    note = parse_note(text)
    return note, _verified_by(note, verifiers)


def _verified_by(note: Note, verifiers: Iterable[NoteVerifier]) -> tuple[NoteVerifier, ...]:
    known: dict[tuple[str, bytes], list[NoteVerifier]] = {}
    for verifier in verifiers:
        known.setdefault((verifier.name, verifier.key_hash), []).append(verifier)
    message = note.text.encode("utf-8")
    signed_by: list[NoteVerifier] = []
    for sig in note.signatures:
        candidates = known.get((sig.name, sig.key_hash))
        if not candidates:
            continue  # MUST ignore signatures from unknown keys
        match = next((v for v in candidates if v.verify(message, sig.signature)), None)
        if match is None:
            raise InvalidNoteSignatureError(
                f"signature by {sig.name} (key ID {sig.key_hash.hex()}) does not verify"
            )
        signed_by.append(match)
    if not signed_by:
        seen = ", ".join(f"{s.name}/{s.key_hash.hex()}" for s in note.signatures)
        raise UnknownNoteKeyError(f"no signature from a trusted key (signed by: {seen})")
    return tuple(signed_by)


def format_checkpoint(origin: str, size: int, root: bytes, extensions: Iterable[str] = ()) -> str:
    """Checkpoint note text (tlog-checkpoint §Note text)."""
    if not origin or "\n" in origin:
        raise MalformedNoteError("origin must be a non-empty single line")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise MalformedNoteError("tree size must be a non-negative integer")
    if len(root) != HASH_SIZE:
        raise MalformedNoteError(f"root hash must be {HASH_SIZE} bytes")
    lines = [origin, str(size), b64encode(bytes(root)), *extensions]
    if any(not line or "\n" in line for line in lines[3:]):
        raise MalformedNoteError("extension lines must be non-empty single lines")
    return "\n".join(lines) + "\n"


def parse_checkpoint(body: str) -> Checkpoint:
    """Parse checkpoint note text (not a whole note). Does not verify anything."""
    if not body.endswith("\n"):
        raise MalformedNoteError("checkpoint text must end with a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise MalformedNoteError("a checkpoint has at least three non-empty lines")
    origin, size_text, root_text, *extensions = lines
    if not _SIZE.fullmatch(size_text):
        raise MalformedNoteError(f"tree size {size_text[:30]!r} is not a decimal without leading zeros")
    root = b64decode_strict(root_text)
    if root is None or len(root) != HASH_SIZE:
        raise MalformedNoteError("root hash is not the base64 of 32 bytes")
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


def sign_checkpoint(
    origin: str,
    size: int,
    root: bytes,
    signer: Signer,
    name: str | None = None,
    extensions: Iterable[str] = (),
) -> str:
    """A signed checkpoint; the key name defaults to the origin, as the spec recommends."""
    return sign_note(format_checkpoint(origin, size, root, extensions), signer, name or origin)


def verify_checkpoint(
    text: str | bytes,
    keyring_or_verifiers: KeyRing | Iterable[NoteVerifier],
    origin: str | None = None,
) -> Checkpoint:
    """Verify and parse a signed checkpoint.

    With a :class:`KeyRing`, every non-revoked key allowed the ``"log"`` role is trusted
    under the key name ``origin`` (or the checkpoint's own origin line when None; the key
    must still be pinned). Raises :class:`NoteError` subclasses: malformed text, wrong
    origin, no trusted signature, or a trusted signature that fails.
    """
    note = parse_note(text)
    claimed = parse_checkpoint(note.text)  # parsed before trust only to learn the origin
    if origin is not None and claimed.origin != origin:
        raise WrongOriginError(f"checkpoint is for log {claimed.origin!r}, expected {origin!r}")
    if isinstance(keyring_or_verifiers, KeyRing):
        name = origin or claimed.origin
        verifiers: Iterable[NoteVerifier] = [
            NoteVerifier(name, key.public_key_der, key.key_id)
            for key in keyring_or_verifiers
            if key.status != "revoked" and (key.roles is None or "log" in key.roles)
        ]
    else:
        verifiers = keyring_or_verifiers
    signed_by = _verified_by(note, verifiers)
    return Checkpoint(
        claimed.origin, claimed.size, claimed.root, claimed.extensions, tuple(v.key_id for v in signed_by)
    )

