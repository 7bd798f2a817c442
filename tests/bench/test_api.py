"""The seed's Benchmarking API end to end on the embedded default: shapes, defaults, error codes,
reproducibility, signed reports and their verification, evidence, comparison, governance."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from bench.backends import DEV_MODE_WARNING
from bench.models import BenchmarkRun
from bench.report import verify_report
from ledger.crypto import EvidenceBundle
from ledger.models import AuditEntry

from .conftest import BENCH, completed, report, run

pytestmark = pytest.mark.django_db

SEED_ROW_FIELDS = {"id", "type", "qubits", "fidelity", "execution_time_ms", "gate_count", "depth"}


def test_workloads_listing_is_the_seeds(alice):
    body = alice.client.get(f"{BENCH}/workloads").json()
    assert [(w["id"], w["type"], w["qubits"]) for w in body["workloads"]] == [
        ("bell_state", "BELL_STATE", 2), ("ghz_5q", "GHZ_SCALING", 5), ("ghz_10q", "GHZ_SCALING", 10),
        ("ghz_50q", "GHZ_SCALING", 50), ("ghz_100q", "GHZ_SCALING", 100), ("depth_stress", "DEPTH_STRESS", 10),
    ]
    assert body["workloads"][0]["description"] == "Bell state preparation (2 qubits)"
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {alice.key}")
    assert bearer.get(f"{BENCH}/workloads").status_code == 200
    anonymous = APIClient().get(f"{BENCH}/workloads")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "UNAUTHENTICATED"


def test_simulator_scores_one_on_every_workload_through_the_service(alice):
    workloads = ["bell_state", "ghz_5q", "ghz_10q", "ghz_50q", "ghz_100q", "depth_stress"]
    body = completed(alice, backend_id="simulator", workloads=workloads, shots=256, seed=5)
    result = body["report"]
    assert body["storage_mode"] == "ledger"
    assert body["download_url"] == f"{BENCH}/report/{result['id']}/download"
    assert [row["id"] for row in result["workloads"]] == workloads
    assert result["dev_mode"] is False and result["warning"] is None
    for row in result["workloads"]:
        assert SEED_ROW_FIELDS <= row.keys()
        assert row["fidelity"] == 1.0, row["id"]
        assert row["hellinger_fidelity"] == pytest.approx(1.0, abs=2e-2)  # shot noise of a 50/50 split
        assert row["normalized_fidelity"] == pytest.approx(1.0, abs=2e-2)
        if row["type"] != "DEPTH_STRESS":
            assert row["state_fidelity_lower_bound"] == 1.0 and row["entanglement_certified"] is True
        assert row["execution_time_source"].startswith("aer:")
        assert {"gate_count", "depth", "two_qubit_gates"} <= row["logical"].keys()
    summary = result["summary"]
    assert summary["total_workloads"] == 6 and summary["average_fidelity"] == 1.0
    assert summary["average_fidelity_metric"] == "fidelity"
    assert summary["fidelity_metrics"]["ghz_100q"] == "ghz_two_setting_lower_bound"
    assert summary["total_execution_time_ms"] == pytest.approx(sum(r["execution_time_ms"] for r in result["workloads"]))


def test_run_defaults_and_the_202_body(alice):
    response = run(alice, backend_id="simulator")
    assert response.status_code == 202
    body = response.json()
    assert {"benchmark_id", "status", "estimated_time_seconds", "message", "warning"} <= body.keys()
    assert body["status"] == "queued" and body["warning"] is None
    assert body["message"] == f"Benchmark {body['benchmark_id']} queued for execution on simulator"
    assert body["workloads"] == ["ghz_5q", "ghz_10q", "bell_state"] and body["shots"] == 1024
    assert isinstance(body["seed"], int)  # generated at submission and recorded
    result = report(alice, body["benchmark_id"]).json()["report"]
    assert result["seed"] == body["seed"] and result["seed_source"] == "generated"
    assert [w["shots"] for w in result["workloads"]] == [1024] * 3


def test_a_hardware_name_runs_in_dev_mode_priced_as_the_hardware(alice):
    response = run(alice, backend_id="ionq_aria", workloads=["bell_state"], shots=200, seed=3)
    assert response.status_code == 202
    assert response.json()["warning"] == DEV_MODE_WARNING and response.json()["dev_mode"] is True
    result = report(alice, response.json()["benchmark_id"]).json()["report"]
    assert result["dev_mode"] is True and result["warning"] == DEV_MODE_WARNING
    assert result["execution_mode"].startswith("DEV MODE: ionq_aria simulated locally")
    assert result["backend"]["kind"] == "modelled" and "IonQ Aria" in result["backend"]["description"]
    assert 0.9 < result["workloads"][0]["fidelity"] <= 1.0
    cost = result["cost"]
    assert cost["priced_as"] == "ionq_aria" and cost["dev_mode_priced_as_hardware"] is True
    assert cost["price_sheets"][0]["price_sheet_id"] == "azure-ionq-aria"
    assert float(cost["estimated_usd"]) > 0 and cost["circuits"] == 3  # ZZ, XX and YY settings


def test_same_seed_gives_the_same_content(alice, carol):
    body = {"backend_id": "rigetti_ankaa", "workloads": ["ghz_5q", "bell_state"], "shots": 256, "seed": 77}
    first = completed(alice, **body)["report"]
    second = completed(carol, **body)["report"]  # another tenant, another time
    assert first["id"] != second["id"] and first["tenant_id"] != second["tenant_id"]
    assert first["content_hash"] == second["content_hash"]
    assert first["evidence_hash"] != second["evidence_hash"]
    assert [w["counts_sha256"] for w in first["workloads"]] == [w["counts_sha256"] for w in second["workloads"]]
    other = completed(alice, **{**body, "seed": 78})["report"]
    assert other["content_hash"] != first["content_hash"]


@pytest.fixture
def sealed(alice):
    return completed(alice, backend_id="simulator", workloads=["bell_state"], shots=64, seed=1)["report"]


def test_a_genuine_report_verifies(alice, sealed):
    answer = alice.client.post(f"{BENCH}/verify", {"report": sealed}, format="json")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "valid", "report_id": sealed["id"], "content_hash_valid": True, "evidence_hash_valid": True,
        "signature_present": True, "signature_valid": True, "keys_pinned": True, "failures": [], "warnings": [],
        "error": None,
    }
    by_id = alice.client.post(f"{BENCH}/verify", {"benchmark_id": sealed["id"]}, format="json")
    assert by_id.json()["status"] == "valid"


@pytest.mark.parametrize(("tamper", "bad"), [
    (lambda r: r["workloads"][0].update(fidelity=0.42), "content_hash"),
    (lambda r: r["workloads"][0].update(execution_time_ms=1.0), "evidence_hash"),
    (lambda r: r.update(tenant_id="research-gamma"), "evidence_hash"),
    (lambda r: r.update(content_hash="sha256:" + "0" * 64), "content_hash"),
])
def test_a_tampered_report_fails_verification_naming_the_hash(alice, sealed, tamper, bad):
    tamper(sealed)
    answer = alice.client.post(f"{BENCH}/verify", {"report": sealed}, format="json")
    assert answer.status_code == 400
    body = answer.json()
    assert body["status"] == "invalid" and body[f"{bad}_valid"] is False
    assert body["error"]["code"] == "VERIFICATION_FAILED"
    assert bad in body["error"]["details"]["failed_checks"] and bad in body["error"]["message"]


def test_a_forged_signature_fails(alice, sealed):
    sealed["signature"]["signature"] = sealed["signature"]["signature"][:-8] + "AAAAAAA="
    body = alice.client.post(f"{BENCH}/verify", {"report": sealed}, format="json").json()
    assert body["signature_present"] is True and body["signature_valid"] is False
    assert body["content_hash_valid"] and body["evidence_hash_valid"]
    del sealed["signature"]
    body = alice.client.post(f"{BENCH}/verify", {"report": sealed}, format="json").json()
    assert body["signature_present"] is False and body["error"]["code"] == "VERIFICATION_FAILED"


def test_not_a_report_is_a_verification_failure(alice):
    answer = alice.client.post(f"{BENCH}/verify", {"report": {"id": "x"}}, format="json")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "VERIFICATION_FAILED"


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"backend_id": "simulator", "workloads": ["ghz_7q"]}, 400, "INVALID_WORKLOAD"),
    ({"backend_id": "simulator", "workloads": ["ghz_5q", "ghz_5q"]}, 400, "INVALID_WORKLOAD"),
    ({"backend_id": "simulator", "shots": 100_001}, 400, "INVALID_SHOTS"),
    ({"backend_id": "simulator", "shots": 0}, 400, "INVALID_SHOTS"),
    ({"backend_id": "simulator", "seed": -1}, 400, "VALIDATION_ERROR"),
    ({"backend_id": "simulator", "workloads": "ghz_5q"}, 400, "VALIDATION_ERROR"),
    ({"workloads": ["ghz_5q"]}, 400, "VALIDATION_ERROR"),
    ({"backend_id": "dwave_advantage"}, 503, "BACKEND_UNAVAILABLE"),
    ({"backend_id": "ionq_aria", "workloads": ["ghz_50q"]}, 400, "BACKEND_TOO_SMALL"),
])
def test_request_errors_have_the_seeds_codes(alice, body, status, code):
    response = run(alice, **body)
    assert response.status_code == status, response.json()
    assert response.json()["error"]["code"] == code
    assert BenchmarkRun.objects.count() == 0 and not AuditEntry.objects.filter(resource_type="benchmark_run").exists()


def test_invalid_workload_names_the_catalogue(alice):
    details = run(alice, backend_id="simulator", workloads=["ghz_7q"]).json()["error"]["details"]
    assert details["workload"] == "ghz_7q" and "ghz_100q" in details["available"]


def test_the_maximum_shots_are_accepted(alice, no_enqueue):
    assert run(alice, backend_id="simulator", workloads=["bell_state"], shots=100_000).status_code == 202


def test_a_report_asked_for_too_early_is_still_running(alice, no_enqueue):
    benchmark_id = run(alice, backend_id="simulator", workloads=["bell_state"]).json()["benchmark_id"]
    for path in (f"{BENCH}/report/{benchmark_id}", f"{BENCH}/report/{benchmark_id}/download",
                 f"/bench/evidence/{benchmark_id}"):
        response = alice.client.get(path)
        assert response.status_code == 202, path
        error = response.json()["error"]
        assert error["code"] == "BENCHMARK_STILL_RUNNING"
        assert error["details"] == {"benchmark_id": benchmark_id, "status": "queued", "completed_workloads": 0,
                                    "total_workloads": 1}


def test_unknown_and_malformed_ids_are_not_found(alice):
    for benchmark_id in ("a1b2c3d4-e5f6-7890-abcd-ef1234567890", "not-a-uuid"):
        response = report(alice, benchmark_id)
        assert response.status_code == 404 and response.json()["error"]["code"] == "BENCHMARK_NOT_FOUND"


def test_a_failed_run_says_why_and_is_audited(alice, monkeypatch):
    from bench.runner import SimulationFailedError

    def broken(*args, **kwargs):
        raise SimulationFailedError("Aer returned success=False")

    monkeypatch.setattr("bench.execution.run_benchmark", broken)
    benchmark_id = run(alice, backend_id="simulator", workloads=["bell_state"]).json()["benchmark_id"]
    response = report(alice, benchmark_id)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "BENCHMARK_FAILED"
    assert response.json()["error"]["details"]["error_code"] == "SIMULATION_FAILED"
    actions = list(AuditEntry.objects.filter(resource_id=benchmark_id).order_by("id").values_list("action", flat=True))
    assert actions == ["BENCHMARK_SUBMITTED", "BENCHMARK_STARTED", "BENCHMARK_FAILED"]
    assert BenchmarkRun.objects.get(pk=benchmark_id).actual_cost_usd == 0


def test_every_state_change_is_audited_and_in_the_evidence(alice):
    result = completed(alice, backend_id="simulator", workloads=["ghz_5q"], shots=64, seed=2)["report"]
    entries = AuditEntry.objects.filter(resource_type="benchmark_run", resource_id=result["id"]).order_by("id")
    assert [e.action for e in entries] == ["BENCHMARK_SUBMITTED", "BENCHMARK_STARTED", "BENCHMARK_COMPLETED"]
    assert all(e.tenant_slug == "research-alpha" for e in entries)
    completed_entry = json.loads(entries.last().payload)
    assert completed_entry["details"]["content_hash"] == result["content_hash"]
    bundle = alice.client.get(f"/bench/evidence/{result['id']}").json()
    trail = next(i for i in bundle["items"] if i["type"] == "audit_trail")["content"]["entries"]
    assert [e["action"] for e in trail] == ["BENCHMARK_SUBMITTED", "BENCHMARK_STARTED", "BENCHMARK_COMPLETED"]


def test_the_bench_v3_bundle_is_signed_and_checked_by_the_ledger_verifier(alice):
    result = completed(alice, backend_id="fake_brisbane", workloads=["bell_state"], shots=128, seed=4)["report"]
    bundle = alice.client.get(f"/bench/evidence/{result['id']}").json()
    assert {"bundle_id", "job_id", "tenant_id", "created_at", "items", "merkle_root", "signatures"} <= bundle.keys()
    assert bundle["job_id"] == result["id"] and bundle["bundle_id"] == result["bundle_id"]
    assert {s["signer"] for s in bundle["signatures"]} == {"worker", "ledger"}
    assert all(s["algorithm"] == "ECDSA-P384" for s in bundle["signatures"])
    items = {i["type"]: i["content"] for i in bundle["items"]}
    assert items["provenance"]["content_hash"] == result["content_hash"]
    assert set(items["execution_result"]["workloads"][0]["counts"]) == {"ZZ", "XX", "YY"}
    assert "OPENQASM 2.0" in items["circuit_submission"]["workloads"][0]["qasm"]["ZZ"]
    assert EvidenceBundle(bundle).verify().is_valid
    ok = alice.client.post("/bench/evidence/verify", {"benchmark_id": result["id"]}, format="json")
    assert ok.status_code == 200 and ok.json()["is_valid"]
    items["execution_result"]["workloads"][0]["counts"]["ZZ"] = {"00": 128}
    tampered = alice.client.post("/bench/evidence/verify", {"bundle": bundle}, format="json")
    assert tampered.status_code == 400 and tampered.json()["error"]["code"] == "VERIFICATION_FAILED"
    assert "item_hash" in tampered.json()["error"]["details"]["failed_checks"]
    # An empty document is one that was given, and fails to verify; giving none is the usage error.
    empty = alice.client.post("/bench/evidence/verify", {"bundle": {}}, format="json")
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "VERIFICATION_FAILED", empty.json()
    neither = alice.client.post("/bench/evidence/verify", {}, format="json")
    assert neither.status_code == 400 and neither.json()["error"]["code"] == "VALIDATION_ERROR"


def test_download_is_an_attachment_with_keys_and_the_plot(alice, sealed):
    response = alice.client.get(f"{BENCH}/report/{sealed['id']}/download")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == f"attachment; filename=bench-report-{sealed['id'][:8]}.json"
    document = json.loads(response.content)
    assert document["report"] == sealed
    assert document["plots"]["fidelity_vs_qubits.svg"].startswith("<svg")
    offline = verify_report(document)  # the embedded keys: integrity, with a warning
    assert offline.is_valid and offline.warnings == ["keys not pinned"]
    svg = alice.client.get(f"{BENCH}/report/{sealed['id']}/download?format=svg")
    assert svg["Content-Type"] == "image/svg+xml" and b"bell_state: 1.0000" in svg.content


def test_reports_compare_side_by_side(alice):
    ids = [completed(alice, backend_id=b, workloads=["ghz_5q", "bell_state"], shots=128, seed=9)["report"]["id"]
           for b in ("simulator", "rigetti_ankaa")]
    table = alice.client.get(f"{BENCH}/compare?ids={','.join(ids)}").json()
    assert [c["backend_id"] for c in table["reports"]] == ["simulator", "rigetti_ankaa"]
    assert [c["dev_mode"] for c in table["reports"]] == [False, True]
    row = table["workloads"][0]
    assert row["workload_id"] == "ghz_5q" and row["results"][ids[0]]["fidelity"] == 1.0
    assert row["results"][ids[1]]["fidelity"] < 1.0
    svg = alice.client.get(f"{BENCH}/compare?ids={','.join(ids)}&format=svg")
    assert svg.status_code == 200 and b"rigetti_ankaa (DEV MODE)" in svg.content
    assert alice.client.get(f"{BENCH}/compare?ids=").json()["error"]["code"] == "VALIDATION_ERROR"


def test_viewers_read_but_cannot_run(alice, vera, sealed):
    denied = run(vera, backend_id="simulator")
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "PERMISSION_DENIED"
    assert report(vera, sealed["id"]).status_code == 200


def test_idempotent_submission_replays_the_first_answer(alice, no_enqueue):
    body = {"backend_id": "simulator", "workloads": ["bell_state"], "seed": 1}
    first = run(alice, {"HTTP_IDEMPOTENCY_KEY": "k-1"}, **body)
    again = run(alice, {"HTTP_IDEMPOTENCY_KEY": "k-1"}, **body)
    assert again.status_code == 202 and again["Idempotent-Replayed"] == "true"
    assert again.json()["benchmark_id"] == first.json()["benchmark_id"]
    other = run(alice, {"HTTP_IDEMPOTENCY_KEY": "k-1"}, **{**body, "seed": 2})
    assert other.status_code == 409 and other.json()["error"]["code"] == "IDEMPOTENCY_CONFLICT"
    assert BenchmarkRun.objects.count() == 1


def test_the_reconciler_reenqueues_lost_messages_and_fails_lost_runs(alice, no_enqueue, monkeypatch):
    from bench import services

    queued = run(alice, backend_id="simulator", workloads=["bell_state"]).json()["benchmark_id"]
    running = run(alice, backend_id="simulator", workloads=["bell_state"]).json()["benchmark_id"]
    services.benchmark_claim(benchmark_id=running, worker="w:1")
    enqueued = []
    monkeypatch.setattr("bench.services._enqueue", enqueued.append)
    outcome = services.benchmarks_reconcile(requeue_after_seconds=-1, lost_after_seconds=-1)
    assert outcome == services.Reconciliation(reenqueued=1, failed_lost=1) and enqueued == [queued]
    lost = report(alice, running).json()["error"]
    assert lost["code"] == "BENCHMARK_FAILED" and lost["details"]["error_code"] == "WORKER_LOST"


@pytest.mark.parametrize("report", [{}, {"id": "x"}, {"workloads": "no"}])
def test_an_empty_or_malformed_report_fails_verification_cleanly(alice, report):
    """Given, however empty, is verified and refused with the seed's code; never a 500."""
    answer = alice.client.post(f"{BENCH}/verify", {"report": report}, format="json")
    assert answer.status_code == 400, answer.content
    assert answer.json()["error"]["code"] == "VERIFICATION_FAILED"
