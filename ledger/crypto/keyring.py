"""Trusted key sets: public keys with validity windows, for bundles and checkpoints.

Why: a :class:`KeyRing` is what the public keys endpoint serves and what an auditor pins
offline. Keys carry ``not_before``/``not_after`` (None = open) and a status; rotation
retires a key by closing its window, and keys are never deleted, so bundles signed years
ago stay verifiable. ``key_id`` is always recomputed from the key (SHA-256 of the DER
SubjectPublicKeyInfo), so a served or pinned id cannot lie about its key.

JSON form (``KeyRing.to_dict``)::

    {"version": 1, "keys": [{"key_id", "algorithm": "ECDSA-P384", "public_key": "<PEM>",
      "not_before": "<RFC 3339>", "not_after": "<RFC 3339>" | null,
      "status": "active" | "retired" | "revoked", "roles": ["worker", ...]  # optional}]}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from .canonical import format_timestamp, parse_timestamp
from .signing import ALGORITHM, load_public_key, public_key_der, verify_signature

__all__ = ["KEY_STATUSES", "KeyRing", "KeyRingError", "TrustedKey"]

#: "retired" keys still verify inside their window; "revoked" keys never verify
#: (use it only after a compromise, when even old signatures cannot be trusted).
KEY_STATUSES = ("active", "retired", "revoked")


class KeyRingError(ValueError):
    """A key ring (or one of its keys) is malformed or inconsistent."""


@dataclass(frozen=True)
class TrustedKey:
    """One public key with its validity window, inclusive at both ends like X.509's
    notBefore/notAfter (RFC 5280 §4.1.2.5). ``roles`` None means any signer role."""

    public_key_der: bytes
    not_before: datetime
    not_after: datetime | None = None
    status: str = "active"
    roles: frozenset[str] | None = None
    key_id: str = field(init=False)

    def __post_init__(self) -> None:
        try:
            der = public_key_der(load_public_key(self.public_key_der))
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise KeyRingError(f"not a P-384 public key: {exc}") from exc
        object.__setattr__(self, "public_key_der", der)
        object.__setattr__(self, "key_id", hashlib.sha256(der).hexdigest())
        for moment in (self.not_before, self.not_after):
            if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
                raise KeyRingError("key validity bounds must be timezone-aware")
        if self.not_after is not None and self.not_after < self.not_before:
            raise KeyRingError(f"key {self.key_id}: not_after precedes not_before")
        if self.status not in KEY_STATUSES:
            raise KeyRingError(f"key {self.key_id}: unknown status {self.status!r}")
        if self.status == "retired" and self.not_after is None:
            raise KeyRingError(f"key {self.key_id}: a retired key needs not_after")
        if self.roles is not None:
            object.__setattr__(self, "roles", frozenset(self.roles))

    def valid_at(self, moment: datetime) -> bool:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("validity checks need a timezone-aware datetime")
        if self.status == "revoked" or moment < self.not_before:
            return False
        return self.not_after is None or moment <= self.not_after

    def window(self) -> str:
        end = format_timestamp(self.not_after) if self.not_after else "open"
        return f"[{format_timestamp(self.not_before)}, {end}]"

    def to_dict(self) -> dict[str, Any]:
        pem = load_public_key(self.public_key_der).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        data: dict[str, Any] = {
            "key_id": self.key_id,
            "algorithm": ALGORITHM,
            "public_key": pem.decode("ascii"),
            "not_before": format_timestamp(self.not_before),
            "not_after": format_timestamp(self.not_after) if self.not_after else None,
            "status": self.status,
        }
        if self.roles is not None:
            data["roles"] = sorted(self.roles)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrustedKey:
        if not isinstance(data, Mapping):
            raise KeyRingError("a key entry must be a JSON object")
        if data.get("algorithm", ALGORITHM) != ALGORITHM:
            raise KeyRingError(f"unsupported algorithm {data.get('algorithm')!r}")
        try:
            der = public_key_der(load_public_key(data["public_key"]))
        except (KeyError, ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise KeyRingError(f"bad public_key: {exc}") from exc
        not_before = parse_timestamp(data.get("not_before"))
        not_after = parse_timestamp(data.get("not_after")) if data.get("not_after") is not None else None
        if not_before is None or (data.get("not_after") is not None and not_after is None):
            raise KeyRingError("not_before/not_after must be RFC 3339 timestamps with an offset")
        roles = data.get("roles")
        if roles is not None and not (isinstance(roles, list) and all(isinstance(r, str) for r in roles)):
            raise KeyRingError("roles must be a list of strings")
        key = cls(der, not_before, not_after, data.get("status", "active"), frozenset(roles) if roles else None)
        if "key_id" in data and data["key_id"] != key.key_id:
            raise KeyRingError(f"key_id {data['key_id']!r} does not match its public key ({key.key_id})")
        return key


class KeyRing:
    """A set of trusted public keys by ``key_id``. Deliberately has no ``remove``."""

    def __init__(self, keys: Iterable[TrustedKey] = ()) -> None:
        self._keys: dict[str, TrustedKey] = {}
        for key in keys:
            self.add(key)

    def add(self, key: TrustedKey) -> TrustedKey:
        if key.key_id in self._keys and self._keys[key.key_id] != key:
            raise KeyRingError(f"key {key.key_id} is already in the ring with other attributes")
        self._keys[key.key_id] = key
        return key

    def add_public_key(
        self,
        public_key: bytes | str,
        not_before: datetime,
        not_after: datetime | None = None,
        status: str = "active",
        roles: Iterable[str] | None = None,
    ) -> TrustedKey:
        der = public_key_der(load_public_key(public_key))
        return self.add(TrustedKey(der, not_before, not_after, status, frozenset(roles) if roles else None))

    def retire(self, key_id: str, at: datetime) -> TrustedKey:
        """Close a key's window at ``at``; it keeps verifying what it signed before."""
        key = self._keys[key_id]
        end = at if key.not_after is None else min(key.not_after, at)
        self._keys[key_id] = replace(key, not_after=end, status="retired")
        return self._keys[key_id]

    def get(self, key_id: str) -> TrustedKey | None:
        return self._keys.get(key_id)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __iter__(self) -> Iterator[TrustedKey]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)

    def check(
        self, key_id: str, message: bytes, signature: bytes, at: datetime, role: str | None = None
    ) -> str | None:
        """Why this signature is not acceptable, or None when it is."""
        key = self._keys.get(key_id)
        if key is None:
            return f"unknown key {key_id}"
        if key.status == "revoked":
            return f"key {key_id} is revoked"
        if not key.valid_at(at):
            return f"signed at {format_timestamp(at)}, outside key validity window {key.window()}"
        if role is not None and key.roles is not None and role not in key.roles:
            return f"key {key_id} may not sign as {role!r} (roles: {sorted(key.roles)})"
        if not verify_signature(key.public_key_der, message, signature):
            return "signature does not verify"
        return None

    def verify(
        self, key_id: str, message: bytes, signature: bytes, at: datetime, role: str | None = None
    ) -> bool:
        """True when the key is known, not revoked, valid at ``at`` and the signature checks."""
        return self.check(key_id, message, signature, at, role) is None

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, "keys": [k.to_dict() for k in sorted(self, key=lambda k: (k.not_before, k.key_id))]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KeyRing:
        if not isinstance(data, Mapping) or not isinstance(data.get("keys"), list):
            raise KeyRingError('a key ring is a JSON object with a "keys" list')
        ring = cls()
        for entry in data["keys"]:
            key = TrustedKey.from_dict(entry)
            if key.key_id in ring:
                raise KeyRingError(f"duplicate key {key.key_id}")
            ring.add(key)
        return ring

    @classmethod
    def from_json(cls, text: str | bytes) -> KeyRing:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise KeyRingError(f"key ring is not JSON: {exc}") from exc
