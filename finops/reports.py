"""Chargeback reports: one GROUP BY over settled charges, and writers for CSV, JSON and FOCUS 1.2.

What a report counts: the SETTLED charges (jobs and benchmark runs) whose ``settled_at`` falls in
``[start_date 00:00 UTC, end_date + 1 day 00:00 UTC)``, so ``end_date`` is inclusive and a charge
settled at 23:59:59.999999 UTC on the last day is in, one settled at midnight is in the next
report. Released charges (failed, cancelled, rejected jobs) cost nothing and are not counted; held
ones are not yet costs. Money is summed in SQL as integer micro-dollars and written as exact
decimals: no float ever touches a cost.

Aggregation is one ``GROUP BY`` on the database (PostgreSQL or SQLite), grouped by integer ids and
the backend name; the few group keys are turned into slugs afterwards, so the scan stays narrow
however many charges there are.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, F, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import TruncDate

from qcos.errors import ValidationFailed
from qcos.tenancy.models import Project, Tenant

from .catalog import BACKENDS
from .models import Charge, ChargeStatus, usd

REPORT_TYPES = ("chargeback",)
DIMENSIONS = ("tenant", "project", "backend")
DEFAULT_GROUP_BY = DIMENSIONS
TAG_PREFIX = "tag:"
FORMATS = ("csv", "json", "focus")
# A year and a day covers any calendar year and a leap day; longer ranges are several reports.
MAX_RANGE_DAYS = 366
_TAG_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "focus": "text/csv; charset=utf-8",
                 "json": "application/json"}
EXTENSIONS = {"csv": "csv", "focus": "focus.csv", "json": "json"}


# --- the request ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportSpec:
    """A validated report request. ``group_by`` keeps the caller's order (it is the column order)."""

    report_type: str
    start_date: date
    end_date: date
    group_by: tuple[str, ...]
    format: str

    @property
    def window(self) -> tuple[datetime, datetime]:
        return report_window(self.start_date, self.end_date)


def report_window(start_date: date, end_date: date) -> tuple[datetime, datetime]:
    """``[start_date 00:00 UTC, end_date + 1 day 00:00 UTC)``: whole UTC days, end inclusive."""
    return (datetime.combine(start_date, time.min, tzinfo=UTC),
            datetime.combine(end_date + timedelta(days=1), time.min, tzinfo=UTC))


def report_spec(
    *, report_type: str, start_date: date, end_date: date, group_by: Sequence[str] | None, format: str
) -> ReportSpec:
    """Check a request; raises ``ValidationFailed`` with a stable code, before anything is written."""
    if report_type not in REPORT_TYPES:
        raise ValidationFailed(f"unknown report_type {report_type!r}", code="UNKNOWN_REPORT_TYPE",
                               details={"report_type": report_type, "available": list(REPORT_TYPES)})
    if format not in FORMATS:
        raise ValidationFailed(f"unknown format {format!r}", code="UNKNOWN_FORMAT",
                               details={"format": format, "available": list(FORMATS)})
    if end_date < start_date:
        raise ValidationFailed("end_date is before start_date", code="INVALID_DATE_RANGE",
                               details={"start_date": start_date.isoformat(), "end_date": end_date.isoformat()})
    days = (end_date - start_date).days + 1
    if days > MAX_RANGE_DAYS:
        raise ValidationFailed(f"the range covers {days} days; the maximum is {MAX_RANGE_DAYS}",
                               code="DATE_RANGE_TOO_LONG", details={"days": days, "max_days": MAX_RANGE_DAYS})
    dims = tuple(DEFAULT_GROUP_BY if group_by is None else group_by)
    for dim in dims:
        if dim in DIMENSIONS:
            continue
        if not (isinstance(dim, str) and dim.startswith(TAG_PREFIX) and _TAG_KEY.match(dim[len(TAG_PREFIX):])):
            raise ValidationFailed(
                f"cannot group by {dim!r}: use {', '.join(DIMENSIONS)} or tag:<key> (letters, digits, _ . -)",
                code="INVALID_GROUP_BY", details={"group_by": dim, "available": [*DIMENSIONS, "tag:<key>"]},
            )
    if len(set(dims)) != len(dims):
        raise ValidationFailed("group_by lists a dimension twice", code="INVALID_GROUP_BY",
                               details={"group_by": list(dims)})
    return ReportSpec(report_type, start_date, end_date, dims, format)


