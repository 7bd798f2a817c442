"""``client.ledger``: the audit log, evidence bundles, public keys and the transparency registry.

Evidence bundles are verified by :mod:`ledger.crypto` (Django-free), the same code the
server runs, so a bundle the SDK accepts is one the API accepts and vice versa. The SDK
adds only transport: fetching bundles, key rings, checkpoints and proofs.

Bodies that are not plain JSON objects (the zip layout, the ``text/plain`` checkpoint)
and the bundle itself (parsed *strictly*, duplicate keys and NaN rejected, so the SDK
sees exactly what the verifier would) are fetched as raw bytes through the owning
:class:`~qcos_sdk.client.QCOSClient`, with the same auth, retries and error mapping.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import requests

from ledger.crypto import (
    BundleFormatError,
    KeyRing,
    KeyRingError,
    NoteError,
    VerificationReport,
)
from ledger.crypto import EvidenceBundle as _CryptoEvidenceBundle
from ledger.crypto import merkle
from ledger.crypto.bundle import parse_json, registry_leaf_hash
from ledger.crypto.note import parse_checkpoint, parse_note, verify_checkpoint

from .errors import (
    ConfigurationError,
    NotFoundError,
    QCOSConnectionError,
    QCOSError,
    QCOSTimeoutError,
    error_from_response,
)
from .models import Record, Report

__all__ = [
    "AuditEntry",
    "AuditVerification",
    "BundleVerification",
    "ChargebackReport",
    "ConsistencyProof",
    "EvidenceBundle",
    "InclusionProof",
    "KeyRing",
    "Ledger",
    "RegistryCheck",
    "RegistryLeaf",
    "VerificationReport",
]

REGISTRY_LOG_CHECK = "registry_log"


class Principal(Record):
    _fields = frozenset({"user_id", "username", "tenant_id", "roles"})


class Resource(Record):
    _fields = frozenset({"type", "id"})


class AuditEntry(Record):
    """One audit entry: ``entry.timestamp``, ``entry.action``, ``entry.principal.user_id`` …"""

    _fields = frozenset(
        {"audit_id", "timestamp", "action", "principal", "resource", "details", "outcome", "tenant_id", "seq",
         "entry_hash"}
    )
    _nested: ClassVar[dict[str, type[Record]]] = {"principal": Principal, "resource": Resource}


class AuditVerification(Record):
    _fields = frozenset({"ok", "entries_checked", "unsequenced", "head_seq", "head_hash", "first_bad", "notes"})


class BundleVerification(Record):
    """Server-side verdict of ``POST /ledger/bundles/verify`` (``verification.registered`` …)."""

    _fields = frozenset(
        {"bundle_id", "is_valid", "signatures_valid", "hashes_valid", "chain_valid", "registry_valid",
         "keys_pinned", "registered", "registration_date", "certificate_id", "leaf_index", "tree_size",
         "failures", "warnings"}
    )


class InclusionProof(Record):
    """``inclusion_proof`` and ``root`` are lowercase hex, as served."""

    _fields = frozenset({"leaf_index", "tree_size", "inclusion_proof", "root"})


class ConsistencyProof(Record):
    _fields = frozenset({"first", "second", "consistency_proof"})


class RegistryLeaf(Record):
    _fields = frozenset({"bundle_id", "leaf_index", "leaf_hash", "registered_at"})


class RegistryCheck(Record):
    """Result of :meth:`Ledger.check_registry`, checked locally against a signed checkpoint.

    ``valid``; ``method`` (``"consistency"`` when the bundle carries a registry block,
    ``"inclusion"`` when it does not); ``checkpoint`` (``origin``, ``size``, ``root`` hex,
    ``signed_by`` key ids of the current checkpoint); ``leaf_index``; ``tree_size`` (the
    size the bundle's own proof is for, or the current size for ``"inclusion"``);
    ``failures`` (``{"check": "registry_log", "message", ...}``, the verifier's shape).
    """

    _fields = frozenset({"valid", "method", "checkpoint", "leaf_index", "tree_size", "failures"})


class EvidenceBundle(_CryptoEvidenceBundle):
    """:class:`ledger.crypto.EvidenceBundle` whose :meth:`save` picks the format by suffix.

    ``bundle.save("evidence.zip")`` writes the directory layout as a zip
    (:meth:`to_zip`); any other name gets the single JSON file. ``EvidenceBundle.load``
    reads both back (and exported directories), and ``verify`` is the shared verifier.
    """

    def save(self, path: str | os.PathLike[str]) -> None:
        if Path(path).suffix.lower() == ".zip":
            self.to_zip(path)
        else:
            super().save(path)


def _day(value: date | datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


def _date_only(value: date | datetime | str) -> str:
    """Reports cover whole UTC days: a datetime contributes its date."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    return value.isoformat() if isinstance(value, date) else value


def _invalid(message: str) -> QCOSError:
    return QCOSError("INVALID_RESPONSE", message)


def _hex_list(values: Any, what: str) -> list[bytes]:
    if not isinstance(values, list):
        raise _invalid(f"{what} must be a list of hex strings")
    try:
        return [bytes.fromhex(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise _invalid(f"{what} is not hex: {exc}") from None


def _bundle_dict(bundle: _CryptoEvidenceBundle | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(bundle, _CryptoEvidenceBundle):
        return bundle.to_dict()
    if isinstance(bundle, Mapping):
        return dict(bundle)
    raise TypeError("bundle must be an EvidenceBundle or a dict")


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ChargebackReport(Report):
    """A report from :meth:`Ledger.generate_report`: ``report.status``, ``report.rows`` …, plus
    ``wait()`` (poll until READY or FAILED) and ``download(path)`` (waits if needed, checks the
    file against the server's SHA-256, writes it atomically)."""

    __slots__ = ("_ledger",)

    def __init__(self, data: Mapping[str, Any], ledger: Ledger | None = None) -> None:
        super().__init__(data)
        object.__setattr__(self, "_ledger", ledger)

    def _attached(self) -> Ledger:
        if self._ledger is None:
            raise ConfigurationError("NO_CLIENT", "this report is not attached to a QCOSClient")
        return self._ledger

    def refresh(self) -> ChargebackReport:
        """Fetch the current status (in place) and return the report."""
        data = self._attached()._request("GET", f"/reports/{quote(str(self.id), safe='')}")
        object.__setattr__(self, "_data", dict(data))
        return self

    def wait(self, timeout: float = 300.0, poll_interval: float = 0.25) -> ChargebackReport:
        """Poll until READY or FAILED (check ``status``); ``QCOSTimeoutError`` after ``timeout`` s,
        the report keeps being built server-side."""
        deadline = time.monotonic() + timeout
        delay = min(poll_interval, 0.05)
        while not self.is_finished:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise QCOSTimeoutError(f"report {self.id} still {self.status} after {timeout:g}s",
                                       last_status=self.status, timeout=timeout)
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, poll_interval)
            self.refresh()
        return self

    def content(self, timeout: float = 300.0) -> bytes:
        """The file's bytes (waits if needed); ``QCOSError`` REPORT_FAILED when the build failed."""
        self.wait(timeout)
        if self.status != "READY":
            raise QCOSError("REPORT_FAILED", f"report {self.id} failed: {self.error}")
        accept = "application/json" if self.format == "json" else "text/csv"
        data = self._attached()._raw("GET", f"/reports/{quote(str(self.id), safe='')}/download",
                                     accept=accept).content
        if self.content_sha256 and hashlib.sha256(data).hexdigest() != self.content_sha256:
            raise _invalid(f"report {self.id}: the download does not match its SHA-256")
        return data

    def download(self, path: str | os.PathLike[str], timeout: float = 300.0) -> Path:
        """Write the file to ``path`` (waiting for it if needed) and return the path."""
        target = Path(path)
        _write_atomic(target, self.content(timeout))
        return target


class Ledger:
    """Grouped ledger endpoints; built by :class:`~qcos_sdk.client.QCOSClient`."""

    def __init__(self, request) -> None:
        self._request = request
        # The owning client, for bodies _request cannot decode (zip, text/plain).
        self._client = getattr(request, "__self__", None)

    # ------------------------------------------------------------------ audit
    def query_audit(
        self,
        tenant_id: str | None = None,
        start_date: date | datetime | str | None = None,
        end_date: date | datetime | str | None = None,
        actions: Iterable[str] | None = None,
        limit: int | None = 100,
        page_size: int = 500,
    ) -> Iterator[AuditEntry]:
        """Yield entries of the key's tenant in append order, at most ``limit`` (None: all)."""
        params: dict[str, Any] = {"tenant_id": tenant_id, "start_date": _day(start_date), "end_date": _day(end_date)}
        if actions:
            params["actions"] = ",".join(actions)
        params = {k: v for k, v in params.items() if v is not None}
        remaining = limit
        cursor = None
        while remaining is None or remaining > 0:
            size = page_size if remaining is None else min(page_size, remaining)
            page = self._request("GET", "/audit", params={**params, "limit": size, **({"cursor": cursor} if cursor else {})})
            for entry in page["entries"]:
                yield AuditEntry(entry)
            if remaining is not None:
                remaining -= len(page["entries"])
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def verify_audit(self) -> AuditVerification:
        """Ask the server to sequence and verify the whole audit chain."""
        return AuditVerification(self._request("POST", "/audit/verify"))

    # --------------------------------------------------------------- evidence
    def get_evidence_bundle(self, job_id: str) -> EvidenceBundle:
        """Fetch a completed job's evidence bundle (``NotFoundError`` if it has none yet).

        Nothing is verified here: call ``bundle.verify(keyring)`` (ideally with a pinned
        :class:`KeyRing`, e.g. from :meth:`public_keys` saved earlier).
        """
        response = self._raw("GET", f"/jobs/{quote(job_id, safe='')}/evidence", accept="application/json")
        try:
            return EvidenceBundle(parse_json(response.content))
        except BundleFormatError as exc:
            raise _invalid(f"evidence bundle of {job_id}: {exc}") from None

    def download_evidence(self, job_id: str, path: str | os.PathLike[str]) -> EvidenceBundle:
        """Write a job's evidence to ``path`` and return it.

        ``.zip`` stores the server's own zip (``?format=zip``) byte for byte after
        checking that it reads back as a bundle; any other name gets the JSON file.
        """
        target = Path(path)
        if target.suffix.lower() != ".zip":
            bundle = self.get_evidence_bundle(job_id)
            bundle.save(target)
            return bundle
        response = self._raw(
            "GET", f"/jobs/{quote(job_id, safe='')}/evidence", params={"format": "zip"}, accept="application/zip"
        )
        data = response.content
        if not zipfile.is_zipfile(io.BytesIO(data)):
            # A server that ignored ?format=zip: build the same layout locally.
            try:
                bundle = EvidenceBundle(parse_json(data))
            except BundleFormatError as exc:
                raise _invalid(f"evidence of {job_id} is neither a zip nor a bundle: {exc}") from None
            bundle.to_zip(target)
            return bundle
        from ledger.crypto.archive import read_archive

        with tempfile.TemporaryDirectory() as tmp:
            probe = Path(tmp) / "evidence.zip"
            probe.write_bytes(data)
            try:
                bundle = EvidenceBundle(read_archive(probe))
            except BundleFormatError as exc:
                raise _invalid(f"evidence zip of {job_id}: {exc}") from None
        _write_atomic(target, data)
        return bundle

    def verify_bundle(
        self,
        bundle_id: str | None = None,
        *,
        bundle: _CryptoEvidenceBundle | Mapping[str, Any] | None = None,
        check_registry: bool = True,
    ) -> BundleVerification:
        """Ask the server to verify a stored bundle (by id) or one you send.

        This is the server's verdict (plus ``registered``, ``registration_date``,
        ``certificate_id``); for an independent one run ``bundle.verify(keyring)``
        locally and :meth:`check_registry`.
        """
        if (bundle_id is None) == (bundle is None):
            raise ValueError("pass exactly one of bundle_id or bundle")
        body: dict[str, Any] = {"check_registry": bool(check_registry)}
        if bundle_id is not None:
            body["bundle_id"] = bundle_id
        else:
            body["bundle"] = _bundle_dict(bundle)  # type: ignore[arg-type]
        # Verification has no side effects, so a lost response may be retried.
        return BundleVerification(self._request("POST", "/ledger/bundles/verify", json=body, retry=True))

    def public_keys(self) -> KeyRing:
        """The ledger's, workers' (and log's) public keys with their validity windows.

        Save ``ring.to_json()`` once and pass ``KeyRing.from_json(...)`` to
        ``bundle.verify`` later: keys fetched at verification time prove less than
        keys pinned in advance.
        """
        data = self._request("GET", "/ledger/keys")
        try:
            return KeyRing.from_dict(data)
        except KeyRingError as exc:
            raise _invalid(f"/ledger/keys: {exc}") from None

    # --------------------------------------------------------------- registry
    def checkpoint(self) -> str:
        """The registry log's current signed checkpoint (a C2SP signed note), unverified."""
        response = self._raw("GET", "/registry/checkpoint", accept="text/plain")
        try:
            # Always UTF-8 (signature lines start with an em dash); requests would guess Latin-1.
            return response.content.decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid("/registry/checkpoint is not UTF-8") from None

    def inclusion_proof(self, leaf_index: int, tree_size: int) -> InclusionProof:
        params = {"leaf_index": leaf_index, "tree_size": tree_size}
        return InclusionProof(self._request("GET", "/registry/proof/inclusion", params=params))

    def consistency_proof(self, first: int, second: int) -> ConsistencyProof:
        params = {"first": first, "second": second}
        return ConsistencyProof(self._request("GET", "/registry/proof/consistency", params=params))

    def registry_leaf(self, bundle_id: str) -> RegistryLeaf:
        return RegistryLeaf(self._request("GET", f"/registry/leaves/{quote(bundle_id, safe='')}"))

    def check_registry(
        self,
        bundle: _CryptoEvidenceBundle | Mapping[str, Any],
        keyring: KeyRing,
        *,
        log_origin: str | None = None,
    ) -> RegistryCheck:
        """Check locally that ``bundle`` is in the log as it is *now*.

        Fetches the current checkpoint and verifies its signature with ``keyring`` (keys
        with role ``log`` or no roles). With a ``registry`` block, the bundle's own
        checkpoint must be a prefix of the current one (RFC 9162 consistency proof;
        together with the inclusion proof :meth:`EvidenceBundle.verify` checks, this puts
        the bundle in today's tree and detects a forked or rewritten log). Without one,
        the leaf index is looked up and an inclusion proof to the current root is
        checked. The server supplies only signed or verifiable data; it is never asked
        for a verdict. API errors raise; every verification problem is a failure.
        """
        data = _bundle_dict(bundle)
        failures: list[dict[str, Any]] = []
        result: dict[str, Any] = {
            "valid": False, "method": None, "checkpoint": None, "leaf_index": None, "tree_size": None,
            "failures": failures,
        }

        def fail(message: str, **where: Any) -> RegistryCheck:
            failures.append({"check": REGISTRY_LOG_CHECK, **where, "message": message})
            return RegistryCheck(result)

        registry = data.get("registry")
        claimed = None
        if isinstance(registry, Mapping) and isinstance(registry.get("checkpoint"), str):
            try:
                claimed = parse_checkpoint(parse_note(registry["checkpoint"]).text)
            except NoteError:
                claimed = None  # EvidenceBundle.verify reports it; fall back to a fresh inclusion proof
        origin = log_origin or (claimed.origin if claimed else None)
        text = self.checkpoint()
        try:
            current = verify_checkpoint(text, keyring, origin=origin)
        except NoteError as exc:
            return fail(f"current checkpoint: {exc}", field="checkpoint")
        result["checkpoint"] = {
            "origin": current.origin, "size": current.size, "root": current.root.hex(),
            "signed_by": list(current.verified_key_ids),
        }
        if claimed is not None:
            result.update(method="consistency", leaf_index=registry.get("leaf_index"), tree_size=claimed.size)
            old, new = claimed.size, current.size
            if new < old:
                return fail(f"current checkpoint size {new} is smaller than the bundle's {old}: "
                            "the log was truncated or forked", field="checkpoint")
            if new == old:
                if claimed.root != current.root:
                    return fail(f"same tree size {new} but different roots: the log forked", field="checkpoint")
            else:
                proof = _hex_list(self.consistency_proof(old, new).consistency_proof, "consistency_proof")
                if not merkle.verify_consistency(old, new, claimed.root, current.root, proof):
                    return fail(f"tree size {old} (the bundle's checkpoint) is not a prefix of the current "
                                f"tree size {new}: consistency proof fails", field="consistency_proof")
        else:
            result["method"] = "inclusion"
            try:
                bundle_id = data["bundle_id"]
                leaf = registry_leaf_hash(data)
            except (KeyError, TypeError, ValueError) as exc:
                return fail(f"cannot compute the registry leaf: {exc}", field="registry")
            try:
                entry = self.registry_leaf(str(bundle_id))
            except NotFoundError:
                return fail(f"bundle {bundle_id} is not registered in the log", field="registry")
            index = entry.leaf_index
            if not isinstance(index, int) or isinstance(index, bool):
                return fail(f"bundle {bundle_id} is not registered in the log", field="registry")
            result.update(leaf_index=index, tree_size=current.size)
            if entry.leaf_hash not in (None, leaf.hex()):
                fail(f"the log's leaf {index} ({entry.leaf_hash}) is not this bundle's ({leaf.hex()}): "
                     "the registered bundle differs from this file", field="leaf_hash")
            if index >= current.size:
                return fail(f"leaf {index} is not yet covered by the current checkpoint (size {current.size})",
                            field="checkpoint")
            proof = _hex_list(self.inclusion_proof(index, current.size).inclusion_proof, "inclusion_proof")
            if not merkle.verify_inclusion(leaf, index, current.size, proof, current.root):
                return fail(f"inclusion proof of leaf {index} does not verify against the current checkpoint",
                            field="inclusion_proof")
        result["valid"] = not failures
        return RegistryCheck(result)

    # ---------------------------------------------------------------- reports
    def generate_report(
        self,
        report_type: str = "chargeback",
        start_date: date | datetime | str | None = None,
        end_date: date | datetime | str | None = None,
        group_by: Iterable[str] | None = None,
        format: str = "csv",
    ) -> ChargebackReport:
        """Ask for a report of the key's tenant over whole UTC days ``start_date`` … ``end_date``
        (inclusive). ``group_by``: any of ``tenant``, ``project``, ``backend``, ``tag:<key>``
        (default the first three); ``format``: ``csv``, ``json`` or ``focus`` (FOCUS 1.2 CSV).
        Returns at once; ``.download(path)`` waits for the file. Admins and auditors only."""
        if start_date is None or end_date is None:
            raise ValueError("start_date and end_date are required")
        body: dict[str, Any] = {"report_type": report_type, "start_date": _date_only(start_date),
                                "end_date": _date_only(end_date), "format": format}
        if group_by is not None:
            body["group_by"] = list(group_by)
        return ChargebackReport(self._request("POST", "/reports", json=body), self)

    def get_report(self, report_id: str) -> ChargebackReport:
        return ChargebackReport(self._request("GET", f"/reports/{quote(report_id, safe='')}"), self)

    # --------------------------------------------------------------- plumbing
    def _raw(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, accept: str
    ) -> requests.Response:
        """Like the client's ``_request`` (auth, GET retries, error mapping) but returns the
        successful response undecoded."""
        client = self._client
        if client is None or not hasattr(client, "_session"):
            raise ConfigurationError("NO_CLIENT", "this Ledger is not attached to a QCOSClient")
        from .client import ENV_API_KEY, RETRYABLE_STATUSES  # lazy: client imports this module

        if not client.api_key:
            raise ConfigurationError(
                "MISSING_API_KEY",
                f"no API key: pass api_key=... or set the {ENV_API_KEY} environment variable",
            )
        # "*/*" too: DRF negotiates a renderer (JSON) even for views returning raw bodies,
        # and answers 406 to an Accept header naming only application/zip or text/plain.
        headers = {"Authorization": f"Bearer {client.api_key}", "Accept": f"{accept}, */*;q=0.1"}
        url = client._url(path)
        attempts = 1 + (client.max_retries if method == "GET" else 0)
        for attempt in range(attempts):
            last_try = attempt + 1 >= attempts
            try:
                response = client._session.request(
                    method, url, params=params, headers=headers, timeout=client.request_timeout
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if last_try:
                    raise QCOSConnectionError(message=f"cannot reach QCOS at {client.base_url}: {exc}") from exc
                client._sleep(client._backoff(attempt, None))
                continue
            except requests.RequestException as exc:
                raise QCOSConnectionError(message=f"request to {url} failed: {exc}") from exc
            if response.status_code in RETRYABLE_STATUSES and not last_try:
                client._sleep(client._backoff(attempt, response))
                continue
            if response.ok:
                return response
            try:
                body = response.json() if response.content else None
            except ValueError:
                body = None
            raise error_from_response(response.status_code, body, response.text, response.reason or "")
        raise AssertionError("unreachable")  # pragma: no cover
