"""Evidence bundles: build, sign, register and (via :mod:`.verify`) verify them.

Shape (the Quantum Ledger seed's, made precise)::

    {"bundle_id", "job_id", "tenant_id", "created_at",
     "items": [{"type", "content", "hash"}, ...],          # ITEM_TYPES, in that order
     "merkle_root": "<hex>",
     "signatures": [{"key_id", "algorithm": "ECDSA-P384", "signature": "<base64 DER>",
                     "signer": "worker" | "ledger", "signed_at": "<RFC 3339>"}],
     "registry": {"leaf_index", "tree_size", "inclusion_proof": ["<hex>"...],
                  "checkpoint": "<signed note>"},          # optional
     "public_keys": {<KeyRing JSON>}}                       # optional, never trusted

Definitions (each is a compatibility promise; change them only with a new context string):

* item hash = ``sha256_tagged(canonical_json(content))`` (RFC 8785 bytes).
* bundle Merkle leaf i = RFC 9162 leaf over ``canonical_json({"hash": h_i, "type": t_i})``:
  binding the type lets one item be disclosed with an inclusion proof and still say what
  it is. ``merkle_root`` = lowercase hex of the RFC 9162 root over those leaves.
* signed payload = the bundle without ``signatures``, ``registry`` and ``public_keys``
  (those are added after signing, or are untrusted conveniences). Each signature is an
  ECDSA-P384/SHA-384 signature over ``canonical_json({"context": SIGNATURE_CONTEXT,
  "bundle": payload, "algorithm", "key_id", "signer", "signed_at"})``: the signature's own
  role and time are covered, so a worker signature cannot be relabelled as the ledger's
  or moved into another key's validity window by editing JSON.
* registry leaf data = ``canonical_json({"context": REGISTRY_CONTEXT, "bundle_id",
  "merkle_root", "payload_hash": sha256_tagged(canonical_json(payload))})``; the registry
  log's leaf hash is the RFC 9162 leaf hash of those bytes.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import merkle
from .canonical import b64encode, canonical_json, format_timestamp, hash_json, sha256_tagged
from .keyring import KeyRing
from .signing import ALGORITHM, Signer

if TYPE_CHECKING:
    from .verify import VerificationReport

__all__ = [
    "ITEM_TYPES",
    "REGISTRY_CONTEXT",
    "ROLES",
    "SIGNATURE_CONTEXT",
    "UNSIGNED_FIELDS",
    "BundleFormatError",
    "EvidenceBundle",
    "attach_registry",
    "build_bundle",
    "item_leaf_data",
    "merkle_root_hex",
    "parse_json",
    "registry_leaf_data",
    "registry_leaf_hash",
    "sign_bundle",
    "signature_message",
    "signing_payload",
]

ITEM_TYPES: tuple[str, ...] = (
    "circuit_submission",
    "execution_configuration",
    "execution_result",
    "telemetry",
    "calibration",
    "provenance",
    "audit_trail",
)
ROLES: tuple[str, ...] = ("worker", "ledger")
UNSIGNED_FIELDS = frozenset({"signatures", "registry", "public_keys"})
SIGNATURE_CONTEXT = "qcos.evidence-bundle.signature.v1"
REGISTRY_CONTEXT = "qcos.registry.evidence-bundle.v1"


class BundleFormatError(ValueError):
    """The input cannot be read as a bundle at all (not JSON, not an object, bad archive).

    Semantic problems never raise: they are reported by :meth:`EvidenceBundle.verify`.
    """


def item_leaf_data(item_type: str, item_hash: str) -> bytes:
    """RFC 9162 leaf *data* (not yet leaf-hashed) for one bundle item."""
    return canonical_json({"hash": item_hash, "type": item_type})


def merkle_root_hex(items: Sequence[Mapping[str, Any]]) -> str:
    """Hex RFC 9162 root over the items' recorded ``type`` and ``hash``."""
    leaves = [merkle.leaf_hash(item_leaf_data(item["type"], item["hash"])) for item in items]
    return merkle.root(leaves).hex()


def signing_payload(bundle: Mapping[str, Any]) -> dict[str, Any]:
    """The signed part of a bundle: everything except :data:`UNSIGNED_FIELDS`."""
    return {key: value for key, value in bundle.items() if key not in UNSIGNED_FIELDS}


def signature_message(
    bundle: Mapping[str, Any], *, key_id: str, signer: str, signed_at: str, algorithm: str = ALGORITHM
) -> bytes:
    """The exact bytes an ECDSA signature of ``bundle`` covers (see module docstring)."""
    return canonical_json(
        {
            "context": SIGNATURE_CONTEXT,
            "bundle": signing_payload(bundle),
            "algorithm": algorithm,
            "key_id": key_id,
            "signer": signer,
            "signed_at": signed_at,
        }
    )


def registry_leaf_data(bundle: Mapping[str, Any]) -> bytes:
    """The bytes the registry log appends for this bundle (see module docstring)."""
    return canonical_json(
        {
            "context": REGISTRY_CONTEXT,
            "bundle_id": bundle["bundle_id"],
            "merkle_root": bundle["merkle_root"],
            "payload_hash": sha256_tagged(canonical_json(signing_payload(bundle))),
        }
    )


def registry_leaf_hash(bundle: Mapping[str, Any]) -> bytes:
    return merkle.leaf_hash(registry_leaf_data(bundle))


