"""budget-policy.yaml: the seed's format, applied by ``manage.py apply_budget_policy``; strict
validation with a stable code; warnings notify by e-mail and webhook once per window."""

from __future__ import annotations

import json
import threading
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core.management import CommandError, call_command

from finops.models import BudgetPolicy, BudgetWindow, PriceSheetVersion
from finops.policy import policy_apply
from ledger.models import AuditEntry
from qcos.errors import InvalidBudgetPolicy
from tests.factories import job_body

pytestmark = pytest.mark.django_db

SEED_POLICY = """\
# budget-policy.yaml
tenant: research-alpha
budget:
  monthly_limit_usd: 1000.00
  daily_limit_usd: 100.00
  per_job_limit_usd: 50.00

policies:
  on_budget_warning:
    threshold_percent: 80
    action: notify
    notify:
      - alice@example.com
      - budget-alerts@example.com

  on_budget_exceeded:
    action: block # block | notify | soft_block
    message: "Monthly budget exceeded. Contact admin."

  on_per_job_exceeded:
    action: require_approval
    approvers:
      - admin@example.com

cost_tiers:
  standard:
    multiplier: 1.0
  priority:
    multiplier: 1.5
  urgent:
    multiplier: 2.0
"""


def test_the_seed_policy_applies(alice, tmp_path, capsys):
    path = tmp_path / "budget-policy.yaml"
    path.write_text(SEED_POLICY)
    call_command("apply_budget_policy", str(path), "--json")
    printed = json.loads(capsys.readouterr().out)
    assert printed["tenant"] == "research-alpha" and Decimal(printed["monthly_limit_usd"]) == 1000
    policy = BudgetPolicy.objects.get()
    assert (policy.monthly_limit_usd, policy.daily_limit_usd, policy.per_job_limit_usd) == (
        Decimal("1000"), Decimal("100"), Decimal("50"))
    assert policy.on_exceeded == "block" and policy.exceeded_message == "Monthly budget exceeded. Contact admin."
    assert policy.warning_notify == ["alice@example.com", "budget-alerts@example.com"]
    assert policy.approvers == ["admin@example.com"] and policy.on_per_job_exceeded == "require_approval"
    assert policy.cost_tiers["priority"] == {"multiplier": "1.5"}
    assert AuditEntry.objects.filter(action="BUDGET_POLICY_APPLIED").count() == 1
    # Applying again replaces, never duplicates.
    call_command("apply_budget_policy", str(path))
    assert BudgetPolicy.objects.count() == 1


@pytest.mark.parametrize(("change", "path"), [
    (("monthly_limit_usd: 1000.00", "monthly_limit_usd: -5"), "budget.monthly_limit_usd"),
    (("action: block #", "action: explode #"), "policies.on_budget_exceeded.action"),
    (("  per_job_limit_usd: 50.00", "  per_job_limit: 50.00"), "budget"),
    (("- alice@example.com", "- not-an-email"), "policies.on_budget_warning.notify"),
    (("multiplier: 2.0", "multiplier: 0.5"), "cost_tiers.urgent"),
    (("threshold_percent: 80", "threshold_percent: 180"), "policies.on_budget_warning.threshold_percent"),
    (("tenant: research-alpha", "tenant: nobody"), "tenant"),
    (("tenant: research-alpha", "tenant: [oops"), "not valid YAML"),
])
def test_bad_policies_change_nothing(alice, change, path, tmp_path):
    with pytest.raises(InvalidBudgetPolicy) as caught:
        policy_apply(text=SEED_POLICY.replace(*change))
    assert caught.value.code == "INVALID_BUDGET_POLICY" and path in str(caught.value)
    assert not BudgetPolicy.objects.exists()
    file = tmp_path / "p.yaml"
    file.write_text(SEED_POLICY.replace(*change))
    with pytest.raises(CommandError, match="INVALID_BUDGET_POLICY"):
        call_command("apply_budget_policy", str(file))


def test_a_project_policy_and_lowered_limits_reach_open_windows(alice, django_capture_on_commit_callbacks):
    PriceSheetVersion.objects.create(sheet_id="local-simulator", version=2, family="local",
                                     effective_from=date(2025, 6, 1), parameters={"evidence_storage_usd": "0.10"})
    policy_apply(text="tenant: research-alpha\nproject: quantum-ml\nbudget: {daily_limit_usd: 5}\n")
    with django_capture_on_commit_callbacks(execute=True):
        alice.client.post("/api/v2.1/jobs", job_body(), format="json")
    assert BudgetWindow.objects.get().spent_micros == 100_000
    policy_apply(text="tenant: research-alpha\nproject: quantum-ml\nbudget: {daily_limit_usd: 0.15}\n")
    assert BudgetWindow.objects.get().limit_micros == 150_000
    response = alice.client.post("/api/v2.1/jobs", job_body(), format="json")
    assert response.status_code == 402


class _Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_warning_threshold_notifies_once_by_mail_and_webhook(alice, mailoutbox, django_capture_on_commit_callbacks,
                                                             monkeypatch):
    monkeypatch.setattr("qcos.jobs.services._enqueue", lambda job_id, queue: None)
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.received = []
    try:
        PriceSheetVersion.objects.create(sheet_id="local-simulator", version=2, family="local",
                                         effective_from=date(2025, 6, 1), parameters={"evidence_storage_usd": "0.30"})
        policy_apply(text=(
            "tenant: research-alpha\nbudget: {monthly_limit_usd: 1.00}\npolicies:\n  on_budget_warning:\n"
            "    threshold_percent: 50\n    notify: [ops@example.com]\n"
            f"    webhook: http://127.0.0.1:{server.server_port}/hook\n"
        ))
        for _ in range(3):  # 30 %, 60 % (crosses 50 %), 90 %
            with django_capture_on_commit_callbacks(execute=True):
                assert alice.client.post("/api/v2.1/jobs", job_body(), format="json").status_code == 202
    finally:
        server.shutdown()
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["ops@example.com"]
    assert "60.0%" in mailoutbox[0].body
    assert [hook["event"] for hook in _Hook.received] == ["BUDGET_WARNING"]
    assert AuditEntry.objects.filter(action="BUDGET_WARNING").count() == 1


def test_editing_a_policy_in_the_admin_resizes_open_windows_and_is_audited(alice, admin_client):
    policy = policy_apply(text="tenant: research-alpha\nbudget: {daily_limit_usd: 5}\n")
    from django.utils import timezone

    from finops.windows import windows_open

    window = windows_open([policy], timezone.now())[0]
    response = admin_client.post(f"/admin/finops/budgetpolicy/{policy.pk}/change/", {
        "tenant": alice.tenant.pk, "project": "", "daily_limit_usd": "2.5", "monthly_limit_usd": "",
        "per_job_limit_usd": "", "warning_threshold_percent": 80, "warning_notify": "[]",
        "webhook_url": "hooks.example.org/qcos", "on_exceeded": "block", "exceeded_message": "",
        "on_per_job_exceeded": "require_approval", "approvers": "[]", "cost_tiers": "{}",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    window.refresh_from_db()
    assert window.limit_micros == 2_500_000
    policy.refresh_from_db()
    assert policy.webhook_url == "https://hooks.example.org/qcos"  # no scheme typed → https, not http
    entry = AuditEntry.objects.filter(action="BUDGET_POLICY_APPLIED").order_by("-id").first()
    assert "daily_limit_usd" in entry.payload and '"channel":"admin"' in entry.payload.replace(" ", "")
