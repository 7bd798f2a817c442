"""Saving and loading bundles: JSON file, the seed's directory layout, zip archives."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from ledger.crypto.bundle import BundleFormatError, EvidenceBundle
from ledger.crypto.keyring import KeyRing

SEED_FILES = {
    "manifest.json",
    "provenance.json",
    "circuit.qasm",
    "config.json",
    "results.json",
    "telemetry.json",
    "calibration.json",
    "signatures/ledger.sig",
    "signatures/backend.sig",
}


@pytest.fixture
def full_bundle(registered_bundle: dict, keyring: KeyRing) -> dict:
    return {**registered_bundle, "public_keys": keyring.to_dict()}


def test_json_round_trip(full_bundle: dict, keyring: KeyRing, tmp_path: Path) -> None:
    path = tmp_path / "evidence.json"
    EvidenceBundle(full_bundle).save(path)
    loaded = EvidenceBundle.load(path)
    assert loaded.to_dict() == full_bundle
    assert loaded.verify(keyring, require_registry=True).is_valid
    assert EvidenceBundle.load(path.read_text()).to_dict() == full_bundle


def test_zip_round_trip(full_bundle: dict, keyring: KeyRing, tmp_path: Path) -> None:
    path = tmp_path / "evidence.zip"
    EvidenceBundle(full_bundle).to_zip(path)
    names = set(zipfile.ZipFile(path).namelist())
    assert names >= SEED_FILES and {"audit_trail.json", "public_keys.json"} <= names
    with zipfile.ZipFile(path) as archive:
        qasm = archive.read("circuit.qasm").decode()
    assert qasm == full_bundle["items"][0]["content"]["qasm"]
    loaded = EvidenceBundle.load(path)
    assert loaded.to_dict() == full_bundle
    report = loaded.verify(keyring, require_registry=True)
    assert report.is_valid and report.registry_valid


def test_zip_is_deterministic(full_bundle: dict, tmp_path: Path) -> None:
    EvidenceBundle(full_bundle).to_zip(tmp_path / "a.zip")
    EvidenceBundle(full_bundle).to_zip(tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_directory_round_trip_and_tampered_file(full_bundle: dict, keyring: KeyRing, tmp_path: Path) -> None:
    folder = tmp_path / "evidence-bundle"
    EvidenceBundle(full_bundle).export_dir(folder)
    assert EvidenceBundle.load(folder).to_dict() == full_bundle
    results = json.loads((folder / "results.json").read_text())
    results["counts"]["11"] += 1
    (folder / "results.json").write_text(json.dumps(results))
    report = EvidenceBundle.load(folder).verify(keyring)
    assert not report.is_valid
    assert [f["item"] for f in report.failures if f["check"] == "item_hash"] == ["execution_result"]


def test_zip_with_a_top_level_folder(full_bundle: dict, keyring: KeyRing, tmp_path: Path) -> None:
    folder = tmp_path / "src"
    EvidenceBundle(full_bundle).export_dir(folder)
    path = tmp_path / "nested.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, "evidence-bundle/" + file.relative_to(folder).as_posix())
    assert EvidenceBundle.load(path).verify(keyring).is_valid


def test_hostile_archives_are_refused(full_bundle: dict, tmp_path: Path) -> None:
    folder = tmp_path / "d"
    EvidenceBundle(full_bundle).export_dir(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["items"][1]["file"] = "../../etc/passwd"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleFormatError):
        EvidenceBundle.load(folder)
    manifest["items"][1]["file"] = "config.json"
    manifest["signatures"] = ["/etc/shadow"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleFormatError):
        EvidenceBundle.load(folder)


def test_strict_json(tmp_path: Path) -> None:
    with pytest.raises(BundleFormatError, match="duplicate"):
        EvidenceBundle.load('{"bundle_id": "a", "bundle_id": "b"}')
    with pytest.raises(BundleFormatError):
        EvidenceBundle.load('{"x": NaN}')
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(BundleFormatError):
        EvidenceBundle.load(tmp_path / "bad.json")
    with pytest.raises(BundleFormatError):
        EvidenceBundle.load(tmp_path / "missing.json")


def test_circuit_without_qasm_field_round_trips(signed_bundle: dict, tmp_path: Path) -> None:
    signed_bundle["items"][0]["content"] = ["not", "a", "dict"]
    EvidenceBundle(signed_bundle).to_zip(tmp_path / "x.zip")
    assert "circuit_submission.json" in zipfile.ZipFile(tmp_path / "x.zip").namelist()
    assert EvidenceBundle.load(tmp_path / "x.zip").to_dict() == signed_bundle
