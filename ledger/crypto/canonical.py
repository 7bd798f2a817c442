"""Canonical bytes: RFC 8785 JSON, tagged SHA-256, strict base64 and UTC timestamps.

Why this module exists: every hash and every signature in the ledger is computed over
bytes, and the server (PostgreSQL ``jsonb`` drops key order and whitespace), the SDK and
the CLI must all derive *the same* bytes from the same JSON value. ``json.dumps(
sort_keys=True)`` is not enough (``1.0``, ``1e-07``, ``-0.0`` and non-BMP key ordering
differ), so we use the JSON Canonicalization Scheme of RFC 8785 via the ``rfc8785``
package and never hash anything else.

The small encoding helpers live here too because the verifier must be *strict*: a lenient
base64 decoder accepts several spellings of the same bytes (non-zero padding bits, missing
padding, embedded newlines), which would let a "flipped" character go unnoticed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import UTC, datetime
from typing import Any

import rfc8785

try:  # optional: a C encoder for the common case, byte-identical to RFC 8785 there (see below)
    import orjson
except ImportError:  # pragma: no cover - the SDK may be installed without it
    orjson = None

__all__ = [
    "CanonicalizationError",
    "b64decode_strict",
    "b64encode",
    "canonical_json",
    "format_timestamp",
    "hash_json",
    "parse_tagged_sha256",
    "parse_timestamp",
    "sha256_tagged",
]

#: RFC 8785 refuses values outside I-JSON (RFC 7493 §2.2): NaN/Infinity, integers beyond
#: ±(2**53 - 1), non-string keys. We surface that as one ValueError subclass.
CanonicalizationError = rfc8785.CanonicalizationError

_TAGGED_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


def canonical_json(obj: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 encoding of ``obj``.

    RFC 8785 §3.2: no whitespace, object members sorted by their UTF-16 code units,
    numbers serialised as ECMAScript does (§3.2.2.3), strings with minimal escaping.
    Raises :class:`CanonicalizationError` (a ``ValueError``) for values I-JSON forbids.

    Audit entries are encoded on every state change, so values made only of ASCII-keyed
    objects, arrays, strings, booleans, null and safe integers take orjson's sorted-keys
    encoding, which gives the same bytes for them (ASCII keys sort alike in UTF-8 and UTF-16;
    both escape only ``"``, ``\\`` and control characters, in the same spelling; a test
    compares the two on random values). Floats, large integers and non-ASCII keys always go
    through the reference implementation.
    """
    if orjson is not None and _orjson_is_canonical(obj):
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    return rfc8785.dumps(obj)


_SAFE_INT = 2**53 - 1


def _orjson_is_canonical(obj: Any) -> bool:
    """True when orjson's sorted-keys bytes for ``obj`` are its RFC 8785 bytes.

    Bundles are walked several times per completed job (item hashes, two signatures, the
    registry leaf, storage), so the plain JSON types are checked by exact type with loops
    instead of generators (2-3x faster); anything else, subclasses included, goes to
    the general check below with the same answers as before.
    """
    kind = type(obj)
    if kind is str or obj is None or kind is bool:
        return True
    if kind is int:
        return -_SAFE_INT <= obj <= _SAFE_INT
    if kind is dict:
        for key, value in obj.items():
            if type(key) is not str or not key.isascii():
                return _orjson_is_canonical_general(obj)
            if type(value) is not str and not _orjson_is_canonical(value):
                return False
        return True
    if kind is list or kind is tuple:
        for value in obj:
            if type(value) is not str and not _orjson_is_canonical(value):
                return False
        return True
    return _orjson_is_canonical_general(obj)


def _orjson_is_canonical_general(obj: Any) -> bool:
    if isinstance(obj, str) or obj is None or obj is True or obj is False:
        return True
    if isinstance(obj, int):
        return -_SAFE_INT <= obj <= _SAFE_INT
    if isinstance(obj, dict):
        return all(isinstance(k, str) and k.isascii() and _orjson_is_canonical_general(v) for k, v in obj.items())
    if isinstance(obj, list | tuple):
        return all(_orjson_is_canonical_general(v) for v in obj)
    return False


def sha256_tagged(data: bytes) -> str:
    """Return ``"sha256:<64 lowercase hex>"`` of ``data``.

    The algorithm tag travels with the digest so a future migration (e.g. to SHA-384) is
    visible in the data instead of being guessed from the length.
    """
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hash_json(obj: Any) -> str:
    """``sha256_tagged(canonical_json(obj))``: the content hash used for bundle items."""
    return sha256_tagged(canonical_json(obj))


def parse_tagged_sha256(value: object) -> bytes | None:
    """Return the 32 digest bytes of a well-formed ``"sha256:<hex>"`` string, else None.

    Only lowercase hex is accepted so that each digest has exactly one spelling.
    """
    if not isinstance(value, str) or not _TAGGED_SHA256.fullmatch(value):
        return None
    return bytes.fromhex(value[7:])


def b64encode(data: bytes) -> str:
    """Standard base64 (RFC 4648 §4) with padding, as the C2SP specs use."""
    return base64.b64encode(data).decode("ascii")


def b64decode_strict(value: object) -> bytes | None:
    """Decode standard padded base64 (RFC 4648 §4), or return None.

    Rejects anything that does not re-encode to the identical string (non-canonical
    trailing bits, missing padding, whitespace, URL-safe alphabet), so that every byte
    string has exactly one accepted textual form (RFC 4648 §3.5 "canonical encoding").
    """
    if not isinstance(value, str):
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    if base64.b64encode(raw).decode("ascii") != value:
        return None
    return raw


def format_timestamp(moment: datetime) -> str:
    """Render an aware datetime as RFC 3339 UTC with a ``Z`` suffix (seconds precision
    plus microseconds only when non-zero), the form used in bundles and key rings."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware")
    moment = moment.astimezone(UTC)
    text = moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def parse_timestamp(value: object) -> datetime | None:
    """Parse an RFC 3339 timestamp that carries a UTC offset; None if invalid or naive.

    Naive timestamps are refused: a key validity check against a time of unknown zone
    could be off by up to 14 hours.
    """
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        return None
    return moment.astimezone(UTC)
