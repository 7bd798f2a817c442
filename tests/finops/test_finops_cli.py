"""``qcos budget`` and ``qcos approvals`` against a live server."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from finops.models import BudgetPolicy, PriceSheetVersion
from qcos.jobs.models import QuantumJob
from qcos_sdk.cli import main
from tests.factories import job_body

pytestmark = pytest.mark.django_db(transaction=True)


def _qcos(actor, live_server, *argv):
    return main(["--api-key", actor.key, "--base-url", live_server.url, *argv])


def test_budget_and_approvals_from_the_command_line(live_server, alice, bob, capsys, monkeypatch):
    monkeypatch.setattr("qcos.jobs.services._enqueue", lambda job_id, queue: None)
    PriceSheetVersion.objects.create(sheet_id="local-simulator", version=2, family="local",
                                     effective_from=date(2025, 6, 1), parameters={"evidence_storage_usd": "0.10"})
    BudgetPolicy.objects.create(tenant=alice.tenant, daily_limit_usd=Decimal("1"), per_job_limit_usd=Decimal("0.05"))
    assert _qcos(alice, live_server, "budget", "check", "0.04") == 0
    assert "can proceed" in capsys.readouterr().out
    assert _qcos(alice, live_server, "budget", "check", "1.01") == 1
    assert "cannot proceed" in capsys.readouterr().out
    job_id = alice.client.post("/api/v2.1/jobs", job_body(), format="json").json()["job_id"]
    assert _qcos(bob, live_server, "approvals", "list") == 0
    assert job_id in capsys.readouterr().out
    assert _qcos(alice, live_server, "approvals", "approve", job_id) == 2  # researchers cannot decide
    assert "PERMISSION_DENIED" in capsys.readouterr().err
    assert _qcos(bob, live_server, "approvals", "approve", job_id, "--reason", "fine") == 0
    assert f"{job_id} QUEUED" in capsys.readouterr().out
    assert QuantumJob.objects.get(pk=job_id).status == "QUEUED"
    assert _qcos(alice, live_server, "budget", "status") == 0
    out = capsys.readouterr().out
    assert "day" in out and "reserved 0.100000" in out
