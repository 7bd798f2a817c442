"""ECDSA P-384 / SHA-384 signers (local PEM key or AWS KMS), verification, trusted key rings.

Why P-384: AWS KMS offers it as ``ECC_NIST_P384`` with ``ECDSA_SHA_384``, so the production
key never leaves the HSM, while development and tests use the same algorithm with a local
key. Signatures are DER ``Ecdsa-Sig-Value`` (RFC 3279 §2.2.3), which is what both KMS and
``cryptography`` produce.

A key is identified by ``key_id`` = lowercase hex SHA-256 of its DER SubjectPublicKeyInfo
(RFC 5280 §4.1.2.7), so an id can be recomputed from the key and never trusted blindly.

Signers hash locally and only send the 48-byte SHA-384 digest to KMS
(``MessageType="DIGEST"``): the message never leaves the process and its size is unlimited
(KMS caps raw messages at 4 KiB). :meth:`Signer.sign_digest` is the one primitive both
signers implement; :mod:`ledger.crypto.note` also uses it for C2SP signatures.

Trusted key sets (validity windows, rotation) live in :mod:`ledger.crypto.keyring`.
"""

from __future__ import annotations

import functools
import hashlib
import os
from typing import Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

__all__ = [
    "ALGORITHM",
    "KmsSigner",
    "LocalSigner",
    "Signer",
    "SigningError",
    "key_id",
    "load_public_key",
    "public_key_der",
    "verify_digest_signature",
    "verify_signature",
]

ALGORITHM = "ECDSA-P384"
KMS_KEY_SPEC = "ECC_NIST_P384"
KMS_SIGNING_ALGORITHM = "ECDSA_SHA_384"
DIGEST_SIZE = 48  # SHA-384
_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384}


class SigningError(RuntimeError):
    """A signer could not produce a valid signature (misconfigured key, KMS fault)."""


def _require_p384(key: object) -> None:
    if not isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        raise ValueError(f"expected an EC key, got {type(key).__name__}")
    if not isinstance(key.curve, ec.SECP384R1):
        raise ValueError(f"expected curve P-384 (secp384r1), got {key.curve.name}")


def public_key_der(key: ec.EllipticCurvePublicKey) -> bytes:
    """DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) of a P-384 public key."""
    _require_p384(key)
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@functools.lru_cache(maxsize=256)
def _load_der(der: bytes) -> ec.EllipticCurvePublicKey:
    key = serialization.load_der_public_key(der)
    _require_p384(key)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def load_public_key(data: bytes | str) -> ec.EllipticCurvePublicKey:
    """Load a P-384 public key from PEM (text or bytes) or DER SubjectPublicKeyInfo."""
    raw = data.encode("ascii") if isinstance(data, str) else bytes(data)
    if raw.lstrip().startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(raw)
        _require_p384(key)
        assert isinstance(key, ec.EllipticCurvePublicKey)
        return key
    return _load_der(raw)


def key_id(public_key: ec.EllipticCurvePublicKey | bytes | str) -> str:
    """Hex SHA-256 of the DER SubjectPublicKeyInfo; accepts a key object, DER or PEM."""
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key = load_public_key(public_key)
    return hashlib.sha256(public_key_der(public_key)).hexdigest()


def verify_signature(public_key_der: bytes, message: bytes, signature_der: bytes) -> bool:
    """ECDSA P-384 / SHA-384 verification of a DER signature; False on any failure."""
    return verify_digest_signature(public_key_der, hashlib.sha384(message).digest(), signature_der)


def verify_digest_signature(
    public_key_der: bytes, digest: bytes, signature_der: bytes, hash_name: str = "sha384"
) -> bool:
    """Verify a DER ECDSA signature over a precomputed digest (``sha384`` or ``sha256``).

    The sha256 form exists for C2SP signed notes (signature type 0x02 hashes with SHA-256).
    """
    try:
        algorithm = _HASHES[hash_name]()
        if len(digest) != algorithm.digest_size:
            return False
        _load_der(bytes(public_key_der)).verify(
            bytes(signature_der), bytes(digest), ec.ECDSA(Prehashed(algorithm))
        )
        return True
    except (InvalidSignature, ValueError, TypeError, KeyError, UnsupportedAlgorithm):
        return False


