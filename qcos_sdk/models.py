"""Read-only views over the server's JSON representations.

The server may add fields at any time, so these models do not validate or
drop anything: every key of the payload is reachable as an attribute, and the
untouched payload stays available as ``.raw``. Fields the contract documents
but the server omitted read as ``None`` (so ``job.cost_breakdown`` is ``None``
before costing ran), whereas a misspelt attribute still raises
``AttributeError`` instead of silently returning ``None``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import Any, ClassVar


class JobStatus(StrEnum):
    """Job statuses documented by the API (the server may add more later)."""

    PENDING_APPROVAL = "PENDING_APPROVAL"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"


TERMINAL_STATUSES: frozenset[str] = frozenset(
    {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.REJECTED}
)


class Record(Mapping[str, Any]):
    """Immutable attribute-and-key view over one JSON object.

    Subclasses declare ``_fields`` (documented keys that read as ``None`` when
    absent) and ``_nested`` (keys whose object values get their own view
    class, which is what makes ``job.cost_breakdown.compute`` work). Other
    values are returned exactly as decoded, so ``counts``/``tags`` stay plain
    dicts.
    """

    _fields: ClassVar[frozenset[str]] = frozenset()
    _nested: ClassVar[dict[str, type[Record]]] = {}

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_data", dict(data))

    @property
    def raw(self) -> dict[str, Any]:
        """The payload exactly as the server sent it (a shallow copy)."""
        return dict(self._data)

    def to_dict(self) -> dict[str, Any]:
        """Alias of :attr:`raw`, handy for ``json.dumps``."""
        return self.raw

    def _value(self, name: str) -> Any:
        value = self._data[name]
        view = self._nested.get(name)
        if view is not None and isinstance(value, Mapping):
            return view(value)
        return value

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup failed, so methods/properties win.
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self._value(name)
        except KeyError:
            if name in self._fields:
                return None
            raise AttributeError(
                f"{type(self).__name__!s} has no field {name!r}"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __getitem__(self, key: str) -> Any:
        return self._value(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._data) | self._fields)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Record):
            return type(self) is type(other) and self._data == other._data
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-looking payload; not hashable

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data!r})"


class JobTimings(Record):
    """``timings`` block: ISO timestamps and millisecond durations."""

    _fields = frozenset(
        {"submitted_at", "started_at", "completed_at", "queue_ms", "execution_ms", "total_ms"}
    )


class CostBreakdown(Record):
    """``job.cost_breakdown`` and ``estimate.breakdown``: ``queue`` (priority surcharge),
    ``compute`` (the provider's charge), ``storage`` (evidence storage), as Decimals in USD."""

    _fields = frozenset({"queue", "compute", "storage"})

    @property
    def queue(self) -> Any:
        return _decimal(self._data.get("queue"))

    @property
    def compute(self) -> Any:
        return _decimal(self._data.get("compute"))

    @property
    def storage(self) -> Any:
        return _decimal(self._data.get("storage"))


class JobError(Record):
    """``error`` block of a FAILED/REJECTED job."""

    _fields = frozenset({"code", "message", "details"})


class Job(Record):
    """A job as returned by submit/get/list/cancel.

    ``execute`` returns this too: a FAILED job is a normal result (inspect
    ``status`` and ``error``), not an exception, because the request itself
    succeeded.
    """

    _fields = frozenset(
        {
            "job_id", "status", "tenant_id", "project", "backend", "shots",
            "priority", "tags", "ledger_enabled", "circuit_hash", "counts",
            "attempts", "error", "timings", "provenance_id", "cost_usd",
            "cost_breakdown", "estimated_cost_usd", "price_sheet", "submitted_by", "warning",
        }
    )
    _nested = {"timings": JobTimings, "cost_breakdown": CostBreakdown, "error": JobError}

    @property
    def cost_usd(self) -> Any:
        """Settled cost (Decimal) once COMPLETED, else None."""
        return _decimal(self._data.get("cost_usd"))

    @property
    def estimated_cost_usd(self) -> Any:
        """The estimate reserved against the budget at submit (Decimal)."""
        return _decimal(self._data.get("estimated_cost_usd"))

    @property
    def is_terminal(self) -> bool:
        """True once the status can no longer change."""
        return self._data.get("status") in TERMINAL_STATUSES


# Backwards-friendly name used in the product docs ("result = client.execute(...)").
JobResult = Job


def _decimal(value: Any) -> Any:
    from decimal import Decimal

    return None if value is None else Decimal(str(value))


# An estimate's breakdown has the same three parts as a job's cost breakdown.
MoneyBreakdown = CostBreakdown


class CostEstimate(Record):
    """``client.estimate_cost(...)``: money as :class:`~decimal.Decimal` (the server sends strings,
    so no cent is lost), e.g. ``f"${estimate.cost_usd:.4f}"``; ``.raw`` keeps the JSON as sent."""

    _fields = frozenset({"cost_usd", "currency", "breakdown", "price_sheet_id", "price_sheet_version", "backend",
                         "tier", "inputs", "formula", "estimated_queue_minutes"})
    _nested: ClassVar[dict[str, type[Record]]] = {"breakdown": MoneyBreakdown}

    @property
    def cost_usd(self) -> Any:
        return _decimal(self._data.get("cost_usd"))


class BudgetCheck(Record):
    """``client.check_budget(...)``: ``can_proceed``, ``message``, ``remaining_usd`` (Decimal, or
    None when no budget applies), ``requires_approval`` and the ``windows`` looked at."""

    _fields = frozenset({"can_proceed", "message", "remaining_usd", "requires_approval", "windows"})

    @property
    def remaining_usd(self) -> Any:
        return _decimal(self._data.get("remaining_usd"))


REPORT_FINISHED_STATUSES: frozenset[str] = frozenset({"READY", "FAILED"})


class Report(Record):
    """A chargeback report as the server describes it (``GET /reports/{id}``): ``status``
    (PENDING, RUNNING, READY, FAILED), ``rows``, ``download_url`` once READY, ``content_sha256``,
    ``error`` when FAILED. ``client.ledger.generate_report`` returns one that can also
    ``wait()`` and ``download(path)``."""

    _fields = frozenset({"id", "report_type", "tenant_id", "start_date", "end_date", "group_by", "format", "status",
                         "rows", "content_sha256", "error", "created_at", "completed_at", "download_url"})

    @property
    def is_finished(self) -> bool:
        return self._data.get("status") in REPORT_FINISHED_STATUSES
