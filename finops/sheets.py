"""Price sheets from the database: the versions the admin publishes, read through a small
per-process cache.

A version is never edited (see ``finops.models.PriceSheetVersion``), so caching is safe for the
versions themselves; what can change is which version is *current*. The cache is dropped in this
process whenever a version is saved and is reloaded by every process at most ``TTL_SECONDS`` later,
so a price published in the admin prices new jobs everywhere within a minute. Estimates are stamped
with the version that priced them and settled with exactly that version.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime

from django.db import transaction
from django.db.models import Max
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .catalog import DEFAULT_SHEETS, PriceSheet
from .models import PriceSheetVersion

TTL_SECONDS = 60.0

_lock = threading.Lock()
_cache: dict[str, list[PriceSheet]] | None = None
_loaded_at = 0.0


def row_to_sheet(row: PriceSheetVersion) -> PriceSheet:
    return PriceSheet.from_dict(
        {
            "sheet_id": row.sheet_id,
            "version": str(row.version),
            "family": row.family,
            "effective_from": row.effective_from.isoformat(),
            "parameters": row.parameters,
            "notes": row.notes,
        }
    )


def _sheets() -> dict[str, list[PriceSheet]]:
    global _cache, _loaded_at
    with _lock:
        if _cache is None or time.monotonic() - _loaded_at > TTL_SECONDS:
            # The catalogue's published figures are every sheet's version 1 (the seed migration
            # copies them into the table); rows in the table win for the same version.
            by_key = {sheet.key: sheet for sheet in DEFAULT_SHEETS}
            for row in PriceSheetVersion.objects.order_by("sheet_id", "version"):
                sheet = row_to_sheet(row)
                by_key[sheet.key] = sheet
            table: dict[str, list[PriceSheet]] = {}
            for sheet in by_key.values():
                table.setdefault(sheet.sheet_id, []).append(sheet)
            _cache, _loaded_at = table, time.monotonic()
        return _cache


def sheet_current(sheet_id: str, on: date | None = None) -> PriceSheet:
    """The version in force on ``on`` (UTC today by default): the latest ``effective_from``, and
    of versions effective the same day, the highest version number."""
    day = on or datetime.now(UTC).date()
    candidates = [s for s in _sheets().get(sheet_id, []) if s.effective_from <= day]
    if not candidates:
        raise LookupError(f"no price sheet {sheet_id} in force on {day.isoformat()}")
    return max(candidates, key=lambda s: (s.effective_from, int(s.version)))


def sheet_get(sheet_id: str, version: str) -> PriceSheet:
    for sheet in _sheets().get(sheet_id, []):
        if sheet.version == str(version):
            return sheet
    row = PriceSheetVersion.objects.filter(sheet_id=sheet_id, version=int(version)).first()
    if row is None:
        raise LookupError(f"no price sheet {sheet_id} version {version}")
    return row_to_sheet(row)


def sheet_validate(*, sheet_id: str, family: str, effective_from: date, parameters: dict, notes: str = "") -> None:
    """Raise ValueError (or TypeError, ArithmeticError) unless the fields make a valid price sheet
    (known family, every price its formula needs, finite Decimals >= 0, no floats)."""
    PriceSheet.from_dict({"sheet_id": sheet_id, "version": "0", "family": family,
                          "effective_from": effective_from.isoformat(), "parameters": parameters, "notes": notes})


def sheet_publish(*, sheet_id: str, family: str, effective_from: date, parameters: dict, notes: str = "",
                  user=None) -> PriceSheetVersion:
    """Publish the next version of ``sheet_id`` (version + 1). Versions are never edited, so every
    estimate and charge stamped with an earlier version can still be re-priced."""
    sheet_validate(sheet_id=sheet_id, family=family, effective_from=effective_from, parameters=parameters, notes=notes)
    with transaction.atomic():
        latest = (PriceSheetVersion.objects.select_for_update().filter(sheet_id=sheet_id)
                  .aggregate(v=Max("version"))["v"]) or 0
        return PriceSheetVersion.objects.create(
            sheet_id=sheet_id, version=latest + 1, family=family, effective_from=effective_from,
            parameters=parameters, notes=notes, created_by=user,
        )


def sheets_forget() -> None:
    global _cache
    with _lock:
        _cache = None


@receiver(post_save, sender=PriceSheetVersion)
@receiver(post_delete, sender=PriceSheetVersion)
def _price_sheet_changed(**kwargs) -> None:
    sheets_forget()
