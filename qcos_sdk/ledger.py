"""``client.ledger``: the audit log (and, as they land, evidence bundles and reports)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime
from typing import Any, ClassVar

from .models import Record


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


def _day(value: date | datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


class Ledger:
    """Grouped ledger endpoints; built by :class:`~qcos_sdk.client.QCOSClient`."""

    def __init__(self, request) -> None:
        self._request = request

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
