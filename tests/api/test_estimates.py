"""Pre-submit estimates through the API and the SDK (the Ledger seed's estimate_cost snippet)."""

from decimal import Decimal

import pytest

from qcos_sdk import QCOSClient
from tests.factories import BELL_QASM3, job_body

pytestmark = pytest.mark.django_db(transaction=True)


def test_ibm_estimate_is_priced_by_the_ibm_sheet_and_the_seed_snippet_prints_it(live_server, alice):
    client = QCOSClient(api_key=alice.key, base_url=live_server.url)
    estimate = client.estimate_cost(circuit=BELL_QASM3, backend="ibm_brisbane", shots=10000)
    line = f"Estimated cost: ${estimate.cost_usd:.4f}"
    assert isinstance(estimate.cost_usd, Decimal) and estimate.cost_usd > 0 and line.startswith("Estimated cost: $")
    # IBM bills whole seconds at $1.60: the estimate is a multiple of it.
    assert estimate.breakdown.compute % Decimal("1.60") == 0
    assert estimate.cost_usd == estimate.breakdown.queue + estimate.breakdown.compute + estimate.breakdown.storage
    assert estimate.price_sheet_id and estimate.price_sheet_version
    assert estimate.estimated_queue_minutes is None  # no job has run there yet


def test_priority_tier_adds_the_surcharge_under_queue(alice):
    standard = alice.client.post("/api/v2.1/estimates", {"circuit": BELL_QASM3, "backend": "ionq_aria",
                                                           "shots": 1000}, format="json").json()
    urgent = alice.client.post("/api/v2.1/estimates", {"circuit": BELL_QASM3, "backend": "ionq_aria", "shots": 1000,
                                                         "priority": "urgent"}, format="json").json()
    assert Decimal(standard["breakdown"]["queue"]) == 0
    assert Decimal(urgent["breakdown"]["queue"]) == Decimal(standard["breakdown"]["compute"])  # ×2.0
    assert Decimal(urgent["cost_usd"]) > Decimal(standard["cost_usd"])


def test_local_simulator_is_free_and_reports_recent_queue_time(alice):
    alice.client.post("/api/v2.1/jobs", job_body(), format="json")
    body = alice.client.post("/api/v2.1/estimates", {"circuit": BELL_QASM3, "backend": "simulator"},
                             format="json").json()
    assert Decimal(body["cost_usd"]) == 0 and body["estimated_queue_minutes"] is not None


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"circuit": BELL_QASM3, "backend": "nowhere"}, "UNKNOWN_BACKEND"),
        ({"circuit": "OPENQASM 3.0; qubit q; h q", "backend": "simulator"}, "INVALID_CIRCUIT"),
        # The submit's rule and code (docs/api.md's job error table), not the serializer's generic one.
        ({"circuit": BELL_QASM3, "backend": "simulator", "shots": 0}, "INVALID_SHOTS"),
        ({"circuit": BELL_QASM3, "backend": "simulator", "shots": 100_001}, "INVALID_SHOTS"),
        ({"circuit": BELL_QASM3, "backend": "simulator", "shots": "many"}, "VALIDATION_ERROR"),
        ({"circuit": 5, "backend": "simulator"}, "VALIDATION_ERROR"),
    ],
)
def test_bad_estimate_requests_get_stable_codes(alice, body, code):
    response = alice.client.post("/api/v2.1/estimates", body, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == code
