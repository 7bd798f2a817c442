"""client.bench and `qcos bench` against the real server (live HTTP, embedded in-process runs)."""

from __future__ import annotations

import json

import pytest

from qcos_sdk import QCOSClient
from qcos_sdk.bench import BenchReport, BenchmarkHandle
from qcos_sdk.cli import main as qcos_main
from qcos_sdk.errors import BackendUnavailableError, NotFoundError, ValidationError

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_seeds_sdk_snippet_runs_as_written(live_server, alice):
    # Embedded mode runs the benchmark inside the POST: allow for a loaded machine.
    client = QCOSClient(api_key=alice.key, base_url=live_server.url, request_timeout=180)
    benchmark = client.bench.run(backend="ibm_brisbane", workloads=["ghz_5q", "bell_state"], shots=256, seed=42)
    assert isinstance(benchmark, BenchmarkHandle) and benchmark.status == "queued"
    assert benchmark.warning.startswith("DEV MODE")
    report = benchmark.wait(timeout=120)
    assert [w.id for w in report.workloads] == ["ghz_5q", "bell_state"]
    for workload in report.workloads:
        assert 0.5 < workload.fidelity <= 1.0 and f"{workload.id}: fidelity={workload.fidelity:.3f}"
    assert report.dev_mode is True and report.summary.total_workloads == 2
    # Verified by the server, and offline against the keys pinned from the server.
    assert client.bench.verify(report).is_valid
    keys = client.ledger.public_keys()
    assert report.verify(keys).is_valid
    tampered = report.raw
    tampered["workloads"][0]["fidelity"] = 0.99999
    online = client.bench.verify(tampered)
    assert online.status == "invalid" and online.content_hash_valid is False
    assert online.error["code"] == "VERIFICATION_FAILED"
    offline = client.bench.verify(tampered, offline=True, keyring=keys)
    assert not offline.is_valid and offline.failures[0]["check"] == "content_hash"
    assert client.bench.evidence(report.id).verify(keys).is_valid
    assert [w.id for w in client.bench.workloads()][0] == "bell_state"
    with pytest.raises(NotFoundError) as missing:
        client.bench.get_report("a1b2c3d4-e5f6-7890-abcd-ef1234567890")
    assert missing.value.code == "BENCHMARK_NOT_FOUND"
    with pytest.raises(ValidationError) as invalid:
        client.bench.run(backend="simulator", workloads=["ghz_3q"])
    assert invalid.value.code == "INVALID_WORKLOAD"
    with pytest.raises(BackendUnavailableError) as unavailable:
        client.bench.run(backend="no_such_backend", workloads=["bell_state"])
    assert unavailable.value.status_code == 503 and "simulator" in unavailable.value.details["available"]


def test_cli_runs_downloads_and_verifies(live_server, alice, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QCOS_API_KEY", alice.key)
    monkeypatch.setenv("QCOS_BASE_URL", live_server.url)
    out = tmp_path / "report.json"
    code = qcos_main(["bench", "run", "--backend", "simulator", "--workloads", "ghz_5q,bell_state",
                      "--shots", "128", "--seed", "3", "-o", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "ghz_5q" in printed and "average fidelity: 1.0000" in printed
    document = json.loads(out.read_text())
    assert document["plots"]["fidelity_vs_qubits.svg"].startswith("<svg")
    assert BenchReport.load(out).id == document["report"]["id"]

    keys = tmp_path / "keys.json"
    assert qcos_main(["ledger", "keys", "-o", str(keys)]) == 0
    capsys.readouterr()
    assert qcos_main(["bench", "verify", str(out), "--keys", str(keys)]) == 0
    assert "status: valid" in capsys.readouterr().out
    assert qcos_main(["bench", "verify", str(out), "--online"]) == 0
    capsys.readouterr()

    document["report"]["summary"]["average_fidelity"] = 0.5
    out.write_text(json.dumps(document))
    assert qcos_main(["bench", "verify", str(out), "--keys", str(keys)]) == 1
    verdict = capsys.readouterr().out
    assert "status: invalid" in verdict and "FAILED content_hash" in verdict
    assert qcos_main(["bench", "verify", str(tmp_path / "missing.json")]) == 2
