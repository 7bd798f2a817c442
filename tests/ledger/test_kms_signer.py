"""The ledger key in AWS KMS: a local fake answers KMS's API at the network edge (botocore's
before-call hook) with signatures from a real P-384 key, so everything above it is the real path."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import boto3
import pytest

from ledger import keys
from ledger.crypto.bundle import EvidenceBundle
from ledger.crypto.signing import KmsSigner, LocalSigner
from ledger.models import SigningKey
from tests.factories import job_body

pytestmark = pytest.mark.django_db(transaction=True)

ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def fake_kms(hsm: LocalSigner, calls: list[str]):
    def answer(model, params, **kwargs):
        calls.append(model.name)
        body = json.loads(params["body"] or b"{}")
        if model.name == "GetPublicKey":
            parsed = {"KeyId": ARN, "PublicKey": hsm.public_key_der, "KeySpec": "ECC_NIST_P384",
                      "KeyUsage": "SIGN_VERIFY", "SigningAlgorithms": ["ECDSA_SHA_384"]}
        elif model.name == "Sign":
            assert body["MessageType"] == "DIGEST" and body["SigningAlgorithm"] == "ECDSA_SHA_384"
            parsed = {"KeyId": ARN, "SigningAlgorithm": "ECDSA_SHA_384",
                      "Signature": hsm.sign_digest(base64.b64decode(body["Message"]))}
        else:  # pragma: no cover - anything else would be a bug
            raise AssertionError(f"unexpected KMS call {model.name}")
        return SimpleNamespace(status_code=200, headers={}), parsed

    def client(service, *args, **kwargs):
        assert service == "kms"
        real = real_client("kms", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
        real.meta.events.register("before-call.kms.*", answer)
        return real

    real_client = boto3.client
    return client


def test_the_ledger_signs_through_kms_and_bundles_verify(alice, monkeypatch):
    hsm, calls = LocalSigner.generate(), []
    monkeypatch.setenv("QCOS_LEDGER_KMS_KEY_ARN", ARN)
    monkeypatch.setattr(boto3, "client", fake_kms(hsm, calls))
    keys._cache.clear()
    try:
        assert isinstance(keys.signer_for("ledger"), KmsSigner)
        job_id = alice.client.post("/api/v2.1/jobs", job_body(), format="json").json()["job_id"]
        bundle = alice.client.get(f"/api/v2.1/jobs/{job_id}/evidence").json()
    finally:
        keys._cache.clear()
    ledger_signature = next(s for s in bundle["signatures"] if s["signer"] == "ledger")
    assert ledger_signature["key_id"] == hsm.key_id
    stored = SigningKey.objects.get(key_id=hsm.key_id)
    assert (stored.backend, stored.kms_key_arn, stored.role) == ("kms", ARN, "ledger")
    assert "Sign" in calls and "GetPublicKey" in calls
    report = EvidenceBundle(bundle).verify(keyring=keys.keyring())
    assert report.is_valid, report.failures
