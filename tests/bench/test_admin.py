"""The operator console: report list, comparison of selected reports, the plot."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from .conftest import completed

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    user = get_user_model().objects.create_superuser("ops@example.org", "ops@example.org", "pw-ops-123456")
    client.force_login(user)
    return client


def test_list_compare_and_plot(operator, alice):
    ids = [completed(alice, backend_id=b, workloads=["ghz_5q", "bell_state"], shots=64, seed=1)["report"]["id"]
           for b in ("simulator", "ionq_aria")]
    listing = operator.get("/admin/bench/benchmarkrun/")
    assert listing.status_code == 200 and ids[0] in listing.content.decode()
    action = operator.post("/admin/bench/benchmarkrun/", {"action": "compare_selected", "_selected_action": ids})
    assert action.status_code == 302 and "/admin/bench/benchmarkrun/compare/?ids=" in action["Location"]
    page = operator.get(action["Location"])
    text = page.content.decode()
    assert page.status_code == 200 and "<svg" in text and "ionq_aria (DEV MODE)" in text and "ghz_5q" in text
    plot = operator.get(f"/admin/bench/benchmarkrun/compare/plot.svg?ids={','.join(ids)}")
    assert plot["Content-Type"] == "image/svg+xml" and plot.content.startswith(b"<svg")
    detail = operator.get(f"/admin/bench/benchmarkrun/{ids[1]}/change/")
    assert detail.status_code == 200 and "<svg" in detail.content.decode()


def test_staff_of_another_tenant_see_nothing(client, alice, carol):
    from qcos.tenancy import services

    benchmark_id = completed(alice, backend_id="simulator", workloads=["bell_state"], shots=16, seed=1)["report"]["id"]
    services.membership_set(tenant=carol.tenant, user=carol.user, role="admin")
    carol.user.refresh_from_db()
    client.force_login(carol.user)
    listing = client.get("/admin/bench/benchmarkrun/")
    assert listing.status_code == 200 and "research-alpha" not in listing.content.decode()
    assert benchmark_id not in listing.content.decode()
    assert client.get(f"/admin/bench/benchmarkrun/{benchmark_id}/change/").status_code == 302  # not found