# --- aggregation ---------------------------------------------------------------------------------


@dataclass
class ReportRow:
    """One group: its keys (dimension → slug, backend name or tag value; None for a missing tag),
    the UTC day for FOCUS rows, and exact sums."""

    keys: dict[str, str | None]
    jobs: int
    shots: int
    micros: int
    day: date | None = None
    names: dict[str, str] = field(default_factory=dict)  # tenant / project display names (FOCUS)

    @property
    def cost_usd(self) -> Decimal:
        return usd(self.micros)  # type: ignore[return-value]


def aggregate(
    *, tenant_ids: Iterable[int] | None, start_date: date, end_date: date, group_by: Sequence[str],
    by_day: bool = False,
) -> list[ReportRow]:
    """Sum settled charges per group in one SQL statement.

    ``tenant_ids`` None means every tenant (operators only: the API always passes the caller's
    tenant). ``by_day`` adds the UTC day of settlement as a key (FOCUS charge periods).
    """
    start, end = report_window(start_date, end_date)
    charges = Charge.objects.filter(status=ChargeStatus.SETTLED, settled_at__gte=start, settled_at__lt=end)
    if tenant_ids is not None:
        charges = charges.filter(tenant_id__in=list(tenant_ids))
    columns: dict[str, str] = {}
    annotations = {}
    for index, dim in enumerate(group_by):
        if dim == "tenant":
            columns[dim] = "tenant_id"
        elif dim == "project":
            columns[dim] = "project_id"
        elif dim == "backend":
            columns[dim] = "backend"
        else:
            alias = f"tag_{index}"
            annotations[alias] = KeyTextTransform(dim[len(TAG_PREFIX):], "tags")
            columns[dim] = alias
    if by_day:
        annotations["day"] = TruncDate("settled_at", tzinfo=UTC)
    if annotations:
        charges = charges.annotate(**annotations)
    keys = [*columns.values(), *(["day"] if by_day else [])]
    sums = {"n_jobs": Count("*"), "n_shots": Sum("shots"), "n_micros": Sum(F("settled_micros"))}
    if keys:
        # A plain fetch, not .iterator(): PostgreSQL plans server-side cursors for the first rows
        # and without parallel workers, and a report has few groups however many charges.
        raw = list(charges.values(*keys).annotate(**sums).order_by())
    else:  # no grouping: one total row (none when nothing was settled)
        raw = [total] if (total := charges.aggregate(**sums))["n_jobs"] else []
    tenants = _names(Tenant, {r["tenant_id"] for r in raw if "tenant_id" in r})
    projects = _names(Project, {r["project_id"] for r in raw if "project_id" in r})
    rows = []
    for record in raw:
        row_keys: dict[str, str | None] = {}
        names: dict[str, str] = {}
        for dim, column in columns.items():
            value = record[column]
            if dim == "tenant":
                value, names["tenant"] = tenants[value]
            elif dim == "project":
                value, names["project"] = projects[value]
            row_keys[dim] = value
        rows.append(ReportRow(
            keys=row_keys, jobs=int(record["n_jobs"]), shots=int(record["n_shots"] or 0),
            micros=int(record["n_micros"] or 0), day=_as_date(record["day"]) if by_day else None, names=names,
        ))
    rows.sort(key=lambda r: (*(("" if r.keys[d] is None else r.keys[d]) for d in group_by), r.day or date.min))
    return rows


def _names(model, ids: set[int]) -> dict[int, tuple[str, str]]:
    if not ids:
        return {}
    return {pk: (slug, name or slug) for pk, slug, name in model.objects.filter(pk__in=ids).values_list("pk", "slug", "name")}


