"""Helpers for the Benchmarking API tests. Runs execute in-process right after the submit commits
(the embedded default), so ``transaction=True`` databases are needed for the on-commit enqueue."""

from __future__ import annotations

from typing import Any

import pytest

BENCH = "/api/v2/bench"


def run(actor, **body: Any):
    """POST /run; returns the response (202 with the run already executed, in eager mode)."""
    return actor.client.post(f"{BENCH}/run", body, format="json")


def report(actor, benchmark_id: str):
    return actor.client.get(f"{BENCH}/report/{benchmark_id}")


def completed(actor, **body: Any) -> dict[str, Any]:
    """Run and return the GET report body of the completed benchmark."""
    response = run(actor, **body)
    assert response.status_code == 202, response.json()
    answer = report(actor, response.json()["benchmark_id"])
    assert answer.status_code == 200, answer.json()
    return answer.json()


@pytest.fixture
def no_enqueue(monkeypatch):
    """Keep runs queued, as if no worker had picked them up yet."""
    monkeypatch.setattr("bench.services._enqueue", lambda benchmark_id: None)
