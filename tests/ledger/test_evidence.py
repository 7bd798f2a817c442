"""Provenance, signed evidence bundles, key rotation and the transparency registry, end to end."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.management import call_command

from ledger.crypto import merkle
from ledger.crypto.bundle import EvidenceBundle, build_bundle, sign_bundle
from ledger.crypto.keyring import KeyRing
from ledger.crypto.note import verify_checkpoint
from ledger.crypto.signing import LocalSigner
from ledger.models import Provenance, SigningKey
from ledger.registry import registry_sequence
from tests.factories import job_body

pytestmark = pytest.mark.django_db(transaction=True)


def completed_job(actor) -> str:
    response = actor.client.post("/api/v2.1/jobs", job_body(), format="json")
    assert response.status_code == 202
    return response.json()["job_id"]


def evidence(actor, job_id: str) -> dict:
    response = actor.client.get(f"/api/v2.1/jobs/{job_id}/evidence")
    assert response.status_code == 200, response.content
    return response.json()


def pinned(actor) -> KeyRing:
    return KeyRing.from_dict(actor.client.get("/api/v2.1/ledger/keys").json())


def test_a_completed_job_has_a_signed_bundle_that_verifies_against_the_published_keys(alice):
    job_id = completed_job(alice)
    bundle = evidence(alice, job_id)
    assert [item["type"] for item in bundle["items"]] == [
        "circuit_submission", "execution_configuration", "execution_result", "telemetry", "calibration",
        "provenance", "audit_trail",
    ]
    assert {s["signer"] for s in bundle["signatures"]} == {"worker", "ledger"}
    assert all(s["algorithm"] == "ECDSA-P384" for s in bundle["signatures"])
    report = EvidenceBundle(bundle).verify(keyring=pinned(alice))
    assert report.is_valid and report.signatures_valid and report.hashes_valid and report.chain_valid, report.failures
    items = {item["type"]: item["content"] for item in bundle["items"]}
    provenance = items["provenance"]
    assert provenance["job_id"] == job_id and provenance["circuit_hash"] == items["circuit_submission"]["circuit_hash"]
    assert provenance["config_hash"].startswith("sha256:") and provenance["result_hash"].startswith("sha256:")
    assert set(provenance["execution_environment"]) >= {"sdk_version", "backend_version", "calibration_id"}
    assert Provenance.objects.get(job_id=job_id).provenance_id == provenance["provenance_id"]
    trail = [entry["action"] for entry in items["audit_trail"]["entries"]]
    assert trail == ["JOB_SUBMITTED", "JOB_STARTED", "JOB_COMPLETED"]
    assert sum(items["execution_result"]["counts"].values()) == 1024


def test_tampering_with_the_downloaded_bundle_is_named(alice):
    bundle = evidence(alice, completed_job(alice))
    bundle["items"][2]["content"]["counts"] = {"00": 1024}
    report = EvidenceBundle(bundle).verify(keyring=pinned(alice))
    assert not report.is_valid and not report.hashes_valid
    assert any(f.get("item") == "execution_result" for f in report.failures)


def test_the_zip_download_has_the_seed_layout_and_verifies(alice, tmp_path):
    job_id = completed_job(alice)
    response = alice.client.get(f"/api/v2.1/jobs/{job_id}/evidence?format=zip")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    names = set(zipfile.ZipFile(io.BytesIO(response.content)).namelist())
    assert {"manifest.json", "provenance.json", "circuit.qasm", "config.json", "results.json", "telemetry.json",
            "calibration.json"} <= {name.rsplit("/", 1)[-1] for name in names}
    assert {"ledger.sig", "backend.sig"} <= {name.rsplit("/", 1)[-1] for name in names if "signatures/" in name}
    path = tmp_path / "evidence.zip"
    path.write_bytes(response.content)
    assert EvidenceBundle.load(path).verify(keyring=pinned(alice)).is_valid


def test_registration_adds_an_inclusion_proof_and_a_signed_checkpoint(alice):
    job_id = completed_job(alice)
    assert "registry" not in evidence(alice, job_id)  # not sequenced yet
    verify = alice.client.post("/api/v2.1/ledger/bundles/verify",
                               {"bundle_id": evidence(alice, job_id)["bundle_id"], "check_registry": True}, format="json")
    assert verify.json()["registered"] is False
    second = completed_job(alice)
    checkpoint = registry_sequence()
    assert checkpoint.tree_size == 2
    bundle = evidence(alice, job_id)
    assert bundle["registry"]["tree_size"] == 2
    report = EvidenceBundle(bundle).verify(keyring=pinned(alice), require_registry=True)
    assert report.is_valid and report.registry_valid, report.failures
    answer = alice.client.post("/api/v2.1/ledger/bundles/verify",
                               {"bundle_id": bundle["bundle_id"], "check_registry": True}, format="json").json()
    assert answer["is_valid"] and answer["registered"] and answer["certificate_id"].startswith("cert-")
    assert answer["registration_date"] and answer["leaf_index"] in (0, 1)
    # The registry's own proofs check out against its signed checkpoint.
    signed = verify_checkpoint(alice.client.get("/api/v2.1/registry/checkpoint").content.decode(), pinned(alice))
    leaf = alice.client.get(f"/api/v2.1/registry/leaves/{evidence(alice, second)['bundle_id']}").json()
    proof = alice.client.get(f"/api/v2.1/registry/proof/inclusion?leaf_index={leaf['leaf_index']}&tree_size=2").json()
    assert merkle.verify_inclusion(bytes.fromhex(leaf["leaf_hash"]), leaf["leaf_index"], 2,
                                   [bytes.fromhex(h) for h in proof["inclusion_proof"]], signed.root)
    completed_job(alice)
    registry_sequence()
    newer = verify_checkpoint(alice.client.get("/api/v2.1/registry/checkpoint").content.decode(), pinned(alice))
    consistency = alice.client.get("/api/v2.1/registry/proof/consistency?first=2&second=3").json()
    assert merkle.verify_consistency(2, 3, signed.root, newer.root,
                                     [bytes.fromhex(h) for h in consistency["consistency_proof"]])
    bad = alice.client.get("/api/v2.1/registry/proof/inclusion?leaf_index=5&tree_size=3")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "VALIDATION_ERROR"


def test_a_bundle_signed_by_a_retired_key_still_verifies_and_an_unknown_key_fails(alice):
    before = evidence(alice, completed_job(alice))
    call_command("rotate_signing_key", "--role", "ledger")
    after = evidence(alice, completed_job(alice))
    ring = pinned(alice)
    ledger_keys = SigningKey.objects.filter(role="ledger")
    assert sorted(ledger_keys.values_list("status", flat=True)) == ["active", "retired"]
    assert {s["key_id"] for s in before["signatures"]} != {s["key_id"] for s in after["signatures"]}
    assert EvidenceBundle(before).verify(keyring=ring).is_valid
    assert EvidenceBundle(after).verify(keyring=ring).is_valid
    rogue = LocalSigner.generate()
    unsigned = build_bundle(job_id="job-x", tenant_id="research-alpha",
                            items={i["type"]: i["content"] for i in after["items"]})
    forged = sign_bundle(sign_bundle(unsigned, rogue, "worker"), rogue, "ledger")
    report = EvidenceBundle(forged).verify(keyring=ring)
    assert not report.is_valid and not report.signatures_valid


def test_the_verify_endpoint_checks_a_posted_bundle(alice):
    bundle = evidence(alice, completed_job(alice))
    good = alice.client.post("/api/v2.1/ledger/bundles/verify", {"bundle": bundle}, format="json").json()
    assert good["is_valid"] and good["keys_pinned"]
    bundle["merkle_root"] = "0" * 64
    bad = alice.client.post("/api/v2.1/ledger/bundles/verify", {"bundle": bundle}, format="json").json()
    assert not bad["is_valid"] and bad["failures"]
    neither = alice.client.post("/api/v2.1/ledger/bundles/verify", {}, format="json")
    assert neither.status_code == 400


def test_a_rewritten_audit_history_is_caught_by_the_signed_checkpoint(alice):
    from django.db import connection

    from ledger.audit import GENESIS, audit_sequence, audit_verify, chain_hash

    completed_job(alice)
    audit_sequence(checkpoint=True)
    if connection.vendor != "postgresql":
        pytest.skip("needs triggers to disable")
    # An owner rewrites entry 2 and recomputes every later hash, so the chain itself is consistent.
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE ledger_auditentry DISABLE TRIGGER USER")
        cursor.execute("SELECT id, seq, payload FROM ledger_auditentry ORDER BY seq")
        rows = cursor.fetchall()
        prev = GENESIS
        for row_id, seq, payload in rows:
            if seq == 2:
                payload = payload.replace("SUCCESS", "FAILURE")
            entry_hash = chain_hash(prev, payload)
            cursor.execute("UPDATE ledger_auditentry SET payload=%s, prev_hash=%s, entry_hash=%s, outcome="
                           "CASE WHEN seq=2 THEN 'FAILURE' ELSE outcome END WHERE id=%s", [payload, prev, entry_hash, row_id])
            prev = entry_hash
        cursor.execute("ALTER TABLE ledger_auditentry ENABLE TRIGGER USER")
    report = audit_verify()
    assert not report.ok and "checkpoint" in report.first_bad["problem"]


def test_embedded_mode_registers_each_bundle_as_its_job_completes(alice, settings):
    settings.QCOS = {**settings.QCOS, "SEQUENCE_INLINE": True}
    bundle = evidence(alice, completed_job(alice))
    assert bundle["registry"]["tree_size"] >= 1
    assert EvidenceBundle(bundle).verify(keyring=pinned(alice), require_registry=True).is_valid


def test_ledger_enabled_false_still_audits_and_signs_and_records_the_request(alice):
    """docs/architecture.md, Decisions: a submitter cannot opt out of the ledger; what they asked for is kept."""
    from ledger.models import AuditEntry

    body = job_body()
    body["ledger"]["enabled"] = False
    job_id = alice.client.post("/api/v2.1/jobs", body, format="json").json()["job_id"]
    assert alice.client.get(f"/api/v2.1/jobs/{job_id}").json()["ledger_enabled"] is False
    bundle = evidence(alice, job_id)
    assert EvidenceBundle(bundle).verify(keyring=pinned(alice)).is_valid
    config = next(item["content"] for item in bundle["items"] if item["type"] == "execution_configuration")
    assert config["ledger_enabled"] is False
    assert set(AuditEntry.objects.filter(resource_id=job_id).values_list("action", flat=True)) >= {
        "JOB_SUBMITTED", "JOB_COMPLETED"}
