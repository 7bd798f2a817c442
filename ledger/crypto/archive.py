"""The seed's evidence-bundle directory layout, as a directory or a zip, loss-free.

Why: auditors and regulators want files they can open (``circuit.qasm``,
``results.json``), while verification needs the exact JSON values. The layout therefore
stores each item's content in its own file and everything else in ``manifest.json``;
reading it back yields the identical bundle dict (hashes are over RFC 8785 canonical
bytes, so the pretty-printing of these files never matters)::

    manifest.json          bundle metadata, item types and hashes, registry block,
                           and the list of signature files
    circuit.qasm           circuit_submission["qasm"]; its other fields stay in the manifest
    config.json            execution_configuration
    results.json           execution_result
    telemetry.json         telemetry
    calibration.json       calibration
    provenance.json        provenance
    audit_trail.json       audit_trail (not in the seed's listing; added for completeness)
    public_keys.json       embedded key ring snapshot, if any (never trusted by default)
    signatures/backend.sig the worker's signature entry (JSON); other roles: <role>.sig
    signatures/ledger.sig  the ledger's signature entry (JSON)

Reading never follows names from the manifest except signature files matching
``signatures/<[a-z0-9_-]+>.sig``, and zip members are size-capped (zip bombs).
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .bundle import BundleFormatError, parse_json

__all__ = ["read_archive", "write_dir", "write_zip"]

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
MAX_MEMBER_BYTES = 64 << 20
ITEM_FILES = {
    "circuit_submission": "circuit.qasm",
    "execution_configuration": "config.json",
    "execution_result": "results.json",
    "telemetry": "telemetry.json",
    "calibration": "calibration.json",
    "provenance": "provenance.json",
    "audit_trail": "audit_trail.json",
}
ROLE_FILES = {"worker": "backend", "ledger": "ledger"}
_SIG_FILE = re.compile(r"signatures/[a-z0-9_-]{1,64}\.sig")
_EXTRA_FILE = re.compile(r"extra_items/[0-9]{1,6}\.json")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")


def _layout(bundle: Mapping[str, Any]) -> dict[str, bytes]:
    """Map archive member names to bytes for ``bundle``."""
    files: dict[str, bytes] = {}
    manifest: dict[str, Any] = {
        k: v for k, v in bundle.items() if k not in {"items", "signatures", "public_keys"}
    }
    manifest["manifest_version"] = MANIFEST_VERSION
    entries = []
    for index, item in enumerate(bundle.get("items") or []):
        entry = {k: v for k, v in item.items() if k != "content"}
        content = item.get("content")
        name = ITEM_FILES.get(item.get("type"))
        if name is None or name in files:
            name = f"extra_items/{index}.json"
        if name == "circuit.qasm":
            if isinstance(content, Mapping) and isinstance(content.get("qasm"), str):
                files[name] = content["qasm"].encode("utf-8")
                entry["content"] = {k: v for k, v in content.items() if k != "qasm"}
            else:
                name = "circuit_submission.json"
        if name != "circuit.qasm":
            files[name] = _json_bytes(content)
        entry["file"] = name
        entries.append(entry)
    manifest["items"] = entries
    sig_files = []
    for sig in bundle.get("signatures") or []:
        role = sig.get("signer") if isinstance(sig, Mapping) else None
        base = "sig"
        if isinstance(role, str):
            base = ROLE_FILES.get(role) or (role if re.fullmatch(r"[a-z0-9_-]{1,40}", role) else "sig")
        name, n = f"signatures/{base}.sig", 2
        while name in files:
            name, n = f"signatures/{base}-{n}.sig", n + 1
        files[name] = _json_bytes(sig)
        sig_files.append(name)
    manifest["signatures"] = sig_files
    if "public_keys" in bundle:
        files["public_keys.json"] = _json_bytes(bundle["public_keys"])
        manifest["public_keys"] = "public_keys.json"
    files[MANIFEST] = _json_bytes(manifest)
    return files


def write_dir(bundle: Mapping[str, Any], path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for name, data in _layout(bundle).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def write_zip(bundle: Mapping[str, Any], path: Path) -> None:
    """Deterministic zip: sorted members, fixed timestamps, so equal bundles give equal bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(_layout(bundle).items()):
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)


