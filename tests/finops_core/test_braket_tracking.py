"""Our Braket prices agree with the Braket SDK's own cost tracker for the same task.

``braket.tracking.Tracker`` prices tasks it hears about through ``tracking_context`` using the AWS
Price List CSV, which ``braket.tracking.pricing.Pricing.get_prices`` downloads. Only that download
is replaced: a fake HTTP client serves a CSV in the AWS offer-file layout (five metadata rows, then
the header) carrying the prices of *our* price sheets, so both sides price with the same figures
and any difference is a difference in the formulas (task fee, shot fee, 3 s minimum, per-ms proration).
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

import pytest
from braket.tracking import pricing as braket_pricing
from braket.tracking import tracker as braket_tracker
from braket.tracking.tracker import Tracker
from braket.tracking.tracking_context import broadcast_event
from braket.tracking.tracking_events import _TaskCompletionEvent, _TaskCreationEvent
from qiskit import QuantumCircuit

from finops.catalog import BACKENDS, current_sheet
from finops.formulas import actual_charge
from finops.pricing import MICRO, actual_cost, estimate

QPUS = [name for name, b in BACKENDS.items() if b.provider == "aws_braket" and "/qpu/" in b.target]
SIMULATORS = [name for name, b in BACKENDS.items() if b.provider == "aws_braket" and "simulator" in b.target]
COLUMNS = ["Product Family", "Region Code", "DeviceName", "Device Name", "Version", "operation", "Unit", "Currency"]


class _Body(io.BytesIO):
    auto_close = True  # urllib3's HTTPResponse attribute, set by Pricing.get_prices


class _FakeHttp:
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.urls: list[str] = []

    def request(self, method: str, url: str, preload_content: bool = True) -> _Body:
        self.urls.append(url)
        return _Body(self.body)


def _region(name: str) -> str:
    return BACKENDS[name].target.split(":")[3] or "us-east-1"  # simulators are global; tasks are regional


def _offer_file() -> bytes:
    """An AWS Price List CSV with one row per product the tracker looks up, priced from our sheets."""
    rows = []
    for name in QPUS:
        prices = current_sheet(BACKENDS[name].sheet_id).parameters
        device = BACKENDS[name].target.split("/")[-1]
        base = {"Region Code": _region(name), "DeviceName": device, "Currency": "USD", "Unit": "Shots"}
        rows.append({**base, "Product Family": "Quantum Task-Shot", "PricePerUnit": str(prices["per_shot_usd"])})
        rows.append(
            {**base, "Product Family": "Quantum Task", "Unit": "Tasks", "PricePerUnit": str(prices["per_task_usd"])}
        )
    for name in SIMULATORS:
        prices = current_sheet(BACKENDS[name].sheet_id).parameters
        rows.append(
            {
                "Product Family": "Simulator Task",
                "Region Code": _region(name),
                "Version": BACKENDS[name].target.split("/")[-1].upper(),
                "operation": "CompleteTask",
                "Unit": "minutes",  # read by the tracker as timedelta(minutes=1)
                "Currency": "USD",
                "PricePerUnit": str(prices["per_minute_usd"]),
            }
        )
    text = io.StringIO()
    text.write("FormatVersion,v1.0\nDisclaimer,test\nPublication Date,2025-01-01\nVersion,1\nOfferCode,AmazonBraket\n")
    writer = csv.DictWriter(text, fieldnames=["PricePerUnit", *COLUMNS], restval="")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue().encode()


@pytest.fixture
def fake_price_list(monkeypatch):
    http = _FakeHttp(_offer_file())
    monkeypatch.setattr(braket_pricing, "_http_client", lambda url: http)
    fresh = braket_pricing.Pricing()  # its own lru_cache: nothing leaks into other tests
    monkeypatch.setattr(braket_tracker, "price_search", fresh.price_search)
    return http


def _asked_for_prices(http: _FakeHttp) -> bool:
    """The tracker fetched its price list (through our fake): the comparison is not vacuous."""
    return http.urls == ["https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonBraket/current/index.csv"]


def _track(name: str, shots: int, duration_ms: int | None = None, status: str = "COMPLETED") -> Tracker:
    arn = f"arn:aws:braket:{_region(name)}:123456789012:quantum-task/{name}-{shots}-{duration_ms}-{status}"
    with Tracker() as tracker:
        broadcast_event(_TaskCreationEvent(arn=arn, shots=shots, is_job_task=False, device=BACKENDS[name].target))
        broadcast_event(_TaskCompletionEvent(arn=arn, execution_duration=duration_ms, status=status))
    return tracker


def bell() -> QuantumCircuit:
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure([0, 1], [0, 1])
    return qc


@pytest.mark.parametrize("shots", [1, 37, 1000, 100_000])
@pytest.mark.parametrize("name", QPUS)
def test_qpu_estimate_matches_the_tracker(fake_price_list, name, shots):
    theirs = _track(name, shots).qpu_tasks_cost()
    ours = estimate(bell(), name, shots)
    assert ours.breakdown["compute"] == theirs.quantize(MICRO, ROUND_CEILING)
    assert ours.cost_usd == theirs  # these prices are exact at micro-dollar precision
    sheet = current_sheet(BACKENDS[name].sheet_id)
    assert actual_charge(sheet.parameters, sheet.family, ours.inputs, {"shots": shots}).compute == theirs
    assert _asked_for_prices(fake_price_list)


@pytest.mark.parametrize("status", ["FAILED", "CANCELLED"])
def test_failed_and_cancelled_qpu_tasks_cost_nothing_on_both_sides(fake_price_list, status):
    assert _track("iqm_garnet", 1000, status=status).qpu_tasks_cost() == 0
    assert actual_cost(estimate(bell(), "iqm_garnet", 1000), {"status": status}).cost_usd == 0
    # The same task completed: 0.30 + 0.00145 * 1000 = 1.75 on both sides
    assert _track("iqm_garnet", 1000).qpu_tasks_cost() == Decimal("1.75")
    assert actual_cost(estimate(bell(), "iqm_garnet", 1000), {"status": "COMPLETED"}).cost_usd == Decimal("1.75")
    assert _asked_for_prices(fake_price_list)


@pytest.mark.parametrize("duration_ms", [1, 1200, 2999, 3000, 3001, 4500, 61_234, 3_600_000])
@pytest.mark.parametrize("name", SIMULATORS)
def test_simulator_estimate_and_settlement_match_the_tracker(fake_price_list, name, duration_ms):
    tracker = _track(name, 100, duration_ms)
    theirs = tracker.simulator_tasks_cost()
    billed = tracker.quantum_tasks_statistics()[BACKENDS[name].target]["billed_execution_duration"]

    ours = estimate(bell(), name, 100, options={"duration_ms": duration_ms})
    assert ours.inputs["billed_ms"] == Decimal(billed / timedelta(milliseconds=1))  # same 3,000 ms minimum
    # Exact agreement of the unrounded formula ...
    sheet = current_sheet(BACKENDS[name].sheet_id)
    assert actual_charge(sheet.parameters, sheet.family, ours.inputs, {"duration_ms": duration_ms}).compute == theirs
    # ... then our documented rounding: estimates up, settlements half-even, to micro-dollars.
    assert ours.breakdown["compute"] == theirs.quantize(MICRO, ROUND_CEILING)
    assert actual_cost(ours, {"duration_ms": duration_ms}).cost_usd == theirs.quantize(MICRO, ROUND_HALF_EVEN)
    assert _asked_for_prices(fake_price_list)


def test_reserved_capacity_costs_nothing_per_task_on_both_sides(fake_price_list):
    arn = "arn:aws:braket:us-east-1:123456789012:quantum-task/reserved"
    with Tracker() as tracker:
        broadcast_event(_TaskCreationEvent(arn=arn, shots=10, is_job_task=False, device=BACKENDS["braket_sv1"].target))
        broadcast_event(_TaskCompletionEvent(arn, 5000, "COMPLETED", has_reservation_arn=True))
    assert tracker.simulator_tasks_cost() == 0
    e = estimate(bell(), "braket_sv1", 10)
    assert actual_cost(e, {"duration_ms": 5000, "has_reservation": True}).cost_usd == 0
