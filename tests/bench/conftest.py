"""Helpers for the Benchmarking API tests. Runs execute in-process right after the submit commits
(the embedded default). Tests stay inside pytest-django's rolled-back transaction (a flush of the
transactional database costs seconds per test here), so :func:`run` executes the on-commit
callbacks of its request explicitly, exactly what a commit would have triggered."""

from __future__ import annotations

from typing import Any

import pytest

BENCH = "/api/v2/bench"
_on_commit: Any = None


@pytest.fixture(autouse=True)
def _execute_on_commit(django_capture_on_commit_callbacks):
    global _on_commit
    _on_commit = django_capture_on_commit_callbacks
    yield
    _on_commit = None


def run(actor, headers: dict[str, str] | None = None, **body: Any):
    """POST /run; returns the response (202 with the run already executed, in eager mode)."""
    with _on_commit(execute=True):
        return actor.client.post(f"{BENCH}/run", body, format="json", **(headers or {}))


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
