"""The one evidence-bundle verifier, shared by the server, the SDK and the CLI.

Why one implementation: a verifier that differs between the API and the auditor's CLI is
a vulnerability (whatever one accepts and the other rejects is an argument in court).
It never stops at the first problem and never raises on hostile input: every failing
check is listed with the item, key or field it concerns, so a report says *what* was
tampered with.

Checks, grouped into the report's booleans:

* ``hashes_valid``: every item's recorded hash equals ``sha256_tagged(canonical_json(content))``.
* ``signatures_valid``: there is at least one signature and every one of them verifies
  with a known, non-revoked key whose validity window contains ``signed_at`` (and whose
  ``roles``, when set, include the claimed signer role).
* ``chain_valid`` (the seed's chain of custody): exactly the seven item types, in order,
  no duplicates or unknown types; ``merkle_root`` matches; a valid ``worker`` and a valid
  ``ledger`` signature are present; and, when a ``registry`` block is present, it verifies.
* ``registry_valid``: None without a ``registry`` block; otherwise the checkpoint's
  signature verifies with a trusted log key, its size equals ``tree_size``, and the
  inclusion proof of :func:`.bundle.registry_leaf_hash` verifies against its root.

Without a pinned key ring, the bundle's own ``public_keys`` are used and the warning
``keys not pinned`` is added: such a report proves integrity, not origin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import merkle
from .bundle import ITEM_TYPES, ROLES, item_leaf_data, registry_leaf_hash, signature_message
from .canonical import (
    CanonicalizationError,
    b64decode_strict,
    hash_json,
    parse_tagged_sha256,
    parse_timestamp,
)
from .keyring import KeyRing, KeyRingError
from .note import NoteError, parse_checkpoint, parse_note, verify_checkpoint
from .signing import ALGORITHM

__all__ = ["KEYS_NOT_PINNED", "VerificationReport", "verify_bundle"]

KEYS_NOT_PINNED = "keys not pinned"
_REQUIRED_TEXT_FIELDS = ("bundle_id", "job_id", "tenant_id")


@dataclass
class VerificationReport:
    is_valid: bool
    signatures_valid: bool
    hashes_valid: bool
    chain_valid: bool
    registry_valid: bool | None
    keys_pinned: bool
    failures: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "is_valid": self.is_valid,
            "signatures_valid": self.signatures_valid,
            "hashes_valid": self.hashes_valid,
            "chain_valid": self.chain_valid,
            "registry_valid": self.registry_valid,
            "keys_pinned": self.keys_pinned,
            "failures": list(self.failures),
            "warnings": list(self.warnings),
        }

    def failed(self, check: str) -> list[dict[str, Any]]:
        return [f for f in self.failures if f["check"] == check]


class _Failures(list[dict[str, Any]]):
    def add(self, check: str, message: str, **where: Any) -> None:
        self.append({"check": check, **where, "message": message})

    def tally(self, *checks: str) -> int:
        return sum(1 for f in self if f["check"] in checks)


def _check_schema(bundle: Mapping[str, Any], out: _Failures) -> list[Any]:
    for name in _REQUIRED_TEXT_FIELDS:
        if not isinstance(bundle.get(name), str) or not bundle.get(name):
            out.add("schema", f"{name} must be a non-empty string", field=name)
    if parse_timestamp(bundle.get("created_at")) is None:
        out.add("schema", "created_at must be an RFC 3339 timestamp with an offset", field="created_at")
    items = bundle.get("items")
    if not isinstance(items, list):
        out.add("schema", "items must be a list", field="items")
        return []
    for index, item in enumerate(items):
        if not _wellformed(item):
            out.add("schema", 'item needs a string type, content and a "sha256:<64 hex>" hash', index=index)
    return items


def _wellformed(item: Any) -> bool:
    return (
        isinstance(item, Mapping)
        and {"type", "content", "hash"} <= set(item)
        and isinstance(item["type"], str)
        and parse_tagged_sha256(item["hash"]) is not None
    )


def _check_items(bundle: Mapping[str, Any], items: list[Any], out: _Failures) -> None:
    if not items:
        out.add("item_hash", "bundle has no items", field="items")
    for index, item in enumerate(items):
        if not _wellformed(item):
            out.add("item_hash", "malformed item cannot be hashed", index=index)
            continue
        try:
            computed = hash_json(item["content"])
        except (CanonicalizationError, TypeError, ValueError) as exc:
            out.add("item_hash", f"content is not canonical JSON: {exc}", item=item["type"], index=index)
            continue
        if computed != item["hash"]:
            out.add(
                "item_hash",
                f"content hash mismatch: recorded {item['hash']}, computed {computed}",
                item=item["type"],
                index=index,
            )
    types = [item["type"] if _wellformed(item) else None for item in items]
    for index, item_type in enumerate(types):
        if item_type is None:
            continue
        if item_type not in ITEM_TYPES:
            out.add("chain", "unknown item type", item=item_type, index=index)
        elif types.index(item_type) != index:
            out.add("chain", "duplicate item", item=item_type, index=index)
    for item_type in ITEM_TYPES:
        if item_type not in types:
            out.add("chain", "missing item", item=item_type)
    known = [t for t in dict.fromkeys(types) if t in ITEM_TYPES]
    expected = [t for t in ITEM_TYPES if t in known]
    if known != expected:
        out.add("chain", f"items out of order: expected {expected}, got {known}", item="items")
    if not all(_wellformed(item) for item in items):
        out.add("merkle_root", "merkle_root cannot be recomputed over malformed items", field="merkle_root")
        return
    leaves = [merkle.leaf_hash(item_leaf_data(item["type"], item["hash"])) for item in items]
    computed_root = merkle.root(leaves).hex()
    if bundle.get("merkle_root") != computed_root:
        out.add(
            "merkle_root",
            f"merkle_root mismatch: recorded {bundle.get('merkle_root')!r}, computed {computed_root}",
            field="merkle_root",
        )


def _keys(bundle: Mapping[str, Any], keyring: KeyRing | None, out: _Failures, warnings: list[str]) -> KeyRing:
    if keyring is not None:
        return keyring
    warnings.append(KEYS_NOT_PINNED)
    embedded = bundle.get("public_keys")
    if embedded is None:
        out.add("signature", "no key ring given and the bundle embeds no public_keys", field="public_keys")
        return KeyRing()
    try:
        return KeyRing.from_dict(embedded)
    except KeyRingError as exc:
        out.add("signature", f"embedded public_keys are malformed: {exc}", field="public_keys")
        return KeyRing()


def _check_signatures(bundle: Mapping[str, Any], ring: KeyRing, out: _Failures) -> set[str]:
    signatures = bundle.get("signatures")
    valid_roles: set[str] = set()
    if not isinstance(signatures, list) or not signatures:
        out.add("signature", "bundle has no signatures", field="signatures")
        return valid_roles
    for index, entry in enumerate(signatures):
        if not isinstance(entry, Mapping):
            out.add("signature", "signature entry must be an object", index=index)
            continue
        where = {"key_id": entry.get("key_id"), "signer": entry.get("signer"), "index": index}
        raw = b64decode_strict(entry.get("signature"))
        signed_at = parse_timestamp(entry.get("signed_at"))
        problems = []
        if not isinstance(entry.get("key_id"), str):
            problems.append("key_id must be a string")
        if entry.get("algorithm") != ALGORITHM:
            problems.append(f"algorithm must be {ALGORITHM!r}")
        if entry.get("signer") not in ROLES:
            problems.append(f"signer must be one of {list(ROLES)}")
        if raw is None:
            problems.append("signature is not canonical base64")
        if signed_at is None:
            problems.append("signed_at must be an RFC 3339 timestamp with an offset")
        if problems:
            out.add("signature", "; ".join(problems), **where)
            continue
        assert raw is not None and signed_at is not None
        try:
            message = signature_message(
                bundle, key_id=entry["key_id"], signer=entry["signer"], signed_at=entry["signed_at"]
            )
        except (CanonicalizationError, TypeError, ValueError) as exc:
            out.add("signature", f"bundle cannot be canonicalized: {exc}", **where)
            continue
        reason = ring.check(entry["key_id"], message, raw, signed_at, role=entry["signer"])
        if reason is not None:
            out.add("signature", reason, **where)
        else:
            valid_roles.add(entry["signer"])
    return valid_roles


def _check_registry(bundle: Mapping[str, Any], ring: KeyRing, origin: str | None, out: _Failures) -> bool:
    before = len(out)
    registry = bundle.get("registry")
    if not isinstance(registry, Mapping):
        out.add("registry", "registry must be an object", field="registry")
        return False
    index, size = registry.get("leaf_index"), registry.get("tree_size")
    proof_hex = registry.get("inclusion_proof")
    text = registry.get("checkpoint")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (index, size)):
        out.add("registry", "leaf_index and tree_size must be integers", field="registry")
    proof: list[bytes] | None = None
    if isinstance(proof_hex, list) and all(isinstance(h, str) and len(h) == 64 for h in proof_hex):
        try:
            proof = [bytes.fromhex(h) for h in proof_hex]
            if any(h.hex() != s for h, s in zip(proof, proof_hex, strict=True)):
                proof = None  # uppercase or otherwise non-canonical hex
        except ValueError:
            proof = None
    if proof is None:
        out.add("registry", "inclusion_proof must be a list of 64-char lowercase hex strings", field="inclusion_proof")
    root: bytes | None = None
    if not isinstance(text, str):
        out.add("registry", "checkpoint must be a signed note string", field="checkpoint")
    else:
        try:
            claimed = parse_checkpoint(parse_note(text).text)
        except NoteError as exc:
            out.add("registry", f"checkpoint: {exc}", field="checkpoint")
        else:
            root = claimed.root  # also tested when the signature fails, to report both
            try:
                verify_checkpoint(text, ring, origin=origin)
            except NoteError as exc:
                out.add("registry", f"checkpoint: {exc}", field="checkpoint")
            if isinstance(size, int) and claimed.size != size:
                out.add("registry", f"tree_size {size} differs from checkpoint size {claimed.size}", field="tree_size")
    if root is not None and proof is not None and isinstance(index, int) and isinstance(size, int):
        try:
            leaf = registry_leaf_hash(bundle)
        except (KeyError, CanonicalizationError, TypeError, ValueError) as exc:
            out.add("registry", f"cannot compute the registry leaf: {exc}", field="registry")
        else:
            if not merkle.verify_inclusion(leaf, index, size, proof, root):
                out.add(
                    "registry",
                    "inclusion proof does not verify against the checkpoint root",
                    field="inclusion_proof",
                )
    return len(out) == before


def verify_bundle(
    bundle: Mapping[str, Any],
    keyring: KeyRing | None = None,
    *,
    require_registry: bool = False,
    log_origin: str | None = None,
) -> VerificationReport:
    """Verify a bundle dict; see the module docstring for what each flag means."""
    out = _Failures()
    warnings: list[str] = []
    if not isinstance(bundle, Mapping):
        out.add("schema", "a bundle is a JSON object")
        return VerificationReport(False, False, False, False, None, keyring is not None, out, warnings)
    _check_items(bundle, _check_schema(bundle, out), out)
    ring = _keys(bundle, keyring, out, warnings)
    valid_roles = _check_signatures(bundle, ring, out)
    for role in ROLES:
        if role not in valid_roles:
            out.add("chain", f"no valid {role} signature", signer=role)
    registry_valid: bool | None = None
    if "registry" in bundle:
        registry_valid = _check_registry(bundle, ring, log_origin, out)
    elif require_registry:
        out.add("registry", "registry block required but absent", field="registry")
    hashes_valid = out.tally("item_hash") == 0
    signatures_valid = out.tally("signature") == 0
    chain_valid = out.tally("chain", "merkle_root") == 0 and registry_valid is not False
    is_valid = hashes_valid and signatures_valid and chain_valid and not out.tally("schema", "registry")
    return VerificationReport(
        is_valid=is_valid,
        signatures_valid=signatures_valid,
        hashes_valid=hashes_valid,
        chain_valid=chain_valid,
        registry_valid=registry_valid,
        keys_pinned=keyring is not None,
        failures=list(out),
        warnings=warnings,
    )
