"""Signed benchmark reports: what is hashed, what is signed, and the one verifier.

Django-free and qiskit-free (only :mod:`ledger.crypto`), so the server, the SDK
(``client.bench.verify(..., offline=True)``) and the CLI (``qcos bench verify report.json``) run
exactly this code.

Definitions (compatibility promises; change them only with new context strings):

* **content** = the report without :data:`CONTENT_EXCLUDED_FIELDS` at its top level and without
  :data:`TIMING_FIELDS` at any depth. What is left is the physics and the request: backend,
  calibration, workloads and their scores, counts digests, shots, seeds, software versions.
  Ids (``id``, ``tenant_id``, ``project``, ``submitted_by``), timestamps, wall-clock timings
  and the cost (price sheets change) are excluded, so **the same seed on the same backend with
  the same software gives the same ``content_hash``**, whoever runs it and whenever.
* ``content_hash`` = ``sha256_tagged(canonical_json(content))`` (RFC 8785 bytes).
* **evidence** = the whole report except :data:`UNHASHED_FIELDS` (``evidence_hash`` and
  ``signature``). It binds the content hash to the run's ids, timestamps, timings and cost.
  ``evidence_hash`` = ``sha256_tagged(canonical_json(evidence))``.
* ``signature`` = ECDSA-P384/SHA-384 by the ledger key over
  ``canonical_json({"context": SIGNATURE_CONTEXT, "report_id", "content_hash",
  "evidence_hash", "algorithm", "key_id", "signer", "signed_at"})``.

A verifier recomputes both hashes (naming whichever does not match) and checks the signature
with a key ring (pinned, or the document's own ``public_keys`` with the warning
``keys not pinned``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ledger.crypto.canonical import (
    CanonicalizationError,
    b64decode_strict,
    b64encode,
    canonical_json,
    format_timestamp,
    parse_timestamp,
    sha256_tagged,
)
from ledger.crypto.keyring import KeyRing, KeyRingError
from ledger.crypto.signing import ALGORITHM, Signer

__all__ = [
    "CONTENT_EXCLUDED_FIELDS",
    "SIGNATURE_CONTEXT",
    "TIMING_FIELDS",
    "ReportVerification",
    "content_hash",
    "content_of",
    "evidence_hash",
    "extract_report",
    "seal_report",
    "signature_message",
    "verify_report",
]

SIGNATURE_CONTEXT = "qcos.bench-report.signature.v1"
SIGNER_ROLE = "ledger"
KEYS_NOT_PINNED = "keys not pinned"

TIMING_FIELDS = frozenset(
    {"execution_time_ms", "transpile_time_ms", "elapsed_ms", "total_execution_time_ms", "queue_ms", "run_ms"}
)
"""Wall-clock figures: real, recorded, covered by ``evidence_hash``, never by ``content_hash``."""

CONTENT_EXCLUDED_FIELDS = frozenset(
    {"id", "created_at", "submitted_at", "started_at", "completed_at", "tenant_id", "project",
     "submitted_by", "bundle_id", "cost", "timings", "content_hash", "evidence_hash", "signature"}
)
"""Top-level report fields outside the content hash (ids, timestamps, cost, the seals)."""

UNHASHED_FIELDS = frozenset({"evidence_hash", "signature"})


def _strip_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_timings(v) for k, v in value.items() if k not in TIMING_FIELDS}
    if isinstance(value, list):
        return [_strip_timings(v) for v in value]
    return value


def content_of(report: Mapping[str, Any]) -> dict[str, Any]:
    """The reproducible part of a report (see the module docstring)."""
    return _strip_timings({k: v for k, v in report.items() if k not in CONTENT_EXCLUDED_FIELDS})


def content_hash(report: Mapping[str, Any]) -> str:
    return sha256_tagged(canonical_json(content_of(report)))


def evidence_hash(report: Mapping[str, Any]) -> str:
    return sha256_tagged(canonical_json({k: v for k, v in report.items() if k not in UNHASHED_FIELDS}))


def signature_message(*, report_id: str, content: str, evidence: str, key_id: str, signed_at: str,
                      signer: str = SIGNER_ROLE, algorithm: str = ALGORITHM) -> bytes:
    return canonical_json({
        "context": SIGNATURE_CONTEXT, "report_id": report_id, "content_hash": content,
        "evidence_hash": evidence, "algorithm": algorithm, "key_id": key_id, "signer": signer,
        "signed_at": signed_at,
    })


def seal_report(report: Mapping[str, Any], signer: Signer, *, signed_at: datetime | None = None) -> dict[str, Any]:
    """Return ``report`` with ``content_hash``, ``evidence_hash`` and the ledger's ``signature``."""
    sealed = {k: v for k, v in copy.deepcopy(dict(report)).items() if k not in UNHASHED_FIELDS}
    sealed["content_hash"] = content_hash(sealed)
    sealed["evidence_hash"] = evidence_hash(sealed)
    when = format_timestamp(signed_at or datetime.now(UTC))
    message = signature_message(report_id=str(sealed.get("id")), content=sealed["content_hash"],
                                evidence=sealed["evidence_hash"], key_id=signer.key_id, signed_at=when)
    sealed["signature"] = {"key_id": signer.key_id, "algorithm": ALGORITHM, "signer": SIGNER_ROLE,
                           "signed_at": when, "signature": b64encode(signer.sign(message))}
    return sealed


