"""Chargeback aggregation and the three writers: exact totals for every grouping, the UTC day
boundaries of the range, FOCUS 1.2 columns present and well-typed."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from finops import reports
from finops.models import ChargeStatus
from qcos.errors import ValidationFailed
from tests.conftest import _actor

from .reports_helpers import charge

pytestmark = pytest.mark.django_db

JAN = dict(start_date=date(2026, 1, 1), end_date=date(2026, 1, 31))
GROUPINGS = [list(c) for n in range(4) for c in itertools.permutations(["tenant", "project", "backend"], n)]
GROUPINGS += [["tag:experiment"], ["project", "tag:experiment"], ["tenant", "project", "backend", "tag:grant"]]


def at(day: int, hour: int = 12, month: int = 1, **kw) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC, **kw)


@pytest.fixture
def ledger(alice, carol):
    """Charges over two tenants, three projects, three backends, tags, and some that must not count."""
    made = []
    for i in range(30):
        made.append(charge(
            alice, project=["quantum-ml", "chemistry"][i % 2], backend=["ibm_brisbane", "ionq_aria", "simulator"][i % 3],
            shots=100 * (i + 1), micros=1_234_567 * (i + 1) + i, settled_at=at(1 + i),
            tags={"experiment": ["vqe-h2", "qaoa"][i % 2], **({"grant": "NSF-1"} if i % 5 == 0 else {})},
        ))
    for i in range(5):
        made.append(charge(carol, backend="rigetti_ankaa", shots=10, micros=999_999, settled_at=at(3 + i)))
    # Not costs: released (failed/cancelled), held (still running), settled outside January.
    charge(alice, micros=5_000_000, settled_at=at(5), status=ChargeStatus.RELEASED)
    charge(alice, micros=5_000_000, settled_at=at(5), status=ChargeStatus.HELD)
    charge(alice, micros=7_000_000, settled_at=at(1, 0, month=2))
    charge(alice, micros=7_000_000, settled_at=datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
    return made


def spec(group_by, fmt="csv", **dates):
    return reports.report_spec(report_type="chargeback", group_by=group_by, format=fmt, **(dates or JAN))


@pytest.mark.parametrize("group_by", GROUPINGS, ids=lambda g: ",".join(g) or "none")
def test_totals_equal_the_sum_of_the_charges_for_every_grouping(alice, ledger, group_by):
    mine = [c for c in ledger if c.tenant_id == alice.tenant.pk]
    rows = reports.aggregate(tenant_ids=[alice.tenant.pk], group_by=group_by, **JAN)
    assert reports.totals(rows) == (len(mine), sum(c.shots for c in mine), sum(c.settled_micros for c in mine))
    # Each group's sums are exactly its charges' sums.
    for row in rows:
        members = [c for c in mine if all(_key(c, d) == row.keys[d] for d in group_by)]
        assert (row.jobs, row.shots, row.micros) == (len(members), sum(c.shots for c in members),
                                                     sum(c.settled_micros for c in members))
    # And the CSV says the same, to the micro-dollar.
    parsed = list(csv.DictReader(io.StringIO(reports.build(spec(group_by), tenant_ids=[alice.tenant.pk])
                                             .content.decode())))
    assert sum(Decimal(r["Cost (USD)"]) for r in parsed) == Decimal(sum(c.settled_micros for c in mine)) / 10**6
    assert sum(int(r["Jobs"]) for r in parsed) == len(mine)


def _key(c, dim):
    if dim == "tenant":
        return c.tenant.slug
    if dim == "project":
        return c.project.slug
    if dim == "backend":
        return c.backend
    return c.tags.get(dim.removeprefix("tag:"))


def test_csv_has_the_seed_columns_only_for_the_grouped_dimensions(alice, ledger):
    text = reports.build(spec(["tenant", "project", "backend"]), tenant_ids=[alice.tenant.pk]).content.decode()
    assert text.splitlines()[0] == "Tenant,Project,Backend,Jobs,Shots,Cost (USD)"
    assert text.splitlines()[1].startswith("research-alpha,chemistry,ibm_brisbane,")
    assert reports.build(spec(["backend"]), tenant_ids=[alice.tenant.pk]).content.decode().splitlines()[0] == \
        "Backend,Jobs,Shots,Cost (USD)"
    tagged = reports.build(spec(["tag:grant"]), tenant_ids=[alice.tenant.pk]).content.decode().splitlines()
    assert tagged[0] == "Tag (grant),Jobs,Shots,Cost (USD)"
    assert {line.split(",")[0] for line in tagged[1:]} == {"", "NSF-1"}  # untagged charges are a group too


def test_money_is_exact_and_never_a_float():
    assert reports.money(45_000_000) == "45.00"
    assert reports.money(300_000) == "0.30"
    assert reports.money(1_234_567) == "1.234567"
    assert reports.money(0) == "0.00"
    assert reports.money(10**15 + 1) == "1000000000.000001"


def test_the_range_is_whole_utc_days_end_inclusive(alice):
    edges = {
        "before": datetime(2026, 3, 9, 23, 59, 59, 999999, tzinfo=UTC),
        "first": datetime(2026, 3, 10, 0, 0, tzinfo=UTC),
        "last": datetime(2026, 3, 12, 23, 59, 59, 999999, tzinfo=UTC),
        "after": datetime(2026, 3, 13, 0, 0, tzinfo=UTC),
        # 01:30 on the 13th in UTC+2 is 23:30 on the 12th in UTC: in.
        "offset": datetime(2026, 3, 13, 1, 30, tzinfo=UTC) - timedelta(hours=2),
    }
    for name, moment in edges.items():
        charge(alice, backend=name, micros=1_000_000, settled_at=moment)
    rows = reports.aggregate(tenant_ids=[alice.tenant.pk], group_by=["backend"],
                             start_date=date(2026, 3, 10), end_date=date(2026, 3, 12))
    assert {r.keys["backend"] for r in rows} == {"first", "last", "offset"}
    assert reports.report_window(date(2026, 3, 10), date(2026, 3, 12)) == (
        datetime(2026, 3, 10, tzinfo=UTC), datetime(2026, 3, 13, tzinfo=UTC))


def test_a_tenant_scope_sees_only_that_tenant(alice, carol, ledger):
    rows = reports.aggregate(tenant_ids=[carol.tenant.pk], group_by=["tenant", "backend"], **JAN)
    assert [(r.keys["tenant"], r.keys["backend"], r.jobs, r.micros) for r in rows] == [
        ("research-beta", "rigetti_ankaa", 5, 5 * 999_999)]
    everyone = reports.aggregate(tenant_ids=None, group_by=["tenant"], **JAN)
    assert [r.keys["tenant"] for r in everyone] == ["research-alpha", "research-beta"]


def test_json_carries_rows_and_exact_totals(alice, ledger):
    doc = json.loads(reports.build(spec(["project", "tag:experiment"], "json"), tenant_ids=[alice.tenant.pk],
                                   tenant_id="research-alpha").content)
    mine = [c for c in ledger if c.tenant_id == alice.tenant.pk]
    assert doc["totals"] == {"jobs": 30, "shots": sum(c.shots for c in mine),
                             "cost_usd": reports.money(sum(c.settled_micros for c in mine))}
    assert doc["period"] == {"start": "2026-01-01T00:00:00Z", "end": "2026-02-01T00:00:00Z"}
    assert set(doc["rows"][0]) == {"project", "tag:experiment", "jobs", "shots", "cost_usd"}
    assert all(isinstance(r["cost_usd"], str) for r in doc["rows"])


ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
DECIMAL = re.compile(r"^-?\d+\.\d+$")


def test_focus_has_every_mandatory_column_well_typed(alice, ledger):
    content = reports.build(spec(["tenant", "project", "backend", "tag:experiment"], "focus"),
                            tenant_ids=[alice.tenant.pk]).content.decode()
    parsed = list(csv.DictReader(io.StringIO(content)))
    columns = set(parsed[0])
    assert set(reports.FOCUS_MANDATORY) <= columns
    assert {"x_TenantId", "x_ProjectId", "x_Backend", "ServiceSubcategory"} <= columns
    assert all(c.startswith("x_") for c in columns - set(reports.FOCUS_MANDATORY) - set(reports.FOCUS_OPTIONAL))
    mine = [c for c in ledger if c.tenant_id == alice.tenant.pk]
    assert sum(Decimal(r["BilledCost"]) for r in parsed) == Decimal(sum(c.settled_micros for c in mine)) / 10**6
    for row in parsed:
        for name in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost"):
            assert DECIMAL.match(row[name]) and Decimal(row[name]) >= 0, (name, row[name])
        for name in ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"):
            assert ISO_UTC.match(row[name]), (name, row[name])
        start = datetime.fromisoformat(row["ChargePeriodStart"])
        assert datetime.fromisoformat(row["ChargePeriodEnd"]) - start == timedelta(days=1)
        assert row["BillingPeriodStart"] == "2026-01-01T00:00:00Z" and row["BillingPeriodEnd"] == "2026-02-01T00:00:00Z"
        assert row["ChargeCategory"] == "Usage" and row["ChargeClass"] == ""
        assert row["BillingCurrency"] == "USD" and row["PricingUnit"] == "Shots"
        assert int(row["PricingQuantity"]) >= 0 and int(row["x_Jobs"]) >= 1
        assert row["ServiceCategory"] == "Compute" and row["ServiceSubcategory"] == "Quantum Compute"
        assert row["BillingAccountId"] == row["x_TenantId"] == "research-alpha"
        assert row["SubAccountId"] == row["x_ProjectId"]
        assert json.loads(row["Tags"])["experiment"] in {"vqe-h2", "qaoa"}
        assert row["ChargeDescription"] and row["InvoiceIssuerName"] and row["PublisherName"]
    providers = {(r["x_Backend"], r["ProviderName"], r["ServiceName"], r["PublisherName"]) for r in parsed}
    assert providers == {("ibm_brisbane", "IBM", "IBM Quantum", "IBM"),
                         ("ionq_aria", "Microsoft", "Azure Quantum", "IonQ"),
                         ("simulator", "QCOS", "QCOS Simulators", "QCOS")}


def test_focus_rows_are_per_utc_day(alice):
    charge(alice, micros=1_000_000, settled_at=datetime(2026, 1, 5, 0, 0, tzinfo=UTC))
    charge(alice, micros=2_000_000, settled_at=datetime(2026, 1, 5, 23, 59, 59, tzinfo=UTC))
    charge(alice, micros=4_000_000, settled_at=datetime(2026, 1, 6, 0, 0, tzinfo=UTC))
    parsed = list(csv.DictReader(io.StringIO(reports.build(spec([], "focus"), tenant_ids=[alice.tenant.pk])
                                             .content.decode())))
    assert [(r["ChargePeriodStart"], r["BilledCost"], r["x_Jobs"]) for r in parsed] == [
        ("2026-01-05T00:00:00Z", "3.00", "2"), ("2026-01-06T00:00:00Z", "4.00", "1")]


@pytest.mark.parametrize(("kwargs", "code"), [
    (dict(report_type="invoice"), "UNKNOWN_REPORT_TYPE"),
    (dict(format="xlsx"), "UNKNOWN_FORMAT"),
    (dict(group_by=["region"]), "INVALID_GROUP_BY"),
    (dict(group_by=["tag:"]), "INVALID_GROUP_BY"),
    (dict(group_by=["tag:a b"]), "INVALID_GROUP_BY"),
    (dict(group_by=["project", "project"]), "INVALID_GROUP_BY"),
    (dict(start_date=date(2026, 2, 1), end_date=date(2026, 1, 31)), "INVALID_DATE_RANGE"),
    (dict(start_date=date(2025, 1, 1), end_date=date(2026, 1, 2)), "DATE_RANGE_TOO_LONG"),
])
def test_bad_requests_have_stable_codes(kwargs, code):
    params = {"report_type": "chargeback", "format": "csv", "group_by": None, **JAN, **kwargs}
    with pytest.raises(ValidationFailed) as caught:
        reports.report_spec(**params)
    assert caught.value.code == code


def test_a_whole_leap_year_is_allowed():
    assert reports.report_spec(report_type="chargeback", format="csv", group_by=None,
                               start_date=date(2028, 1, 1), end_date=date(2028, 12, 31)).group_by == \
        ("tenant", "project", "backend")


def test_an_auditor_of_another_tenant_is_just_another_actor(db):
    # Sanity for the API tests: _actor makes members with any role.
    auditor = _actor("research-alpha", "aude@alpha.example", "auditor")
    assert auditor.tenant.slug == "research-alpha"


def test_tag_keys_with_dots_and_dashes(alice):
    charge(alice, micros=1_000_000, settled_at=at(3), tags={"cost-center.v2": "cc-7", "cost-center": "other"})
    charge(alice, micros=2_000_000, settled_at=at(4), tags={"cost-center.v2": "cc-7"})
    charge(alice, micros=4_000_000, settled_at=at(5), tags={"cost-center": {"v2": "nested, not the key"}})
    rows = reports.aggregate(tenant_ids=[alice.tenant.pk], group_by=["tag:cost-center.v2"], **JAN)
    assert [(r.keys["tag:cost-center.v2"], r.micros) for r in rows] == [(None, 4_000_000), ("cc-7", 3_000_000)]
