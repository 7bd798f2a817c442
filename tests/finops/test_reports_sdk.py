"""The SDK's ``client.ledger.generate_report(...).download(path)`` and ``qcos ledger report``
against the live server (embedded default: the report is built in-process after commit)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime

import pytest

from qcos_sdk import QCOSClient
from qcos_sdk.cli import main as qcos_main
from qcos_sdk.errors import ConflictError, PermissionDeniedError, ValidationError
from qcos_sdk.ledger import ChargebackReport

from .reports_helpers import charge

pytestmark = pytest.mark.django_db(transaction=True)

SEED_CSV = (
    "Tenant,Project,Backend,Jobs,Shots,Cost (USD)\n"
    "research-alpha,chemistry,ionq_aria,1,750,120.00\n"
    "research-alpha,quantum-ml,ibm_brisbane,2,1500,45.00\n"
)


@pytest.fixture
def january(alice, carol):
    charge(alice, backend="ibm_brisbane", shots=1000, micros=30_000_000, settled_at=datetime(2026, 1, 2, tzinfo=UTC),
           tags={"experiment": "vqe-h2"})
    charge(alice, backend="ibm_brisbane", shots=500, micros=15_000_000, settled_at=datetime(2026, 1, 20, tzinfo=UTC))
    charge(alice, project="chemistry", backend="ionq_aria", shots=750, micros=120_000_000,
           settled_at=datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC), tags={"experiment": "vqe-h2"})
    charge(carol, backend="simulator", shots=5000, micros=1_000_000, settled_at=datetime(2026, 1, 9, tzinfo=UTC))


def test_the_seed_snippet_downloads_the_seed_columns(live_server, adam, january, tmp_path):
    client = QCOSClient(api_key=adam.key, base_url=live_server.url)
    report = client.ledger.generate_report(
        report_type="chargeback", start_date="2026-01-01", end_date="2026-01-31",
        group_by=["tenant", "project", "backend"], format="csv",
    )
    assert isinstance(report, ChargebackReport) and report.id.startswith("rep-")
    assert report.status in {"PENDING", "RUNNING", "READY"}
    path = report.download(tmp_path / "january-chargeback.csv")
    assert path.read_text() == SEED_CSV
    assert report.status == "READY" and report.rows == 2
    assert client.ledger.get_report(report.id).wait().content_sha256 == report.content_sha256


def test_json_by_tag_with_dates(live_server, adam, january):
    client = QCOSClient(api_key=adam.key, base_url=live_server.url)
    report = client.ledger.generate_report(start_date=date(2026, 1, 1), end_date=date(2026, 1, 31),
                                           group_by=["tag:experiment"], format="json").wait()
    document = json.loads(report.content())
    assert document["rows"] == [{"tag:experiment": None, "jobs": 1, "shots": 500, "cost_usd": "15.00"},
                                {"tag:experiment": "vqe-h2", "jobs": 2, "shots": 1750, "cost_usd": "150.00"}]


def test_sdk_errors_keep_their_codes(live_server, alice, adam, monkeypatch):
    with pytest.raises(PermissionDeniedError):
        QCOSClient(api_key=alice.key, base_url=live_server.url).ledger.generate_report(
            start_date="2026-01-01", end_date="2026-01-31")
    client = QCOSClient(api_key=adam.key, base_url=live_server.url)
    with pytest.raises(ValidationError) as caught:
        client.ledger.generate_report(start_date="2026-02-01", end_date="2026-01-31")
    assert caught.value.code == "INVALID_DATE_RANGE"

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("finops.reports.build", boom)
    failed = client.ledger.generate_report(start_date="2026-01-01", end_date="2026-01-31").wait()
    assert failed.status == "FAILED" and "disk full" in failed.error
    with pytest.raises(Exception) as caught:
        failed.download("never.csv")
    assert caught.value.code == "REPORT_FAILED"
    with pytest.raises(ConflictError) as conflict:  # the raw endpoint says the same with a 409
        client._request("GET", f"/reports/{failed.id}/download")
    assert conflict.value.code == "REPORT_FAILED"


def test_cli_ledger_report(live_server, adam, january, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QCOS_API_KEY", adam.key)
    monkeypatch.setenv("QCOS_BASE_URL", live_server.url)
    output = tmp_path / "january-chargeback.csv"
    code = qcos_main(["ledger", "report", "--type", "chargeback", "--start", "2026-01-01", "--end", "2026-01-31",
                      "--format", "csv", "--output", str(output)])
    assert code == 0, capsys.readouterr().err
    assert output.read_text() == SEED_CSV
    assert "2 rows" in capsys.readouterr().out
    focus = tmp_path / "january.focus.csv"
    assert qcos_main(["ledger", "report", "--start", "2026-01-01", "--end", "2026-01-31", "--format", "focus",
                      "--group-by", "tenant,project,backend,tag:experiment", "-o", str(focus)]) == 0
    rows = list(csv.DictReader(focus.open()))
    assert {r["x_Backend"] for r in rows} == {"ibm_brisbane", "ionq_aria"} and len(rows) == 3
    code = qcos_main(["ledger", "report", "--start", "2026-01-01", "--end", "2026-01-31", "--group-by", "region",
                      "-o", str(tmp_path / "x.csv")])
    assert code == 2 and "INVALID_GROUP_BY" in capsys.readouterr().err
