"""Evidence bundle verification: a real signed bundle, then one tampering at a time; each
must fail and the report must name what failed."""

from __future__ import annotations

import base64
import copy
from datetime import timedelta
from typing import Any

import pytest

from ledger.crypto.bundle import ITEM_TYPES, EvidenceBundle, build_bundle, sign_bundle
from ledger.crypto.keyring import KeyRing
from ledger.crypto.signing import LocalSigner
from ledger.crypto.verify import KEYS_NOT_PINNED, verify_bundle

from .conftest import CONTENTS, LOG_ORIGIN, T0


def _mutate(value: Any) -> Any:
    """Change one character / digit of the first scalar found in a JSON value."""
    if isinstance(value, dict):
        key = sorted(value)[0]
        return {**value, key: _mutate(value[key])}
    if isinstance(value, list):
        return [_mutate(value[0]), *value[1:]]
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return ("X" if value[:1] != "X" else "Y") + value[1:]
    return 0


def _flip_hex(text: str, position: int = -1) -> str:
    chars = list(text)
    chars[position] = "0" if chars[position] != "0" else "1"
    return "".join(chars)


def _where(report, check: str) -> list[dict]:
    return [f for f in report.failures if f["check"] == check]


def test_signed_bundle_verifies(signed_bundle: dict, keyring: KeyRing) -> None:
    report = EvidenceBundle(signed_bundle).verify(keyring)
    assert report.failures == []
    assert (report.is_valid, report.signatures_valid, report.hashes_valid, report.chain_valid) == (True,) * 4
    assert report.registry_valid is None and report.keys_pinned and report.warnings == []
    assert [i["type"] for i in signed_bundle["items"]] == list(ITEM_TYPES)
    assert [s["signer"] for s in signed_bundle["signatures"]] == ["worker", "ledger"]


def test_registered_bundle_verifies(registered_bundle: dict, keyring: KeyRing) -> None:
    report = EvidenceBundle(registered_bundle).verify(keyring, require_registry=True, log_origin=LOG_ORIGIN)
    assert report.failures == [] and report.is_valid and report.registry_valid is True


@pytest.mark.parametrize("index", range(len(ITEM_TYPES)), ids=list(ITEM_TYPES))
def test_changing_item_content_fails_and_names_the_item(signed_bundle: dict, keyring: KeyRing, index: int) -> None:
    signed_bundle["items"][index]["content"] = _mutate(signed_bundle["items"][index]["content"])
    report = verify_bundle(signed_bundle, keyring)
    assert not report.is_valid and not report.hashes_valid
    assert [(f["item"], f["index"]) for f in _where(report, "item_hash")] == [(ITEM_TYPES[index], index)]
    # the content is part of the signed payload too
    assert {f["signer"] for f in _where(report, "signature")} == {"worker", "ledger"}


