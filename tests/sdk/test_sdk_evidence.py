"""``client.ledger`` evidence, keys and registry against the fake API, with real signed bundles."""

from __future__ import annotations

import json
import zipfile

import pytest
from evidence_fixtures import (  # noqa: F401  (fixtures)
    API_KEY,
    LOG_ORIGIN,
    REGISTERED_JOB,
    UNATTACHED_JOB,
    UNREGISTERED_JOB,
    evidence_api,
    evidence_env,
)

import ledger.crypto
from ledger.crypto.note import verify_checkpoint
from qcos_sdk import (
    BundleVerification,
    EvidenceBundle,
    KeyRing,
    NotFoundError,
    QCOSClient,
    RegistryCheck,
    VerificationReport,
)


@pytest.fixture()
def client(evidence_api):
    with QCOSClient(api_key=API_KEY, base_url=evidence_api.base_url, max_retries=0) as c:
        yield c


def test_seed_snippet_runs_as_written(evidence_env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    client = QCOSClient()
    result = client.execute('OPENQASM 2.0;\nqreg q[2];\n', shots=100)
    assert result.job_id == REGISTERED_JOB

    bundle = client.ledger.get_evidence_bundle(result.job_id)
    bundle.save("experiment-evidence.json")
    bundle.save("evidence.json")
    verification = EvidenceBundle.load("evidence.json").verify()
    print(verification.is_valid, verification.signatures_valid, verification.hashes_valid, verification.chain_valid)
    assert (verification.is_valid, verification.signatures_valid, verification.hashes_valid,
            verification.chain_valid) == (True, True, True, True)

    verification = client.ledger.verify_bundle(bundle_id="bundle-job-0001", check_registry=True)
    print(verification.registered, verification.registration_date, verification.certificate_id)
    assert verification.registered is True
    assert verification.registration_date == "2026-01-01T01:03:00Z"
    assert verification.certificate_id == "cert-bundle-job-0001"


def test_get_evidence_bundle_is_the_crypto_bundle(client, evidence_api):
    bundle = client.ledger.get_evidence_bundle(REGISTERED_JOB)
    assert isinstance(bundle, EvidenceBundle)
    assert isinstance(bundle, ledger.crypto.EvidenceBundle)
    assert bundle.bundle_id == "bundle-job-0001" and bundle.job_id == REGISTERED_JOB
    assert bundle.to_dict() == evidence_api.bundles[REGISTERED_JOB]
    request = evidence_api.requests[-1]
    assert request["path"] == "/api/v2.1/jobs/job-0001/evidence"
    assert request["headers"]["Authorization"] == f"Bearer {API_KEY}"
    report = bundle.verify()
    assert isinstance(report, VerificationReport)
    assert report.is_valid and report.registry_valid is True
    assert report.warnings == ["keys not pinned"]


def test_save_json_and_zip_round_trip(client, evidence_api, tmp_path):
    bundle = client.ledger.get_evidence_bundle(REGISTERED_JOB)
    as_json, as_zip = tmp_path / "evidence.json", tmp_path / "evidence.zip"
    bundle.save(as_json)
    bundle.save(str(as_zip))
    assert json.loads(as_json.read_text(encoding="utf-8")) == bundle.to_dict()
    assert zipfile.is_zipfile(as_zip)
    names = set(zipfile.ZipFile(as_zip).namelist())
    assert {"manifest.json", "circuit.qasm", "results.json", "signatures/backend.sig",
            "signatures/ledger.sig"} <= names
    ring = client.ledger.public_keys()
    for path in (as_json, as_zip):
        loaded = EvidenceBundle.load(path)
        assert loaded.to_dict() == bundle.to_dict()
        report = loaded.verify(ring, require_registry=True, log_origin=LOG_ORIGIN)
        assert report.is_valid and report.keys_pinned and report.warnings == [], report.failures


def test_download_evidence_keeps_the_servers_zip(client, evidence_api, tmp_path):
    target = tmp_path / "server.zip"
    bundle = client.ledger.download_evidence(REGISTERED_JOB, target)
    assert evidence_api.requests[-1]["path"] == "/api/v2.1/jobs/job-0001/evidence?format=zip"
    assert evidence_api.requests[-1]["headers"]["Accept"].startswith("application/zip")
    local = tmp_path / "local.zip"
    bundle.save(local)
    assert target.read_bytes() == local.read_bytes()  # deterministic layout, same bytes
    assert EvidenceBundle.load(target).verify().is_valid
    json_target = tmp_path / "server.json"
    client.ledger.download_evidence(REGISTERED_JOB, json_target)
    assert EvidenceBundle.load(json_target).to_dict() == bundle.to_dict()


def test_missing_bundle_is_not_found(client):
    with pytest.raises(NotFoundError) as info:
        client.ledger.get_evidence_bundle("job-9999")
    assert info.value.code == "NOT_FOUND" and info.value.status_code == 404


def test_strict_parsing_rejects_duplicate_keys(client, evidence_api, monkeypatch):
    from qcos_sdk import QCOSError

    class Response:
        ok, status_code, content = True, 200, b'{"bundle_id": "a", "bundle_id": "b"}'

    monkeypatch.setattr(client.ledger, "_raw", lambda *a, **k: Response())
    with pytest.raises(QCOSError) as info:
        client.ledger.get_evidence_bundle(REGISTERED_JOB)
    assert info.value.code == "INVALID_RESPONSE" and "duplicate" in info.value.message


def test_public_keys_and_checkpoint(client, evidence_api):
    ring = client.ledger.public_keys()
    assert isinstance(ring, KeyRing) and len(ring) == 3
    assert evidence_api.log.key_id in ring
    text = client.ledger.checkpoint()
    assert isinstance(text, str) and "\u2014 " + LOG_ORIGIN in text  # UTF-8 em dash survived
    checkpoint = verify_checkpoint(text, ring, origin=LOG_ORIGIN)
    assert checkpoint.size == 20
    assert evidence_api.requests[-1]["headers"]["Accept"].startswith("text/plain")


def test_verify_bundle_by_id_and_by_value(client, evidence_api):
    by_id = client.ledger.verify_bundle(bundle_id="bundle-job-0001", check_registry=True)
    assert isinstance(by_id, BundleVerification)
    assert by_id.is_valid and by_id.registered and by_id.leaf_index == 12
    assert evidence_api.verify_bodies[-1] == {"bundle_id": "bundle-job-0001", "check_registry": True}

    bundle = client.ledger.get_evidence_bundle(UNREGISTERED_JOB)
    by_value = client.ledger.verify_bundle(bundle=bundle, check_registry=True)
    assert evidence_api.verify_bodies[-1]["bundle"] == bundle.to_dict()
    assert by_value.is_valid and by_value.registered is False
    assert by_value.registration_date is None and by_value.certificate_id is None

    with pytest.raises(ValueError):
        client.ledger.verify_bundle()
    with pytest.raises(ValueError):
        client.ledger.verify_bundle(bundle_id="x", bundle=bundle)


def test_proof_endpoints(client):
    proof = client.ledger.inclusion_proof(12, 20)
    assert proof.leaf_index == 12 and proof.tree_size == 20 and len(proof.root) == 64
    assert client.ledger.consistency_proof(14, 20).consistency_proof
    leaf = client.ledger.registry_leaf("bundle-job-0001")
    assert leaf.leaf_index == 12 and leaf.registered_at
    assert client.ledger.registry_leaf("bundle-nope").leaf_index is None


def test_check_registry_consistency_from_the_bundles_checkpoint(client, evidence_api):
    bundle = client.ledger.get_evidence_bundle(REGISTERED_JOB)
    check = client.ledger.check_registry(bundle, client.ledger.public_keys())
    assert isinstance(check, RegistryCheck)
    assert check.valid, check.failures
    assert check.method == "consistency" and check.leaf_index == 12 and check.tree_size == 14
    assert check.checkpoint["size"] == 20 and check.checkpoint["origin"] == LOG_ORIGIN
    assert check.checkpoint["signed_by"] == [evidence_api.log.key_id]


def test_check_registry_inclusion_when_the_bundle_has_no_registry_block(client):
    bundle = client.ledger.get_evidence_bundle(UNATTACHED_JOB)
    assert "registry" not in bundle.to_dict()
    check = client.ledger.check_registry(bundle, client.ledger.public_keys())
    assert check.valid, check.failures
    assert check.method == "inclusion" and check.leaf_index == 14 and check.tree_size == 20


def test_check_registry_detects_a_forked_log(client, evidence_api):
    bundle = client.ledger.get_evidence_bundle(REGISTERED_JOB)
    ring = client.ledger.public_keys()
    evidence_api.fork = True
    check = client.ledger.check_registry(bundle, ring)
    assert not check.valid
    assert check.failures[0]["check"] == "registry_log"
    assert "consistency proof fails" in check.failures[0]["message"]


def test_check_registry_unregistered_untrusted_and_tampered(client, evidence_api):
    ring = client.ledger.public_keys()
    unregistered = client.ledger.check_registry(client.ledger.get_evidence_bundle(UNREGISTERED_JOB), ring)
    assert not unregistered.valid and "not registered" in unregistered.failures[0]["message"]

    untrusted = client.ledger.check_registry(client.ledger.get_evidence_bundle(REGISTERED_JOB), KeyRing())
    assert not untrusted.valid and untrusted.failures[0]["field"] == "checkpoint"

    data = client.ledger.get_evidence_bundle(UNATTACHED_JOB).to_dict()
    data["items"][2]["content"]["counts"]["11"] = 1
    tampered = client.ledger.check_registry(data, ring)
    assert not tampered.valid
    assert {f["field"] for f in tampered.failures} == {"leaf_hash", "inclusion_proof"}