def _as_date(value) -> date:
    # SQLite hands TruncDate back as a string on some Django versions.
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def totals(rows: Iterable[ReportRow]) -> tuple[int, int, int]:
    jobs = shots = micros = 0
    for row in rows:
        jobs, shots, micros = jobs + row.jobs, shots + row.shots, micros + row.micros
    return jobs, shots, micros


# --- writers -------------------------------------------------------------------------------------


def money(micros: int) -> str:
    """Exact USD: at least two decimals, more only when the micro-dollars need them (45.00, 0.000123)."""
    amount = usd(micros)
    cents = amount.quantize(Decimal("0.01"))
    return f"{cents:f}" if cents == amount else f"{amount.normalize():f}"


def _header(dim: str) -> str:
    return dim.capitalize() if dim in DIMENSIONS else f"Tag ({dim[len(TAG_PREFIX):]})"


def write_csv(rows: Sequence[ReportRow], spec: ReportSpec) -> bytes:
    """The Ledger seed's columns: the grouped dimensions, then Jobs, Shots, Cost (USD)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*(_header(d) for d in spec.group_by), "Jobs", "Shots", "Cost (USD)"])
    for row in rows:
        writer.writerow([*(row.keys[d] or "" for d in spec.group_by), row.jobs, row.shots, money(row.micros)])
    return out.getvalue().encode("utf-8")


def write_json(rows: Sequence[ReportRow], spec: ReportSpec, *, tenant_id: str | None) -> bytes:
    jobs, shots, micros = totals(rows)
    start, end = spec.window
    document = {
        "report_type": spec.report_type,
        "tenant_id": tenant_id,
        "start_date": spec.start_date.isoformat(),
        "end_date": spec.end_date.isoformat(),
        "period": {"start": _iso(start), "end": _iso(end)},
        "group_by": list(spec.group_by),
        "currency": "USD",
        "rows": [{**{d: row.keys[d] for d in spec.group_by}, "jobs": row.jobs, "shots": row.shots,
                  "cost_usd": money(row.micros)} for row in rows],
        "totals": {"jobs": jobs, "shots": shots, "cost_usd": money(micros)},
    }
    return json.dumps(document, indent=1, ensure_ascii=False).encode("utf-8")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# FOCUS 1.2 (REFERENCE.md §2). ProviderName: who sells the capacity; ServiceName: the offering;
# PublisherName: who built the device (IonQ sells through Azure and Braket alike).
PROVIDERS = {
    "local": ("QCOS", "QCOS Simulators"),
    "ibm_quantum": ("IBM", "IBM Quantum"),
    "aws_braket": ("AWS", "Amazon Braket"),
    "azure_quantum": ("Microsoft", "Azure Quantum"),
}
_PUBLISHERS = (("ionq", "IonQ"), ("rigetti", "Rigetti"), ("quantinuum", "Quantinuum"), ("iqm", "IQM"),
               ("ibm", "IBM"), ("braket_", "AWS"))

FOCUS_MANDATORY = (
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodStart",
    "BillingPeriodEnd", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodStart",
    "ChargePeriodEnd", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingQuantity",
    "PricingUnit", "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
)
FOCUS_OPTIONAL = ("ChargeFrequency", "ConsumedQuantity", "ConsumedUnit", "ServiceSubcategory", "SubAccountId",
                  "SubAccountName", "Tags")
FOCUS_CUSTOM = ("x_TenantId", "x_ProjectId", "x_Backend", "x_Jobs")
FOCUS_COLUMNS = FOCUS_MANDATORY + FOCUS_OPTIONAL + FOCUS_CUSTOM
# FOCUS rows always split by tenant (billing account), project (sub-account) and backend (provider,
# service and publisher depend on it), per UTC day (the charge period); tag dimensions split further.
FOCUS_GROUP_BY = DIMENSIONS


def focus_group_by(spec: ReportSpec) -> tuple[str, ...]:
    return FOCUS_GROUP_BY + tuple(d for d in spec.group_by if d.startswith(TAG_PREFIX))


def backend_parties(backend: str) -> tuple[str, str, str]:
    """``(ProviderName, ServiceName, PublisherName)`` of a backend; unknown ones (e.g. benchmark
    fake devices) run locally and are QCOS's own."""
    spec = BACKENDS.get(backend)
    provider, service = PROVIDERS.get(spec.provider if spec else "local", PROVIDERS["local"])
    publisher = next((name for prefix, name in _PUBLISHERS if backend.startswith(prefix)), provider)
    return provider, service, publisher


