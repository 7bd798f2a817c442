"""The SDK and the CLI against the real server (live HTTP server, embedded in-process execution)."""

import json

import pytest

from qcos_sdk import QCOSClient
from qcos_sdk.cli import main as qcos_main
from qcos_sdk.errors import InvalidCircuitError, NotFoundError
from tests.factories import BELL_QASM3

pytestmark = pytest.mark.django_db(transaction=True)


def test_seed_snippet_runs_as_written(live_server, alice):
    client = QCOSClient(
        api_key=alice.key, base_url=live_server.url, ledger_enabled=True,
        tenant_id="research-alpha", project="quantum-ml",
    )
    result = client.execute(
        circuit="OPENQASM 3.0; qubit q; h q; measure q;", backend="simulator", shots=100,
        tags={"experiment": "vqe-h2", "researcher": "alice", "grant": "NSF-2026-001"},
    )
    assert result.status == "COMPLETED" and sum(result.counts.values()) == 100
    assert result.circuit_hash.startswith("sha256:") and result.job_id.startswith("job-")
    assert result.provenance_id.startswith("prov-")
    bundle = client.ledger.get_evidence_bundle(result.job_id)
    assert bundle.verify(keyring=client.ledger.public_keys()).is_valid
    job = client.get_job(result.job_id)
    assert job.tags == {"experiment": "vqe-h2", "researcher": "alice", "grant": "NSF-2026-001"}
    assert [j.job_id for j in client.list_jobs(tag="grant=NSF-2026-001")] == [result.job_id]


def test_sdk_surfaces_server_errors_with_their_codes(live_server, alice):
    client = QCOSClient(api_key=alice.key, base_url=live_server.url)
    with pytest.raises(InvalidCircuitError) as caught:
        client.execute(circuit="OPENQASM 3.0;\nqubit q;\nh q\n", shots=10)
    assert caught.value.code == "INVALID_CIRCUIT" and caught.value.line == 4
    with pytest.raises(NotFoundError):
        client.get_job("job-does-not-exist")


def test_cli_execute_reads_key_and_server_from_the_environment(live_server, alice, tmp_path, monkeypatch, capsys):
    circuit = tmp_path / "bell.qasm"
    circuit.write_text(BELL_QASM3)
    monkeypatch.setenv("QCOS_API_KEY", alice.key)
    monkeypatch.setenv("QCOS_BASE_URL", live_server.url)
    code = qcos_main([
        "execute", str(circuit), "--backend", "simulator", "--shots", "256", "--ledger",
        "--tenant", "research-alpha", "--project", "quantum-ml", "--tags", "experiment=vqe-h2,researcher=alice",
        "--json",
    ])
    out = capsys.readouterr().out
    assert code == 0
    job = json.loads(out[out.index("{"):])
    assert job["status"] == "COMPLETED" and sum(job["counts"].values()) == 256
    assert job["tags"] == {"experiment": "vqe-h2", "researcher": "alice"}