@runtime_checkable
class Signer(Protocol):
    """What the ledger needs from a signing key, wherever the private half lives."""

    @property
    def key_id(self) -> str: ...

    @property
    def algorithm(self) -> str: ...  # always "ECDSA-P384"

    @property
    def public_key_der(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes:
        """DER ECDSA signature over SHA-384(message)."""
        ...

    def sign_digest(self, digest: bytes) -> bytes:
        """DER ECDSA signature whose hash input is these 48 bytes (a SHA-384 digest)."""
        ...


class LocalSigner:
    """A P-384 private key held in process memory (development, tests, air-gapped CLI)."""

    algorithm = ALGORITHM

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        _require_p384(private_key)
        self._key = private_key
        self._der = public_key_der(private_key.public_key())
        self._key_id = hashlib.sha256(self._der).hexdigest()

    @classmethod
    def generate(cls) -> LocalSigner:
        return cls(ec.generate_private_key(ec.SECP384R1()))

    @classmethod
    def from_pem(cls, pem: bytes | str, password: bytes | None = None) -> LocalSigner:
        """Load a PEM private key (PKCS#8 or SEC1 "EC PRIVATE KEY")."""
        data = pem.encode("ascii") if isinstance(pem, str) else pem
        key = serialization.load_pem_private_key(data, password=password)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the PEM does not hold an EC private key")
        return cls(key)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], password: bytes | None = None) -> LocalSigner:
        with open(path, "rb") as handle:
            return cls.from_pem(handle.read(), password)

    def private_key_pem(self, password: bytes | None = None) -> bytes:
        """PKCS#8 PEM, encrypted when a password is given."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
        )
        return self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def public_key_der(self) -> bytes:
        return self._der

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message, ec.ECDSA(hashes.SHA384()))

    def sign_digest(self, digest: bytes) -> bytes:
        if len(digest) != DIGEST_SIZE:
            raise ValueError(f"digest must be {DIGEST_SIZE} bytes")
        return self._key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA384())))

    def __repr__(self) -> str:  # never print key material
        return f"LocalSigner(key_id={self._key_id[:16]}…)"


class KmsSigner:
    """An AWS KMS asymmetric key (``ECC_NIST_P384``, ``SIGN_VERIFY``) via a boto3 client.

    Only the SHA-384 digest is sent (``MessageType="DIGEST"``). Every signature is checked
    against the key's public half before it is returned: a misconfigured key or an
    emulator that mishandles DIGEST mode fails loudly instead of producing bundles nobody
    can verify. KMS does not rotate asymmetric keys; rotation is a new key in the ring.
    """

    algorithm = ALGORITHM

    def __init__(self, kms_client: Any, key_arn: str, *, self_check: bool = True) -> None:
        self._kms = kms_client
        self.key_arn = key_arn
        self._self_check = self_check

    @functools.cached_property
    def public_key_der(self) -> bytes:
        response = self._kms.get_public_key(KeyId=self.key_arn)
        spec = response.get("KeySpec") or response.get("CustomerMasterKeySpec")
        if spec != KMS_KEY_SPEC:
            raise SigningError(f"KMS key {self.key_arn} has spec {spec!r}, expected {KMS_KEY_SPEC}")
        if response.get("KeyUsage", "SIGN_VERIFY") != "SIGN_VERIFY":
            raise SigningError(f"KMS key {self.key_arn} is not a SIGN_VERIFY key")
        if KMS_SIGNING_ALGORITHM not in response.get("SigningAlgorithms", [KMS_SIGNING_ALGORITHM]):
            raise SigningError(f"KMS key {self.key_arn} does not offer {KMS_SIGNING_ALGORITHM}")
        return public_key_der(load_public_key(response["PublicKey"]))

    @property
    def key_id(self) -> str:
        return hashlib.sha256(self.public_key_der).hexdigest()

    def sign(self, message: bytes) -> bytes:
        return self.sign_digest(hashlib.sha384(message).digest())

    def sign_digest(self, digest: bytes) -> bytes:
        if len(digest) != DIGEST_SIZE:
            raise ValueError(f"digest must be {DIGEST_SIZE} bytes")
        der = self.public_key_der  # fetch and check the key spec before the first Sign call
        response = self._kms.sign(
            KeyId=self.key_arn,
            Message=digest,
            MessageType="DIGEST",
            SigningAlgorithm=KMS_SIGNING_ALGORITHM,
        )
        signature = bytes(response["Signature"])
        if self._self_check and not verify_digest_signature(der, digest, signature):
            raise SigningError(f"KMS key {self.key_arn} returned a signature that does not verify")
        return signature

    def __repr__(self) -> str:
        return f"KmsSigner({self.key_arn!r})"