def build_bundle(
    *,
    job_id: str,
    tenant_id: str,
    items: Mapping[str, Any],
    bundle_id: str | None = None,
    created_at: datetime | None = None,
    copy_items: bool = True,
) -> dict[str, Any]:
    """Assemble an unsigned bundle from ``{item_type: content}`` (all seven types).

    Contents must be I-JSON (RFC 7493): no NaN, integers within ±(2**53 - 1). ``copy_items=False``
    lets a caller that built the contents for this bundle alone skip the defensive deep copy.
    """
    unknown = set(items) - set(ITEM_TYPES)
    missing = [t for t in ITEM_TYPES if t not in items]
    if unknown or missing:
        raise ValueError(f"bundle items: missing {missing}, unknown {sorted(unknown)}")
    entries = [
        {"type": t, "content": copy.deepcopy(items[t]) if copy_items else items[t], "hash": hash_json(items[t])}
        for t in ITEM_TYPES
    ]
    return {
        "bundle_id": bundle_id or f"bundle-{uuid.uuid4().hex}",
        "job_id": job_id,
        "tenant_id": tenant_id,
        "created_at": format_timestamp(created_at or datetime.now(UTC)),
        "items": entries,
        "merkle_root": merkle_root_hex(entries),
        "signatures": [],
    }


def sign_bundle(
    bundle: Mapping[str, Any], signer: Signer, role: str, signed_at: datetime | None = None, *, check: bool = True
) -> dict[str, Any]:
    """Return a copy of ``bundle`` with one more signature by ``signer`` acting as ``role``.

    Refuses to sign a bundle whose item hashes or Merkle root do not match its content:
    a countersignature must never launder a broken bundle. ``check=False`` skips that re-hashing
    for the one caller that just built the bundle with :func:`build_bundle` itself.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    items = bundle.get("items") or []
    if check:
        for item in items:
            if hash_json(item["content"]) != item["hash"]:
                raise ValueError(f"item {item['type']!r}: hash does not match content; refusing to sign")
        if merkle_root_hex(items) != bundle.get("merkle_root"):
            raise ValueError("merkle_root does not match the items; refusing to sign")
    when = format_timestamp(signed_at or datetime.now(UTC))
    message = signature_message(bundle, key_id=signer.key_id, signer=role, signed_at=when)
    # Unchecked signing is for a bundle its caller just built and owns: no defensive copy either.
    signed = copy.deepcopy(dict(bundle)) if check else {**bundle, "signatures": list(bundle.get("signatures") or [])}
    signed.setdefault("signatures", []).append(
        {
            "key_id": signer.key_id,
            "algorithm": ALGORITHM,
            "signature": b64encode(signer.sign(message)),
            "signer": role,
            "signed_at": when,
        }
    )
    return signed


def attach_registry(
    bundle: Mapping[str, Any],
    *,
    leaf_index: int,
    tree_size: int,
    inclusion_proof: Sequence[bytes],
    checkpoint: str,
) -> dict[str, Any]:
    """Return a copy of ``bundle`` carrying its registry inclusion proof and checkpoint."""
    registered = copy.deepcopy(dict(bundle))
    registered["registry"] = {
        "leaf_index": leaf_index,
        "tree_size": tree_size,
        "inclusion_proof": [bytes(h).hex() for h in inclusion_proof],
        "checkpoint": checkpoint,
    }
    return registered


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise BundleFormatError(f"duplicate JSON key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise BundleFormatError(f"JSON constant {name} is not allowed")


def parse_json(data: str | bytes) -> Any:
    """Strict JSON: duplicate keys and NaN/Infinity are errors (RFC 8259 §4, RFC 7493 §2.3),
    so every verifier sees the same object this parser saw."""
    try:
        return json.loads(data, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleFormatError(f"not valid JSON: {exc}") from exc


class EvidenceBundle:
    """A bundle document with load/save/export helpers and the one verifier."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        if not isinstance(data, Mapping):
            raise BundleFormatError("a bundle is a JSON object")
        self._data: dict[str, Any] = copy.deepcopy(dict(data))

    @classmethod
    def load(cls, source: str | os.PathLike[str] | Mapping[str, Any]) -> EvidenceBundle:
        """From a dict, JSON text, a ``.json`` file, an exported directory or a zip."""
        if isinstance(source, Mapping):
            return cls(source)
        if isinstance(source, str) and source.lstrip().startswith("{"):
            return cls(parse_json(source))
        path = Path(source)
        if path.is_dir() or zipfile.is_zipfile(path):
            from .archive import read_archive

            return cls(read_archive(path))
        try:
            return cls(parse_json(path.read_bytes()))
        except OSError as exc:
            raise BundleFormatError(f"cannot read {path}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._data)

    @property
    def bundle_id(self) -> Any:
        return self._data.get("bundle_id")

    @property
    def job_id(self) -> Any:
        return self._data.get("job_id")

    def verify(
        self,
        keyring: KeyRing | None = None,
        require_registry: bool = False,
        *,
        log_origin: str | None = None,
    ) -> VerificationReport:
        """Check everything and report every failure; see :func:`.verify.verify_bundle`."""
        from .verify import verify_bundle

        return verify_bundle(self._data, keyring, require_registry=require_registry, log_origin=log_origin)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the bundle as one UTF-8 JSON file (hashes never depend on this layout)."""
        text = json.dumps(self._data, indent=2, ensure_ascii=False) + "\n"
        Path(path).write_text(text, encoding="utf-8")

    def export_dir(self, path: str | os.PathLike[str]) -> None:
        """Write the seed's directory layout (manifest.json, circuit.qasm, ...)."""
        from .archive import write_dir

        write_dir(self._data, Path(path))

    def to_zip(self, path: str | os.PathLike[str]) -> None:
        """Write the directory layout as a deterministic zip archive."""
        from .archive import write_zip

        write_zip(self._data, Path(path))

    def __repr__(self) -> str:
        return f"EvidenceBundle({self.bundle_id!r})"
