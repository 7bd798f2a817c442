"""``qcos`` CLI run in-process against the fake API."""

from __future__ import annotations

import io
import json

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


def test_execute_prints_job_id_then_counts_sorted(sdk_env, qasm_file, capsys):
    sdk_env.counts = {"00": 100, "11": 900, "01": 24}
    code = main(["execute", qasm_file, "--shots", "1024", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "job_id: job-0001"
    table = lines[lines.index(next(l for l in lines if l.startswith("state"))) + 1:]
    assert [row.split()[0] for row in table] == ["11", "00", "01"]
    assert table[0].split()[1:] == ["900", f"{900 / 1024:.4f}"]
    assert "\r" not in err  # no progress bar when stderr is not a TTY


def test_execute_prints_the_dev_mode_warning_before_the_counts(sdk_env, qasm_file, capsys):
    assert main(["execute", qasm_file, "--backend", "ibm_brisbane", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "warning: DEV MODE: ibm_brisbane is simulated locally"
    assert main(["execute", qasm_file, "--quiet"]) == 0
    assert not any(line.startswith("warning:") for line in capsys.readouterr().out.splitlines())


def test_execute_json_and_ledger_options(sdk_env, qasm_file, capsys):
    code = main(["execute", qasm_file, "--backend", "simulator", "--shots", "10", "--ledger",
                 "--tenant", "research-alpha", "--project", "quantum-ml",
                 "--tags", "experiment=vqe-h2,run=3", "--priority", "urgent", "--json"])
    out, _ = capsys.readouterr()
    assert code == 0
    job = json.loads(out)
    assert job["status"] == "COMPLETED" and job["counts"] == {"00": 5, "11": 5}
    body = sdk_env.bodies[-1]
    assert body["priority"] == "urgent"
    assert body["ledger"] == {"enabled": True, "tenant_id": "research-alpha", "project": "quantum-ml",
                              "tags": {"experiment": "vqe-h2", "run": "3"}}


def test_execute_reads_stdin(sdk_env, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(BELL))
    assert main(["execute", "-", "--json"]) == 0
    assert sdk_env.bodies[-1]["circuit"] == BELL
    assert json.loads(capsys.readouterr().out)["job_id"] == "job-0001"


def test_global_options_before_subcommand(monkeypatch, fake_api, sdk_api_key, qasm_file, capsys):
    monkeypatch.delenv("QCOS_API_KEY", raising=False)
    monkeypatch.delenv("QCOS_BASE_URL", raising=False)
    code = main(["--api-key", sdk_api_key, "--base-url", fake_api.base_url,
                 "execute", qasm_file, "--no-wait", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["status"] == "QUEUED"
    # ...and after it
    code = main(["execute", qasm_file, "--no-wait", "--api-key", "bad",
                 "--base-url", fake_api.base_url])
    assert code == 2
    assert "error: UNAUTHENTICATED:" in capsys.readouterr().err


@pytest.mark.parametrize("tags", ["experiment", "=x", "a=1,,b=2", "a=1,a=2"])
def test_bad_tags_exit_2(sdk_env, qasm_file, capsys, tags):
    assert main(["execute", qasm_file, "--tags", tags]) == 2
    err = capsys.readouterr().err
    assert "--tags" in err and ("key=value" in err or "duplicate" in err)
    assert sdk_env.bodies == []


def test_failed_job_exit_1(sdk_env, qasm_file, capsys):
    sdk_env.final_status = "FAILED"
    assert main(["execute", qasm_file, "-q"]) == 1
    out, err = capsys.readouterr()
    assert "status: FAILED" in out
    assert "BACKEND_ERROR" in err


def test_timeout_exit_3(sdk_env, qasm_file, capsys):
    sdk_env.statuses = ["QUEUED"]
    assert main(["execute", qasm_file, "--timeout", "0.3", "-q"]) == 3
    assert "qcos jobs get job-0001" in capsys.readouterr().err


def test_api_error_exit_2(sdk_env, qasm_file, capsys):
    assert main(["execute", qasm_file, "--backend", "ibm_nowhere"]) == 2
    assert capsys.readouterr().err.startswith("error: UNKNOWN_BACKEND: ")


def test_missing_file_and_missing_key_exit_2(monkeypatch, tmp_path, qasm_file, capsys):
    monkeypatch.setenv("QCOS_API_KEY", "k")
    assert main(["execute", str(tmp_path / "nope.qasm")]) == 2
    assert "error: CIRCUIT_UNREADABLE" in capsys.readouterr().err
    monkeypatch.delenv("QCOS_API_KEY")
    assert main(["execute", qasm_file]) == 2
    assert "QCOS_API_KEY" in capsys.readouterr().err


def test_jobs_get_list_cancel(sdk_env, qasm_file, capsys):
    for run in ("a", "b", "a"):
        assert main(["execute", qasm_file, "--no-wait", "--tags", f"run={run}", "-q"]) == 0
    capsys.readouterr()

    assert main(["jobs", "list", "--tag", "run=a", "--json"]) == 0
    assert [j["job_id"] for j in json.loads(capsys.readouterr().out)] == ["job-0001", "job-0003"]

    assert main(["jobs", "list", "--limit", "2"]) == 0
    out, err = capsys.readouterr()
    assert [l.split()[0] for l in out.splitlines()] == ["JOB_ID", "job-0001", "job-0002"]
    assert "--limit" in err

    assert main(["jobs", "cancel", "job-0002"]) == 0
    assert capsys.readouterr().out.strip() == "job-0002 CANCELLED"
    assert main(["jobs", "cancel", "job-0002"]) == 2
    assert "error: JOB_NOT_CANCELLABLE" in capsys.readouterr().err

    assert main(["jobs", "get", "job-0002", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "CANCELLED"
    assert main(["jobs", "get", "job-9999"]) == 2
    assert "error: NOT_FOUND" in capsys.readouterr().err


def test_usage_error_exit_2(capsys):
    assert main(["execute"]) == 2
    assert main([]) == 2
    assert main(["--help"]) == 0


class _FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("quiet", [False, True])
def test_progress_on_tty_unless_quiet(sdk_env, qasm_file, monkeypatch, capsys, quiet):
    tty = _FakeTTY()
    monkeypatch.setattr("sys.stderr", tty)
    assert main(["execute", qasm_file] + (["--quiet"] if quiet else [])) == 0
    shown = tty.getvalue()
    if quiet:
        assert shown == ""
    else:
        assert "job-0001 RUNNING" in shown and "job-0001 COMPLETED" in shown
    assert "job-0001" in capsys.readouterr().out  # results still go to stdout