def extract_report(document: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(report, embedded key ring) from a bare report, ``{"report": …}`` (the API's and the
    download's shape) or the verify endpoint's body. Raises ValueError when there is none."""
    if not isinstance(document, Mapping):
        raise ValueError("a benchmark report is a JSON object")
    keys = document.get("public_keys")
    report = document.get("report", document)
    if not isinstance(report, Mapping) or "workloads" not in report:
        raise ValueError("no benchmark report found (expected an object with 'workloads')")
    keys = report.get("public_keys", keys) if isinstance(report, Mapping) else keys
    return {k: v for k, v in report.items() if k != "public_keys"}, keys if isinstance(keys, Mapping) else None


@dataclass
class ReportVerification:
    """The seed's verify answer; ``failures`` name each bad hash or signature problem."""

    report_id: Any
    content_hash_valid: bool
    evidence_hash_valid: bool
    signature_present: bool
    signature_valid: bool
    keys_pinned: bool
    failures: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def is_valid(self) -> bool:
        return self.content_hash_valid and self.evidence_hash_valid and self.signature_valid

    @property
    def status(self) -> str:
        return "valid" if self.is_valid else "invalid"

    @property
    def error(self) -> str | None:
        return "; ".join(f["message"] for f in self.failures) or None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status, "report_id": self.report_id,
            "content_hash_valid": self.content_hash_valid, "evidence_hash_valid": self.evidence_hash_valid,
            "signature_present": self.signature_present, "signature_valid": self.signature_valid,
            "keys_pinned": self.keys_pinned, "failures": list(self.failures),
            "warnings": list(self.warnings), "error": self.error,
        }


def _hash_check(report: Mapping[str, Any], name: str, compute, failures: list[dict[str, Any]]) -> bool:
    recorded = report.get(name)
    try:
        expected = compute(report)
    except (CanonicalizationError, TypeError, ValueError) as exc:
        failures.append({"check": name, "message": f"{name}: report cannot be canonicalized ({exc})"})
        return False
    if recorded != expected:
        what = "missing" if recorded is None else f"recorded {recorded}"
        failures.append({"check": name, "recorded": recorded, "computed": expected,
                         "message": f"{name} does not match the report ({what}, computed {expected})"})
        return False
    return True


def verify_report(document: Any, keyring: KeyRing | None = None) -> ReportVerification:
    """Check a report's two hashes and its signature; never raises on hostile input
    (a document holding no report at all raises ValueError)."""
    report, embedded = extract_report(document)
    failures: list[dict[str, Any]] = []
    warnings: list[str] = []
    content_ok = _hash_check(report, "content_hash", content_hash, failures)
    evidence_ok = _hash_check(report, "evidence_hash", evidence_hash, failures)
    pinned = keyring is not None
    if keyring is None and embedded is not None:
        try:
            keyring = KeyRing.from_dict(embedded)
        except KeyRingError as exc:
            failures.append({"check": "signature", "message": f"embedded public_keys unreadable: {exc}"})
    if not pinned:
        warnings.append(KEYS_NOT_PINNED)
    signature = report.get("signature")
    present = isinstance(signature, Mapping) and bool(signature.get("signature"))
    signature_ok = False
    if not present:
        failures.append({"check": "signature", "message": "the report carries no signature"})
    elif keyring is None:
        failures.append({"check": "signature", "message": "no key ring to check the signature with"})
    else:
        signature_ok = _signature_check(report, signature, keyring, failures)
    return ReportVerification(report.get("id"), content_ok, evidence_ok, present, signature_ok, pinned,
                              failures, warnings)


def _signature_check(report: Mapping[str, Any], signature: Mapping[str, Any], keyring: KeyRing,
                     failures: list[dict[str, Any]]) -> bool:
    key_id, signed_at = signature.get("key_id"), signature.get("signed_at")
    when = parse_timestamp(signed_at)
    if signature.get("algorithm") != ALGORITHM or signature.get("signer") != SIGNER_ROLE or when is None:
        failures.append({"check": "signature", "message": "signature metadata (algorithm, signer, signed_at) invalid"})
        return False
    raw = b64decode_strict(signature.get("signature"))
    if raw is None:
        failures.append({"check": "signature", "message": "signature is not strict base64"})
        return False
    # The message binds the *recorded* hashes: a hash mismatch is reported above, by name.
    message = signature_message(report_id=str(report.get("id")), content=str(report.get("content_hash")),
                                evidence=str(report.get("evidence_hash")), key_id=str(key_id),
                                signed_at=signed_at)
    problem = keyring.check(str(key_id), message, raw, when, role=SIGNER_ROLE)
    if problem is not None:
        failures.append({"check": "signature", "key_id": key_id, "message": f"signature: {problem}"})
        return False
    return True
