"""Job model: attribute access, None-safety and forward compatibility."""

from __future__ import annotations

from decimal import Decimal

import pytest

from qcos_sdk import Job


def make(**overrides):
    data = {"job_id": "job-1", "status": "COMPLETED", "counts": {"0": 3}, "tags": {"a": "b"}}
    data.update(overrides)
    return Job(data)


def test_nested_cost_breakdown_and_timings():
    job = make(cost_breakdown={"queue": "0.1", "compute": "0.2", "storage": "0.3"},
               timings={"queue_ms": 1.5})
    assert job.cost_breakdown.compute == Decimal("0.2")  # money as Decimal, never float
    assert job.cost_breakdown["storage"] == "0.3"  # item access gives the JSON as sent
    assert job.timings.queue_ms == 1.5
    assert job.timings.total_ms is None  # documented but absent


def test_absent_documented_fields_are_none_but_typos_raise():
    job = make()
    assert job.cost_breakdown is None and job.provenance_id is None and job.error is None
    with pytest.raises(AttributeError):
        job.provenanceid


def test_unknown_fields_exposed_and_raw_preserved():
    job = make(approval={"by": "alice"}, queue_position=3)
    assert job.queue_position == 3
    assert job.approval == {"by": "alice"}
    assert job.raw["queue_position"] == 3
    assert "queue_position" in dir(job)


def test_counts_and_tags_stay_plain_dicts_and_job_is_read_only():
    job = make()
    assert type(job.counts) is dict and type(job.tags) is dict
    with pytest.raises(AttributeError):
        job.status = "FAILED"


@pytest.mark.parametrize(
    ("status", "terminal"),
    [("COMPLETED", True), ("FAILED", True), ("CANCELLED", True), ("REJECTED", True),
     ("QUEUED", False), ("RUNNING", False), ("PENDING_APPROVAL", False)],
)
def test_is_terminal(status, terminal):
    assert make(status=status).is_terminal is terminal
