"""QCOS ledger cryptographic core: pure Python, no Django.

Why a separate package: the server, the SDK and the CLI must run *one* verification
implementation, so this package depends only on ``cryptography`` and ``rfc8785`` (plus
an optional boto3 KMS client passed in by the caller) and never imports Django.

Modules:

* :mod:`.canonical`: RFC 8785 canonical JSON, ``sha256:`` tags, strict base64, timestamps.
* :mod:`.merkle`: RFC 9162 Merkle tree hashes, proofs, verifiers, perfect-subtree storage.
* :mod:`.signing`: ECDSA P-384 signers (local, AWS KMS), ``key_id``, signature checks.
* :mod:`.keyring`: trusted public keys with validity windows (rotation, pinning).
* :mod:`.note`: C2SP signed notes and tlog checkpoints.
* :mod:`.bundle` / :mod:`.verify` / :mod:`.archive`: evidence bundles, their verifier and
  their directory / zip layout.
"""

from .bundle import (
    ITEM_TYPES,
    ROLES,
    BundleFormatError,
    EvidenceBundle,
    attach_registry,
    build_bundle,
    registry_leaf_data,
    registry_leaf_hash,
    sign_bundle,
)
from .canonical import canonical_json, hash_json, sha256_tagged
from .keyring import KeyRing, KeyRingError, TrustedKey
from .note import (
    Checkpoint,
    NoteError,
    NoteVerifier,
    parse_note,
    sign_checkpoint,
    verify_checkpoint,
)
from .signing import (
    ALGORITHM,
    KmsSigner,
    LocalSigner,
    Signer,
    SigningError,
    key_id,
    verify_signature,
)
from .verify import VerificationReport, verify_bundle

__all__ = [
    "ALGORITHM",
    "ITEM_TYPES",
    "ROLES",
    "BundleFormatError",
    "Checkpoint",
    "EvidenceBundle",
    "KeyRing",
    "KeyRingError",
    "KmsSigner",
    "LocalSigner",
    "NoteError",
    "NoteVerifier",
    "Signer",
    "SigningError",
    "TrustedKey",
    "VerificationReport",
    "attach_registry",
    "build_bundle",
    "canonical_json",
    "hash_json",
    "key_id",
    "parse_note",
    "registry_leaf_data",
    "registry_leaf_hash",
    "sha256_tagged",
    "sign_bundle",
    "sign_checkpoint",
    "verify_bundle",
    "verify_checkpoint",
    "verify_signature",
]
