"""What a newcomer meets in the first minutes of ``qcos``: messages name CLI flags and environment
variables, never the SDK's constructor arguments."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from qcos_sdk.cli import main

BELL = (
    "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[2];\ncreg c[2];\n"
    "h q[0];\ncx q[0],q[1];\nmeasure q -> c;\n"
)


@pytest.fixture()
def qasm_file(tmp_path):
    path = tmp_path / "bell.qasm"
    path.write_text(BELL)
    return str(path)


@pytest.mark.parametrize("argv", [["jobs", "get", "job-1"], ["budget", "status"], ["execute", "CIRCUIT"]])
def test_a_missing_key_names_the_flag_and_the_variable(monkeypatch, qasm_file, capsys, argv):
    monkeypatch.delenv("QCOS_API_KEY", raising=False)
    argv = [qasm_file if arg == "CIRCUIT" else arg for arg in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--api-key" in err and "QCOS_API_KEY" in err
    assert "api_key=" not in err


def test_an_unreachable_server_names_the_base_url_flag_and_variable(monkeypatch, capsys):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("QCOS_API_KEY", "k")
    monkeypatch.delenv("QCOS_BASE_URL", raising=False)
    assert main(["jobs", "get", "job-1", "--base-url", f"http://127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: CONNECTION_ERROR: ")
    assert f"127.0.0.1:{port}" in err and "--base-url" in err and "QCOS_BASE_URL" in err


@pytest.mark.parametrize("circuit", ["circuit.qasm", "experiments/bell.QASM3", "FILE"])
def test_the_sdk_refuses_a_file_name_given_as_circuit_text_before_any_request(sdk_env, qasm_file, circuit):
    from qcos_sdk import InvalidCircuitError, QCOSClient

    if circuit == "FILE":  # an existing file, whatever its name
        circuit = qasm_file.removesuffix(".qasm")
        Path(circuit).write_text(BELL)
    client = QCOSClient()
    for call in (client.execute, client.estimate_cost):
        with pytest.raises(InvalidCircuitError) as raised:
            call(circuit)
        assert raised.value.code == "INVALID_CIRCUIT"
        assert "file name, not OpenQASM text" in raised.value.message and "read()" in raised.value.message
    assert sdk_env.requests == []
    assert client.execute(BELL).status == "COMPLETED"  # real text still goes through


def test_the_cli_says_how_to_pass_circuit_text_given_where_a_file_goes(sdk_env, capsys):
    assert main(["execute", BELL.replace("\n", " ")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: CIRCUIT_UNREADABLE: ") and "qcos execute -" in err
    assert sdk_env.bodies == []


@pytest.mark.parametrize("statuses", [["PENDING_APPROVAL"], ["QUEUED", "PENDING_APPROVAL"]])
def test_execute_on_a_job_held_for_approval_says_so_and_exits_4(sdk_env, qasm_file, capsys, statuses):
    sdk_env.statuses = statuses
    assert main(["execute", qasm_file, "--timeout", "30", "-q"]) == 4
    out, err = capsys.readouterr()
    assert "status: PENDING_APPROVAL" in out
    assert "job job-0001 is waiting for approval by an approver or admin of tenant" in err
    assert "qcos approvals approve job-0001" in err
    assert len(sdk_env.bodies) == 1  # submitted once, not resubmitted


def test_execute_no_wait_on_a_held_job_still_just_submits(sdk_env, qasm_file, capsys):
    sdk_env.statuses = ["PENDING_APPROVAL"]
    assert main(["execute", qasm_file, "--no-wait", "-q"]) == 0
