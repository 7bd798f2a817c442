"""ECDSA P-384 signers (local and AWS KMS through botocore's Stubber) and key rings.

moto 5.2.5 was evaluated for KMS: it creates ECC_NIST_P384 keys and signs in RAW mode,
but treats MessageType="DIGEST" as RAW (it hashes the digest again), so its signatures
do not verify. The Stubber below answers with signatures made by a real local P-384 key
over exactly the digest the signer sends.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from ledger.crypto.bundle import build_bundle, sign_bundle, signature_message
from ledger.crypto.keyring import KeyRing, KeyRingError, TrustedKey
from ledger.crypto.signing import KmsSigner, LocalSigner, Signer, SigningError, key_id, verify_signature
from ledger.crypto.verify import verify_bundle

from .conftest import CONTENTS, T0

ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _kms_client():
    return boto3.client("kms", region_name="eu-west-1", aws_access_key_id="test", aws_secret_access_key="test")


def _public_key_response(signer: LocalSigner, spec: str = "ECC_NIST_P384") -> dict:
    return {
        "KeyId": ARN,
        "PublicKey": signer.public_key_der,
        "KeySpec": spec,
        "KeyUsage": "SIGN_VERIFY",
        "SigningAlgorithms": ["ECDSA_SHA_384"],
    }


def _expect_sign(stubber: Stubber, hsm_key: LocalSigner, digest: bytes, signature: bytes | None = None) -> None:
    stubber.add_response(
        "sign",
        {"KeyId": ARN, "Signature": signature or hsm_key.sign_digest(digest), "SigningAlgorithm": "ECDSA_SHA_384"},
        expected_params={
            "KeyId": ARN,
            "Message": digest,
            "MessageType": "DIGEST",
            "SigningAlgorithm": "ECDSA_SHA_384",
        },
    )


def test_key_id_is_sha256_of_spki_der() -> None:
    signer = LocalSigner.generate()
    assert signer.key_id == hashlib.sha256(signer.public_key_der).hexdigest()
    assert key_id(signer.public_key_der) == signer.key_id
    assert signer.public_key_der[:2] == b"\x30\x76"  # SEQUENCE of a P-384 SPKI (120 bytes)
    assert isinstance(signer, Signer) and signer.algorithm == "ECDSA-P384"


def test_local_signer_round_trip_and_pem(tmp_path) -> None:
    signer = LocalSigner.generate()
    signature = signer.sign(b"message")
    assert verify_signature(signer.public_key_der, b"message", signature)
    assert not verify_signature(signer.public_key_der, b"messagf", signature)
    assert not verify_signature(signer.public_key_der, b"message", signature[:-1])
    assert not verify_signature(b"not a key", b"message", signature)
    pem = signer.private_key_pem()
    assert LocalSigner.from_pem(pem.decode()).key_id == signer.key_id
    path = tmp_path / "key.pem"
    path.write_bytes(signer.private_key_pem(password=b"pw"))
    assert LocalSigner.from_file(path, password=b"pw").key_id == signer.key_id
    assert "BEGIN" not in repr(signer)


def test_other_curves_are_refused() -> None:
    with pytest.raises(ValueError, match="P-384"):
        LocalSigner(ec.generate_private_key(ec.SECP256R1()))
    p256 = ec.generate_private_key(ec.SECP256R1())
    sig = p256.sign(b"m", ec.ECDSA(hashes.SHA384()))
    from cryptography.hazmat.primitives import serialization

    der = p256.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert not verify_signature(der, b"m", sig)


def test_kms_signer_sends_only_the_digest_and_verifies() -> None:
    hsm_key = LocalSigner.generate()
    client = _kms_client()
    message = b"x" * 100_000  # far beyond KMS's 4 KiB RAW limit
    with Stubber(client) as stubber:
        stubber.add_response("get_public_key", _public_key_response(hsm_key), {"KeyId": ARN})
        _expect_sign(stubber, hsm_key, hashlib.sha384(message).digest())
        signer = KmsSigner(client, ARN)
        assert isinstance(signer, Signer)
        assert signer.key_id == hsm_key.key_id
        signature = signer.sign(message)
        stubber.assert_no_pending_responses()
    assert verify_signature(signer.public_key_der, message, signature)


def test_kms_signer_rejects_a_signature_that_does_not_verify() -> None:
    hsm_key = LocalSigner.generate()
    client = _kms_client()
    digest = hashlib.sha384(b"m").digest()
    # What an emulator that re-hashes DIGEST input would return:
    wrong = hsm_key.sign(digest)
    with Stubber(client) as stubber:
        stubber.add_response("get_public_key", _public_key_response(hsm_key), {"KeyId": ARN})
        _expect_sign(stubber, hsm_key, digest, signature=wrong)
        with pytest.raises(SigningError, match="does not verify"):
            KmsSigner(client, ARN).sign(b"m")


@pytest.mark.parametrize("spec", ["ECC_NIST_P256", "RSA_3072"])
def test_kms_signer_rejects_other_key_specs(spec: str) -> None:
    client = _kms_client()
    with Stubber(client) as stubber:
        stubber.add_response("get_public_key", _public_key_response(LocalSigner.generate(), spec), {"KeyId": ARN})
        with pytest.raises(SigningError, match="spec"):
            _ = KmsSigner(client, ARN).key_id


def test_bundle_countersigned_through_kms(worker_key, keyring: KeyRing) -> None:
    hsm_key = LocalSigner.generate()
    keyring.add_public_key(hsm_key.public_key_der, T0, roles=["ledger"])
    bundle = build_bundle(job_id="j", tenant_id="t", items=CONTENTS, created_at=T0 + timedelta(hours=1))
    bundle = sign_bundle(bundle, worker_key, "worker", T0 + timedelta(hours=2))
    when = T0 + timedelta(hours=3)
    expected = signature_message(bundle, key_id=hsm_key.key_id, signer="ledger", signed_at="2026-01-01T03:00:00Z")
    client = _kms_client()
    with Stubber(client) as stubber:
        stubber.add_response("get_public_key", _public_key_response(hsm_key), {"KeyId": ARN})
        _expect_sign(stubber, hsm_key, hashlib.sha384(expected).digest())
        bundle = sign_bundle(bundle, KmsSigner(client, ARN), "ledger", when)
    report = verify_bundle(bundle, keyring)
    assert report.is_valid, report.failures


def test_sign_digest_is_prehashed_sha384() -> None:
    signer = LocalSigner.generate()
    digest = hashlib.sha384(b"abc").digest()
    signature = signer.sign_digest(digest)
    assert verify_signature(signer.public_key_der, b"abc", signature)
    with pytest.raises(ValueError):
        signer.sign_digest(digest[:32])
    key = ec.generate_private_key(ec.SECP384R1())
    key.public_key().verify(LocalSigner(key).sign_digest(digest), digest, ec.ECDSA(Prehashed(hashes.SHA384())))


def test_keyring_json_round_trip_and_validation(worker_key, ledger_key) -> None:
    ring = KeyRing()
    ring.add_public_key(worker_key.public_key_der, T0, T0 + timedelta(days=90), "retired", roles=["worker"])
    ring.add_public_key(ledger_key.public_key_der, T0)
    data = ring.to_dict()
    assert data["keys"][0]["public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    again = KeyRing.from_json(ring.to_json())
    assert {k.key_id for k in again} == {worker_key.key_id, ledger_key.key_id}
    assert again.get(worker_key.key_id) == ring.get(worker_key.key_id)

    data["keys"][0]["key_id"] = "0" * 64
    with pytest.raises(KeyRingError, match="does not match"):
        KeyRing.from_dict(data)
    data = ring.to_dict()
    data["keys"].append(data["keys"][0])
    with pytest.raises(KeyRingError, match="duplicate"):
        KeyRing.from_dict(data)
    with pytest.raises(KeyRingError):
        TrustedKey(worker_key.public_key_der, T0, None, "retired")
    with pytest.raises(KeyRingError):
        TrustedKey(worker_key.public_key_der, datetime(2026, 1, 1))
    with pytest.raises(KeyRingError):
        TrustedKey(b"junk", T0)
    with pytest.raises(KeyRingError):
        KeyRing.from_json("{not json")


def test_keyring_window_is_inclusive(worker_key) -> None:
    ring = KeyRing()
    end = T0 + timedelta(days=1)
    ring.add_public_key(worker_key.public_key_der, T0, end)
    sig = worker_key.sign(b"m")
    assert ring.verify(worker_key.key_id, b"m", sig, T0)
    assert ring.verify(worker_key.key_id, b"m", sig, end)
    assert not ring.verify(worker_key.key_id, b"m", sig, end + timedelta(microseconds=1))
    assert not ring.verify(worker_key.key_id, b"m", sig, T0 - timedelta(microseconds=1))
    assert not ring.verify("ab" * 32, b"m", sig, T0)
    assert ring.check(worker_key.key_id, b"m", sig, T0, role="ledger") is None  # roles unset: any role
    with pytest.raises(ValueError):
        ring.verify(worker_key.key_id, b"m", sig, datetime(2026, 1, 1))
    assert ring.verify(worker_key.key_id, b"m", sig, datetime(2026, 1, 1, 5, tzinfo=UTC))