def _allowed(name: str) -> bool:
    return (
        name in ITEM_FILES.values()
        or name in {MANIFEST, "public_keys.json", "circuit_submission.json"}
        or bool(_SIG_FILE.fullmatch(name) or _EXTRA_FILE.fullmatch(name))
    )


def _dir_reader(root: Path) -> Callable[[str], bytes]:
    def read(name: str) -> bytes:
        target = root / name
        if not target.is_file() or target.stat().st_size > MAX_MEMBER_BYTES:
            raise BundleFormatError(f"{name} is missing or too large")
        return target.read_bytes()

    return read


def _zip_reader(archive: zipfile.ZipFile) -> Callable[[str], bytes]:
    names = archive.namelist()
    prefix = ""
    if MANIFEST not in names:  # accept one top-level folder, e.g. evidence-bundle/
        candidates = [n[: -len(MANIFEST)] for n in names if n.endswith("/" + MANIFEST) and n.count("/") == 1]
        if len(candidates) != 1:
            raise BundleFormatError("zip has no manifest.json")
        prefix = candidates[0]

    def read(name: str) -> bytes:
        try:
            info = archive.getinfo(prefix + name)
        except KeyError as exc:
            raise BundleFormatError(f"{name} is missing from the zip") from exc
        if info.file_size > MAX_MEMBER_BYTES:
            raise BundleFormatError(f"{name} is too large")
        with archive.open(info) as handle:
            data = handle.read(MAX_MEMBER_BYTES + 1)
        if len(data) > MAX_MEMBER_BYTES:
            raise BundleFormatError(f"{name} is too large")
        return data

    return read


def _assemble(read: Callable[[str], bytes]) -> dict[str, Any]:
    manifest = parse_json(read(MANIFEST))
    if not isinstance(manifest, dict) or manifest.pop("manifest_version", None) != MANIFEST_VERSION:
        raise BundleFormatError("manifest.json is not a version 1 evidence-bundle manifest")
    bundle: dict[str, Any] = dict(manifest)
    items = []
    for entry in manifest.get("items") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or not _allowed(entry["file"]):
            raise BundleFormatError(f"bad manifest item entry {entry!r:.80}")
        item = {k: v for k, v in entry.items() if k not in {"file", "content"}}
        name = entry["file"]
        if name == "circuit.qasm":
            try:
                qasm = read(name).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BundleFormatError("circuit.qasm is not UTF-8") from exc
            item["content"] = {**(entry.get("content") or {}), "qasm": qasm}
        else:
            item["content"] = parse_json(read(name))
        items.append(item)
    bundle["items"] = items
    signatures = []
    for name in manifest.get("signatures") or []:
        if not isinstance(name, str) or not _SIG_FILE.fullmatch(name):
            raise BundleFormatError(f"bad signature file name {name!r:.80}")
        signatures.append(parse_json(read(name)))
    bundle["signatures"] = signatures
    if "public_keys" in manifest:
        if manifest["public_keys"] != "public_keys.json":
            raise BundleFormatError("public_keys must reference public_keys.json")
        bundle["public_keys"] = parse_json(read("public_keys.json"))
    return bundle


def read_archive(path: Path) -> dict[str, Any]:
    """Read an exported directory or zip back into a bundle dict."""
    if path.is_dir():
        return _assemble(_dir_reader(path))
    try:
        with zipfile.ZipFile(path) as archive:
            return _assemble(_zip_reader(archive))
    except zipfile.BadZipFile as exc:
        raise BundleFormatError(f"{path} is not a valid zip: {exc}") from exc