def test_one_character_of_the_circuit_text(signed_bundle: dict, keyring: KeyRing) -> None:
    qasm = signed_bundle["items"][0]["content"]["qasm"]
    for position in (0, len(qasm) // 2, len(qasm) - 1):
        bundle = copy.deepcopy(signed_bundle)
        flipped = chr(ord(qasm[position]) ^ 1)
        bundle["items"][0]["content"]["qasm"] = qasm[:position] + flipped + qasm[position + 1 :]
        report = verify_bundle(bundle, keyring)
        assert not report.is_valid
        assert _where(report, "item_hash")[0]["item"] == "circuit_submission"


@pytest.mark.parametrize("index", range(len(ITEM_TYPES)), ids=list(ITEM_TYPES))
@pytest.mark.parametrize("position", [7, 40, -1])
def test_changing_an_item_hash_fails(signed_bundle: dict, keyring: KeyRing, index: int, position: int) -> None:
    item = signed_bundle["items"][index]
    item["hash"] = _flip_hex(item["hash"], position)
    report = verify_bundle(signed_bundle, keyring)
    assert not report.is_valid and not report.hashes_valid and not report.chain_valid
    assert [f["item"] for f in _where(report, "item_hash")] == [ITEM_TYPES[index]]
    assert _where(report, "merkle_root")


def test_uppercase_hash_is_not_the_same_hash(signed_bundle: dict, keyring: KeyRing) -> None:
    item = signed_bundle["items"][3]
    item["hash"] = "sha256:" + item["hash"][7:].upper()
    report = verify_bundle(signed_bundle, keyring)
    assert not report.is_valid and _where(report, "schema")[0]["index"] == 3


@pytest.mark.parametrize("position", [0, 31, 63])
def test_changing_the_root_fails(signed_bundle: dict, keyring: KeyRing, position: int) -> None:
    signed_bundle["merkle_root"] = _flip_hex(signed_bundle["merkle_root"], position)
    report = verify_bundle(signed_bundle, keyring)
    assert not report.is_valid and not report.chain_valid and report.hashes_valid
    assert _where(report, "merkle_root")[0]["field"] == "merkle_root"
    assert len(_where(report, "signature")) == 2


@pytest.mark.parametrize("which", [0, 1])
def test_flipping_any_byte_of_a_signature_fails(signed_bundle: dict, keyring: KeyRing, which: int) -> None:
    entry = signed_bundle["signatures"][which]
    raw = base64.b64decode(entry["signature"])
    for position in range(len(raw)):
        bundle = copy.deepcopy(signed_bundle)
        tampered = raw[:position] + bytes([raw[position] ^ 0x01]) + raw[position + 1 :]
        bundle["signatures"][which]["signature"] = base64.b64encode(tampered).decode()
        report = verify_bundle(bundle, keyring)
        failures = _where(report, "signature")
        assert not report.is_valid and not report.signatures_valid, position
        assert [(f["key_id"], f["signer"], f["index"]) for f in failures] == [
            (entry["key_id"], entry["signer"], which)
        ]


@pytest.mark.parametrize("which", [0, 1])
def test_changing_any_character_of_a_signature_fails(signed_bundle: dict, keyring: KeyRing, which: int) -> None:
    text = signed_bundle["signatures"][which]["signature"]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    for position, char in enumerate(text):
        replacement = "A" if char != "A" else "B"
        if char == "=":
            replacement = alphabet[0]
        bundle = copy.deepcopy(signed_bundle)
        bundle["signatures"][which]["signature"] = text[:position] + replacement + text[position + 1 :]
        report = verify_bundle(bundle, keyring)
        assert not report.signatures_valid, (position, char)
        assert _where(report, "signature")[0]["index"] == which


@pytest.mark.parametrize(
    ("field", "value"),
    [("signed_at", "2026-01-01T01:01:01Z"), ("signer", "ledger"), ("key_id", "0" * 64), ("algorithm", "ES256")],
)
def test_signature_metadata_is_covered(signed_bundle: dict, keyring: KeyRing, field: str, value: str) -> None:
    signed_bundle["signatures"][0][field] = value
    report = verify_bundle(signed_bundle, keyring)
    assert not report.is_valid and _where(report, "signature")[0]["index"] == 0
    assert {"check": "chain", "signer": "worker", "message": "no valid worker signature"} in report.failures


@pytest.mark.parametrize("index", range(len(ITEM_TYPES)), ids=list(ITEM_TYPES))
def test_removing_an_item_fails(signed_bundle: dict, keyring: KeyRing, index: int) -> None:
    removed = signed_bundle["items"].pop(index)
    report = verify_bundle(signed_bundle, keyring)
    assert not report.is_valid and not report.chain_valid
    assert {"check": "chain", "item": removed["type"], "message": "missing item"} in report.failures


def test_reordering_items_fails(signed_bundle: dict, keyring: KeyRing) -> None:
    items = signed_bundle["items"]
    items[2], items[3] = items[3], items[2]
    report = verify_bundle(signed_bundle, keyring)
    assert not report.is_valid and not report.chain_valid and report.hashes_valid
    assert any("out of order" in f["message"] for f in _where(report, "chain"))
    assert _where(report, "merkle_root")


@pytest.mark.parametrize("new_type", ["telemetry", "screenshot"])
def test_adding_an_item_fails(signed_bundle: dict, keyring: KeyRing, new_type: str) -> None:
    from ledger.crypto.canonical import hash_json

    content = {"injected": True}
    signed_bundle["items"].append({"type": new_type, "content": content, "hash": hash_json(content)})
    report = verify_bundle(signed_bundle, keyring)
    assert not report.is_valid and not report.chain_valid and report.hashes_valid
    expected = "duplicate item" if new_type == "telemetry" else "unknown item type"
    assert {"check": "chain", "item": new_type, "index": 7, "message": expected} in report.failures


def test_recomputed_hashes_and_root_still_fail_on_signatures(signed_bundle: dict, keyring: KeyRing) -> None:
    from ledger.crypto.bundle import merkle_root_hex
    from ledger.crypto.canonical import hash_json

    item = signed_bundle["items"][2]
    item["content"] = {"counts": {"00": 1024}, "success": True, "shots": 1024}
    item["hash"] = hash_json(item["content"])
    signed_bundle["merkle_root"] = merkle_root_hex(signed_bundle["items"])
    report = verify_bundle(signed_bundle, keyring)
    assert report.hashes_valid and not report.signatures_valid and not report.is_valid


def test_every_failure_is_reported(signed_bundle: dict, keyring: KeyRing) -> None:
    signed_bundle["items"][1]["content"] = _mutate(signed_bundle["items"][1]["content"])
    signed_bundle["items"][5]["content"] = _mutate(signed_bundle["items"][5]["content"])
    signed_bundle["items"].pop(6)
    report = verify_bundle(signed_bundle, keyring)
    assert [f["item"] for f in _where(report, "item_hash")] == ["execution_configuration", "provenance"]
    assert {"check": "chain", "item": "audit_trail", "message": "missing item"} in report.failures
    assert len(_where(report, "signature")) == 2


def test_retired_key_still_verifies_inside_its_window(signed_bundle: dict, keyring: KeyRing, worker_key) -> None:
    keyring.retire(worker_key.key_id, T0 + timedelta(days=30))
    assert keyring.get(worker_key.key_id).status == "retired"
    assert verify_bundle(signed_bundle, keyring).is_valid
    restored = KeyRing.from_json(keyring.to_json())  # what an auditor pins
    assert verify_bundle(signed_bundle, restored).is_valid


def test_signature_after_retirement_fails(signed_bundle: dict, keyring: KeyRing, worker_key) -> None:
    keyring.retire(worker_key.key_id, T0 + timedelta(minutes=30))  # before signed_at
    report = verify_bundle(signed_bundle, keyring)
    assert not report.is_valid
    (failure,) = _where(report, "signature")
    assert failure["key_id"] == worker_key.key_id and "outside key validity window" in failure["message"]


def test_signature_before_not_before_fails(signed_bundle: dict, worker_key, ledger_key) -> None:
    ring = KeyRing()
    ring.add_public_key(worker_key.public_key_der, T0 + timedelta(days=1))
    ring.add_public_key(ledger_key.public_key_der, T0)
    report = verify_bundle(signed_bundle, ring)
    assert not report.is_valid
    assert [f["key_id"] for f in _where(report, "signature")] == [worker_key.key_id]


def test_unknown_key_fails(bundle_factory, ledger_key, keyring: KeyRing) -> None:
    stranger = LocalSigner.generate()
    bundle = bundle_factory(stranger, ledger_key)
    report = verify_bundle(bundle, keyring)
    assert not report.is_valid
    (failure,) = _where(report, "signature")
    assert failure["key_id"] == stranger.key_id and failure["message"].startswith("unknown key")


def test_revoked_key_never_verifies(signed_bundle: dict, keyring: KeyRing, ledger_key) -> None:
    data = keyring.to_dict()
    for key in data["keys"]:
        if key["key_id"] == ledger_key.key_id:
            key["status"] = "revoked"
    report = verify_bundle(signed_bundle, KeyRing.from_dict(data))
    assert [f["key_id"] for f in _where(report, "signature")] == [ledger_key.key_id]


def test_worker_key_cannot_act_as_ledger(worker_key, keyring: KeyRing) -> None:
    bundle = build_bundle(job_id="j", tenant_id="t", items=CONTENTS, created_at=T0 + timedelta(hours=1))
    bundle = sign_bundle(bundle, worker_key, "worker", T0 + timedelta(hours=2))
    bundle = sign_bundle(bundle, worker_key, "ledger", T0 + timedelta(hours=2))
    report = verify_bundle(bundle, keyring)
    assert not report.is_valid and "may not sign as 'ledger'" in _where(report, "signature")[0]["message"]


def test_both_roles_are_required(worker_key, keyring: KeyRing) -> None:
    bundle = build_bundle(job_id="j", tenant_id="t", items=CONTENTS, created_at=T0 + timedelta(hours=1))
    bundle = sign_bundle(bundle, worker_key, "worker", T0 + timedelta(hours=2))
    report = verify_bundle(bundle, keyring)
    assert report.signatures_valid and not report.chain_valid and not report.is_valid
    assert {"check": "chain", "signer": "ledger", "message": "no valid ledger signature"} in report.failures


def test_unpinned_verification_uses_embedded_keys_with_a_warning(signed_bundle: dict, keyring: KeyRing) -> None:
    signed_bundle["public_keys"] = keyring.to_dict()
    report = EvidenceBundle(signed_bundle).verify()
    assert report.is_valid and not report.keys_pinned and report.warnings == [KEYS_NOT_PINNED]
    del signed_bundle["public_keys"]
    report = EvidenceBundle(signed_bundle).verify()
    assert not report.is_valid and KEYS_NOT_PINNED in report.warnings


def test_embedded_keys_are_not_trusted_when_pinned(bundle_factory, keyring: KeyRing) -> None:
    forger_w, forger_l = LocalSigner.generate(), LocalSigner.generate()
    forged = bundle_factory(forger_w, forger_l)
    fake_ring = KeyRing()
    fake_ring.add_public_key(forger_w.public_key_der, T0)
    fake_ring.add_public_key(forger_l.public_key_der, T0)
    forged["public_keys"] = fake_ring.to_dict()
    assert EvidenceBundle(forged).verify().is_valid  # integrity only: hence the warning
    assert not EvidenceBundle(forged).verify(keyring).is_valid


def test_registry_tampering(registered_bundle: dict, keyring: KeyRing) -> None:
    def broken(mutator) -> Any:
        bundle = copy.deepcopy(registered_bundle)
        mutator(bundle["registry"])
        report = verify_bundle(bundle, keyring)
        assert not report.is_valid and report.registry_valid is False and not report.chain_valid
        return [f["message"] for f in _where(report, "registry")]

    assert broken(lambda r: r.update(leaf_index=r["leaf_index"] + 1))
    assert broken(lambda r: r.update(leaf_index=r["leaf_index"] - 1))
    assert any("differs from checkpoint size" in m for m in broken(lambda r: r.update(tree_size=r["tree_size"] * 2)))
    assert broken(lambda r: r["inclusion_proof"].__setitem__(1, _flip_hex(r["inclusion_proof"][1], 0)))
    assert broken(lambda r: r["inclusion_proof"].pop())
    assert broken(lambda r: r["inclusion_proof"].append("00" * 32))
    lines = registered_bundle["registry"]["checkpoint"].split("\n")
    root_line = lines[2]
    forged_root = ("B" if root_line[0] != "B" else "C") + root_line[1:]
    messages = broken(lambda r: r.update(checkpoint="\n".join([lines[0], lines[1], forged_root, *lines[3:]])))
    assert any("does not verify" in m for m in messages)
    assert broken(lambda r: r.update(checkpoint=r["checkpoint"].replace("\n\n", "\n")))
    assert broken(lambda r: r.update(checkpoint=None))


def test_registry_signed_by_untrusted_log(bundle_factory, worker_key, ledger_key, keyring: KeyRing) -> None:
    bundle = bundle_factory(worker_key, ledger_key, LocalSigner.generate())
    report = verify_bundle(bundle, keyring)
    assert report.registry_valid is False
    assert "no signature from a trusted key" in _where(report, "registry")[0]["message"]


def test_registry_for_another_bundle_fails(registered_bundle: dict, keyring: KeyRing) -> None:
    registered_bundle["bundle_id"] = "bundle-other"
    report = verify_bundle(registered_bundle, keyring)
    assert report.registry_valid is False and not report.signatures_valid


def test_wrong_log_origin(registered_bundle: dict, keyring: KeyRing) -> None:
    report = verify_bundle(registered_bundle, keyring, log_origin="evil.example/log")
    assert report.registry_valid is False


def test_require_registry(signed_bundle: dict, keyring: KeyRing) -> None:
    report = verify_bundle(signed_bundle, keyring, require_registry=True)
    assert not report.is_valid and report.registry_valid is None
    assert _where(report, "registry")[0]["message"] == "registry block required but absent"


@pytest.mark.parametrize(
    "garbage",
    [
        {},
        {"items": "nope", "signatures": "nope"},
        {"items": [None, 3, {"type": 1}], "signatures": [None, {"signature": 5}], "merkle_root": 7},
        {"items": [{"type": "telemetry", "content": float("nan"), "hash": "sha256:" + "0" * 64}]},
        {"registry": {"leaf_index": "x", "inclusion_proof": ["zz"], "checkpoint": "nonsense"}},
    ],
)
def test_malformed_bundles_are_reported_not_raised(garbage: dict, keyring: KeyRing) -> None:
    report = verify_bundle(garbage, keyring)
    assert not report.is_valid and report.failures
    assert all({"check", "message"} <= set(f) for f in report.failures)


def test_sign_bundle_refuses_inconsistent_bundles(signed_bundle: dict, ledger_key) -> None:
    signed_bundle["items"][0]["content"]["format"] = "qasm2"
    with pytest.raises(ValueError, match="circuit_submission"):
        sign_bundle(signed_bundle, ledger_key, "ledger")
    with pytest.raises(ValueError):
        build_bundle(job_id="j", tenant_id="t", items={"telemetry": {}})
