"""What a newcomer meets in the first minutes of ``qcos``: messages name CLI flags and environment
variables, never the SDK's constructor arguments."""

from __future__ import annotations

import socket

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