def _month(day: date) -> tuple[datetime, datetime]:
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return datetime.combine(first, time.min, tzinfo=UTC), datetime.combine(following, time.min, tzinfo=UTC)


def write_focus(rows: Sequence[ReportRow], spec: ReportSpec) -> bytes:
    """FOCUS 1.2 CSV: one row per tenant × project × backend (× tag) per UTC day of settlement."""
    tag_dims = [d for d in spec.group_by if d.startswith(TAG_PREFIX)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FOCUS_COLUMNS)
    for row in rows:
        assert row.day is not None
        provider, service, publisher = backend_parties(row.keys["backend"] or "")
        cost = money(row.micros)
        day_start = datetime.combine(row.day, time.min, tzinfo=UTC)
        month_start, month_end = _month(row.day)
        tags = {d[len(TAG_PREFIX):]: row.keys[d] for d in tag_dims if row.keys[d] is not None}
        values = {
            "BilledCost": cost, "ContractedCost": cost, "EffectiveCost": cost, "ListCost": cost,
            "BillingAccountId": row.keys["tenant"], "BillingAccountName": row.names.get("tenant", row.keys["tenant"]),
            "BillingCurrency": "USD",
            "BillingPeriodStart": _iso(month_start), "BillingPeriodEnd": _iso(month_end),
            "ChargeCategory": "Usage", "ChargeClass": "", "ChargeFrequency": "Usage-Based",
            "ChargeDescription": f"{row.jobs} quantum job(s), {row.shots} shots on {row.keys['backend']}",
            "ChargePeriodStart": _iso(day_start), "ChargePeriodEnd": _iso(day_start + timedelta(days=1)),
            "InvoiceIssuerName": provider, "ProviderName": provider, "PublisherName": publisher,
            "PricingQuantity": row.shots, "PricingUnit": "Shots",
            "ConsumedQuantity": row.shots, "ConsumedUnit": "Shots",
            "ServiceCategory": "Compute", "ServiceSubcategory": "Quantum Compute", "ServiceName": service,
            "SubAccountId": row.keys["project"], "SubAccountName": row.names.get("project", row.keys["project"]),
            "Tags": json.dumps(tags, sort_keys=True, separators=(",", ":")) if tags else "",
            "x_TenantId": row.keys["tenant"], "x_ProjectId": row.keys["project"], "x_Backend": row.keys["backend"],
            "x_Jobs": row.jobs,
        }
        writer.writerow([values[c] for c in FOCUS_COLUMNS])
    return out.getvalue().encode("utf-8")


# --- one call --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltReport:
    content: bytes
    rows: int


def build(spec: ReportSpec, *, tenant_ids: Iterable[int] | None, tenant_id: str | None = None) -> BuiltReport:
    """Aggregate and write ``spec`` for ``tenant_ids`` (None: every tenant)."""
    if spec.format == "focus":
        rows = aggregate(tenant_ids=tenant_ids, start_date=spec.start_date, end_date=spec.end_date,
                         group_by=focus_group_by(spec), by_day=True)
        return BuiltReport(write_focus(rows, spec), len(rows))
    rows = aggregate(tenant_ids=tenant_ids, start_date=spec.start_date, end_date=spec.end_date,
                     group_by=spec.group_by)
    if spec.format == "json":
        return BuiltReport(write_json(rows, spec, tenant_id=tenant_id), len(rows))
    return BuiltReport(write_csv(rows, spec), len(rows))
