"""``qcos ledger get-evidence / verify / keys / checkpoint`` in-process against the fake API."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime

import pytest
from evidence_fixtures import (  # noqa: F401  (fixtures)
    LOG_ORIGIN,
    REGISTERED_JOB,
    UNATTACHED_JOB,
    UNREGISTERED_JOB,
    evidence_api,
    evidence_env,
)

from ledger.crypto import KeyRing, LocalSigner
from qcos_sdk import EvidenceBundle
from qcos_sdk.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def bundle_file(evidence_env, tmp_path, capsys):
    path = tmp_path / "evidence.json"
    code, _, err = run(capsys, "ledger", "get-evidence", REGISTERED_JOB, "--output", str(path))
    assert code == 0, err
    return path


@pytest.fixture()
def keys_file(evidence_env, tmp_path, capsys):
    path = tmp_path / "keys.json"
    code, out, err = run(capsys, "ledger", "keys", "--output", str(path))
    assert code == 0, err
    assert f"saved 3 public keys to {path}" in out
    return path


def test_get_evidence_json(evidence_env, tmp_path, capsys):
    path = tmp_path / "out.json"
    code, out, err = run(capsys, "ledger", "get-evidence", REGISTERED_JOB, "--output", str(path))
    assert code == 0, err
    assert "bundle-job-0001" in out and str(path) in out
    assert EvidenceBundle.load(path).to_dict() == evidence_env.bundles[REGISTERED_JOB]


def test_get_evidence_zip(evidence_env, tmp_path, capsys):
    path = tmp_path / "out.zip"
    code, out, err = run(capsys, "ledger", "get-evidence", REGISTERED_JOB, "-o", str(path))
    assert code == 0, err
    assert "bundle-job-0001" in out and str(path) in out
    assert zipfile.is_zipfile(path)
    assert EvidenceBundle.load(path).to_dict() == evidence_env.bundles[REGISTERED_JOB]


def test_get_evidence_errors_exit_2(evidence_env, tmp_path, capsys):
    code, _, err = run(capsys, "ledger", "get-evidence", "job-9999", "-o", str(tmp_path / "x.json"))
    assert code == 2 and "NOT_FOUND" in err
    code, _, err = run(capsys, "ledger", "get-evidence", REGISTERED_JOB, "-o", str(tmp_path / "no" / "x.json"))
    assert code == 2 and "WRITE_FAILED" in err


def test_verify_good_bundle_offline(bundle_file, tmp_path, capsys):
    report_path = tmp_path / "report.json"
    code, out, err = run(capsys, "ledger", "verify", "--bundle", str(bundle_file), "--output", str(report_path))
    assert code == 0, out + err
    assert "result: VALID" in out and "NOT PINNED" in out and "warning: keys not pinned" in out
    report = json.loads(report_path.read_text())
    assert report["is_valid"] is True and report["failures"] == []
    assert report["bundle_id"] == "bundle-job-0001" and report["job_id"] == REGISTERED_JOB
    assert report["hashes_valid"] and report["signatures_valid"] and report["chain_valid"]
    assert report["registry_valid"] is True and report["registry_log_valid"] is None
    assert report["keys_pinned"] is False and report["warnings"] == ["keys not pinned"]
    assert [i["type"] for i in report["items"]][:3] == [
        "circuit_submission", "execution_configuration", "execution_result"]
    assert all(i["valid"] for i in report["items"])
    assert [s["signer"] for s in report["signatures"]] == ["worker", "ledger"]
    assert report["registry"] == {"leaf_index": 12, "tree_size": 14}


def test_verify_zip_with_pinned_keys(evidence_env, keys_file, tmp_path, capsys):
    zipped = tmp_path / "evidence.zip"
    assert run(capsys, "ledger", "get-evidence", REGISTERED_JOB, "-o", str(zipped))[0] == 0
    report_path = tmp_path / "report.json"
    code, out, err = run(capsys, "ledger", "verify", "--bundle", str(zipped), "--keys", str(keys_file),
                         "--log-origin", LOG_ORIGIN, "--output", str(report_path))
    assert code == 0, out + err
    report = json.loads(report_path.read_text())
    assert report["keys_pinned"] is True and report["warnings"] == []
    assert report["keys"]["source"] == f"file {keys_file}"
    assert f"pinned (file {keys_file})" in out


def test_verify_tampered_item_exits_1_and_names_it(bundle_file, tmp_path, capsys):
    data = json.loads(bundle_file.read_text())
    data["items"][2]["content"]["counts"]["11"] = 1000
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(data))
    report_path = tmp_path / "report.json"
    code, out, _ = run(capsys, "ledger", "verify", "--bundle", str(tampered), "--output", str(report_path))
    assert code == 1
    assert "result: INVALID" in out and "item=execution_result" in out
    report = json.loads(report_path.read_text())
    assert report["is_valid"] is False and report["hashes_valid"] is False
    hash_failures = [f for f in report["failures"] if f["check"] == "item_hash"]
    assert [f["item"] for f in hash_failures] == ["execution_result"]
    assert [i["type"] for i in report["items"] if not i["valid"]] == ["execution_result"]
    assert report["registry_valid"] is False  # the registered leaf no longer matches either


def test_verify_with_wrong_pinned_keys_exits_1(bundle_file, tmp_path, capsys):
    wrong = KeyRing()
    for role in ("worker", "ledger", "log"):
        wrong.add_public_key(LocalSigner.generate().public_key_der, datetime(2025, 1, 1, tzinfo=UTC), roles=[role])
    keys = tmp_path / "wrong-keys.json"
    keys.write_text(wrong.to_json())
    report_path = tmp_path / "report.json"
    code, out, _ = run(capsys, "ledger", "verify", "--bundle", str(bundle_file), "--keys", str(keys),
                       "--output", str(report_path))
    assert code == 1
    report = json.loads(report_path.read_text())
    assert report["signatures_valid"] is False and report["keys_pinned"] is True
    unknown = [f for f in report["failures"] if f["check"] == "signature"]
    assert {f["signer"] for f in unknown} == {"worker", "ledger"}
    assert all("unknown key" in f["message"] for f in unknown)
    assert not any(s["valid"] for s in report["signatures"])


def test_verify_against_the_registry(bundle_file, evidence_env, tmp_path, capsys):
    report_path = tmp_path / "report.json"
    code, out, err = run(capsys, "ledger", "verify", "--bundle", str(bundle_file), "--output", str(report_path),
                         "--registry", evidence_env.base_url)
    assert code == 0, out + err
    report = json.loads(report_path.read_text())
    assert report["is_valid"] is True and report["registry_log_valid"] is True
    assert report["keys_pinned"] is True and report["keys"]["source"].endswith("/ledger/keys")
    assert any("not pinned in advance" in w for w in report["warnings"])
    log = report["registry_log"]
    assert log["method"] == "consistency" and log["checkpoint"]["size"] == 20 and log["failures"] == []
    paths = [r["path"] for r in evidence_env.requests]
    assert "/api/v2.1/ledger/keys" in paths and "/api/v2.1/registry/checkpoint" in paths
    assert "/api/v2.1/registry/proof/consistency?first=14&second=20" in paths
    assert "registry log    OK (consistency with checkpoint" in out


def test_verify_registry_default_url_and_pinned_keys(evidence_env, keys_file, tmp_path, capsys):
    path = tmp_path / "unattached.json"
    assert run(capsys, "ledger", "get-evidence", UNATTACHED_JOB, "-o", str(path))[0] == 0
    report_path = tmp_path / "report.json"
    # bare --registry: the server from $QCOS_BASE_URL; --keys wins over /ledger/keys
    code, out, err = run(capsys, "ledger", "verify", "--bundle", str(path), "--keys", str(keys_file),
                         "--registry", "--output", str(report_path))
    assert code == 0, out + err
    report = json.loads(report_path.read_text())
    assert report["registry_log"]["method"] == "inclusion" and report["registry_log"]["leaf_index"] == 14
    assert report["warnings"] == []
    assert "/api/v2.1/ledger/keys" not in [r["path"] for r in evidence_env.requests[-4:]]


def test_verify_registry_failures_exit_1(evidence_env, bundle_file, tmp_path, capsys):
    unregistered = tmp_path / "unregistered.json"
    assert run(capsys, "ledger", "get-evidence", UNREGISTERED_JOB, "-o", str(unregistered))[0] == 0
    report_path = tmp_path / "report.json"
    code, out, _ = run(capsys, "ledger", "verify", "--bundle", str(unregistered), "--registry",
                       "--output", str(report_path))
    assert code == 1
    report = json.loads(report_path.read_text())
    assert report["registry_valid"] is None and report["registry_log_valid"] is False
    assert report["failures"][0]["check"] == "registry_log"

    evidence_env.fork = True
    code, out, _ = run(capsys, "ledger", "verify", "--bundle", str(bundle_file), "--registry",
                       "--output", str(report_path))
    assert code == 1 and "consistency proof fails" in out
    assert json.loads(report_path.read_text())["registry_log_valid"] is False


def test_verify_require_registry(evidence_env, tmp_path, capsys):
    path = tmp_path / "unattached.json"
    assert run(capsys, "ledger", "get-evidence", UNATTACHED_JOB, "-o", str(path))[0] == 0
    assert run(capsys, "ledger", "verify", "--bundle", str(path))[0] == 0
    code, out, _ = run(capsys, "ledger", "verify", "--bundle", str(path), "--require-registry")
    assert code == 1 and "registry block required" in out


def test_verify_usage_io_and_api_errors_exit_2(bundle_file, evidence_env, tmp_path, capsys, monkeypatch):
    code, _, err = run(capsys, "ledger", "verify", "--bundle", str(tmp_path / "missing.json"))
    assert code == 2 and "BUNDLE_UNREADABLE" in err
    not_json = tmp_path / "garbage.json"
    not_json.write_text("{not json")
    assert run(capsys, "ledger", "verify", "--bundle", str(not_json))[0] == 2
    bad_keys = tmp_path / "bad-keys.json"
    bad_keys.write_text('{"keys": [{"public_key": "nope"}]}')
    code, _, err = run(capsys, "ledger", "verify", "--bundle", str(bundle_file), "--keys", str(bad_keys))
    assert code == 2 and "KEYS_INVALID" in err
    code, _, err = run(capsys, "ledger", "verify", "--bundle", str(bundle_file), "--keys", str(tmp_path / "nokeys"))
    assert code == 2 and "KEYS_UNREADABLE" in err
    code, _, err = run(capsys, "ledger", "verify", "--bundle", str(bundle_file), "--output",
                       str(tmp_path / "no-dir" / "report.json"))
    assert code == 2 and "WRITE_FAILED" in err
    assert run(capsys, "ledger", "verify")[0] == 2  # --bundle is required
    code, _, err = run(capsys, "ledger", "verify", "--bundle", str(bundle_file), "--registry",
                       "--api-key", "wrong-key")
    assert code == 2 and "UNAUTHENTICATED" in err
    monkeypatch.delenv("QCOS_API_KEY")
    code, _, err = run(capsys, "ledger", "verify", "--bundle", str(bundle_file), "--registry")
    assert code == 2 and "MISSING_API_KEY" in err


def test_keys_and_checkpoint_commands(evidence_env, capsys):
    code, out, _ = run(capsys, "ledger", "keys")
    assert code == 0 and len(KeyRing.from_json(out)) == 3
    code, out, _ = run(capsys, "ledger", "checkpoint")
    assert code == 0 and out.startswith(LOG_ORIGIN + "\n20\n") and "\u2014 " in out
