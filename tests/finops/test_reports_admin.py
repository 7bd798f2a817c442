"""The admin: chargeback reports listed and downloaded per tenant, and the cost dashboard (spend per
tenant and per backend over time, inline SVG) for superusers (every tenant) and tenant admins
(theirs only)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.conftest import _actor

from .reports_helpers import charge

pytestmark = pytest.mark.django_db(transaction=True)

DASHBOARD = "/admin/finops/costdashboard/"
RANGE = "?start=2026-01-01&end=2026-01-31"
REPORT = {"start_date": "2026-01-01", "end_date": "2026-01-31", "format": "csv"}


def login(user) -> Client:
    client = Client()
    user.refresh_from_db()
    client.force_login(user)
    return client


@pytest.fixture
def spend(alice, carol):
    charge(alice, backend="ibm_brisbane", micros=45_000_000, settled_at=datetime(2026, 1, 4, tzinfo=UTC))
    charge(alice, backend="ionq_aria", micros=120_000_000, settled_at=datetime(2026, 1, 5, tzinfo=UTC))
    charge(carol, backend="rigetti_ankaa", micros=7_000_000, settled_at=datetime(2026, 1, 5, tzinfo=UTC))


@pytest.fixture
def root(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", "x")


def test_a_superuser_sees_every_tenant_on_the_dashboard(root, spend):
    page = login(root).get(DASHBOARD + RANGE)
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('<div class="cost-chart"><svg') == 2 and "Spend per tenant" in html and "Spend per backend" in html
    for label in ("research-alpha", "research-beta", "ibm_brisbane", "ionq_aria", "rigetti_ankaa"):
        assert label in html
    assert "165.00" in html and "7.00" in html  # per-tenant totals in the legend table
    assert "research-alpha · 2026-01-05: $120.00" in html  # a bar's tooltip


def test_a_tenant_admin_sees_only_their_tenant(adam, spend):
    html = login(adam.user).get(DASHBOARD + RANGE).content.decode()
    assert "research-alpha" in html and "ionq_aria" in html
    assert "research-beta" not in html and "rigetti_ankaa" not in html
    # Asking for another tenant by name shows nothing of it.
    html = login(adam.user).get(DASHBOARD + RANGE + "&tenant=research-beta").content.decode()
    assert "rigetti_ankaa" not in html and "7.00" not in html


def test_the_dashboard_is_on_the_admin_index_and_survives_bad_input(adam, root):
    index = login(adam.user).get("/admin/").content.decode()
    assert DASHBOARD in index and "/admin/finops/chargebackreport/" in index
    page = login(root).get(DASHBOARD + "?start=yesterday&end=2026-13-01")
    assert page.status_code == 200 and "dates must look like" in page.content.decode()
    assert login(root).get(DASHBOARD + "?start=2020-01-01&end=2026-01-31").status_code == 200  # clipped, monthly


def test_approvers_and_researchers_have_no_cost_pages(alice, bob):
    assert login(bob.user).get(DASHBOARD).status_code in (302, 403, 404)
    assert login(alice.user).get(DASHBOARD).status_code == 302  # not staff: to the login page


def test_reports_are_listed_and_downloaded_per_tenant(adam, spend, root):
    cora = _actor("research-beta", "cora@beta.example", "admin")
    mine = adam.client.post("/api/v2.1/reports", REPORT, format="json").json()["id"]
    theirs = cora.client.post("/api/v2.1/reports", REPORT, format="json").json()["id"]
    listing = login(adam.user).get("/admin/finops/chargebackreport/").content.decode()
    assert mine in listing and theirs not in listing and "Cost dashboard" in listing
    download = login(adam.user).get(f"/admin/finops/chargebackreport/{mine}/download/")
    assert download.status_code == 200 and download.content.decode().startswith("Tenant,Project,Backend")
    assert login(adam.user).get(f"/admin/finops/chargebackreport/{theirs}/download/").status_code == 404
    assert login(adam.user).get(f"/admin/finops/chargebackreport/{theirs}/change/").status_code in (302, 404)
    both = login(root).get("/admin/finops/chargebackreport/").content.decode()
    assert mine in both and theirs in both
    assert login(root).get(f"/admin/finops/chargebackreport/{mine}/change/").status_code == 200
