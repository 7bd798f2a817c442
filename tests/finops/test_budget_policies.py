"""Budget boundaries and policy outcomes (issue 4): exact limits, UTC day and month roll-over,
settlement within the reservation, soft_block, notify, the warning threshold, per-job limits, and
the notifications (Django's locmem e-mail backend; the webhook against a local HTTP server).

Single-submitter tests run on any database (SQLite too: the conditional UPDATE ... RETURNING works
there); the warning-once-under-concurrency test needs PostgreSQL (see test_budget_concurrency.py).
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta, timezone as dt_timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.finops.test_budget_concurrency import (
    COST,
    COST_MICROS,
    assert_never_overspent,
    enqueued,  # noqa: F401 - fixture
    policy,
    principal_of,
    priced,  # noqa: F401 - fixture
    postgres_only,  # noqa: F401 - fixture
    run_together,
    submit,
)

ONE_MICRO = Decimal("0.000001")

pytestmark = pytest.mark.usefixtures("priced", "enqueued")


def windows():
    from finops.models import BudgetWindow

    return list(BudgetWindow.objects.select_related("policy").order_by("id"))


def audit_actions(action: str):
    from ledger.models import AuditEntry

    return list(AuditEntry.objects.filter(action=action).order_by("id"))


@pytest.fixture
def frozen_now(monkeypatch):
    """Set what ``django.utils.timezone.now`` returns (finops.windows calls it for the windows)."""
    from django.utils import timezone

    def freeze(moment: datetime) -> None:
        monkeypatch.setattr(timezone, "now", lambda: moment)

    return freeze


# --- boundaries -------------------------------------------------------------------------------------


@pytest.mark.parametrize("window", ["tenant-month", "tenant-day", "project-month", "project-day"])
@pytest.mark.django_db
def test_remaining_equal_to_the_cost_is_admitted_one_micro_dollar_less_is_not(window, alice):
    from qcos.errors import BudgetExceeded
    from qcos.tenancy.models import Project

    """Each of the four windows in turn binds: room for exactly 3 jobs (the third fills it to the
    micro-dollar), then 1 µ$ short of a fourth (refused), then exactly one more (admitted)."""
    project = Project.objects.get(tenant=alice.tenant, slug="quantum-ml")
    limits = {w: Decimal(100) for w in ["tenant-month", "tenant-day", "project-month", "project-day"]}
    limits[window] = 3 * COST
    policy(alice.tenant, monthly_limit_usd=limits["tenant-month"], daily_limit_usd=limits["tenant-day"])
    policy(alice.tenant, project, monthly_limit_usd=limits["project-month"], daily_limit_usd=limits["project-day"])
    principal = principal_of(alice)
    for _ in range(3):  # the third takes the window to exactly its limit
        submit(principal)
    tight = [w for w in windows() if w.limit_micros == 3 * COST_MICROS]
    assert len(tight) == 1 and tight[0].reserved_micros == tight[0].limit_micros
    with pytest.raises(BudgetExceeded) as refused:
        submit(principal)
    assert refused.value.details["remaining_usd"] == "0.000000"
    assert refused.value.details["window"] == window.split("-")[1]

    # One micro-dollar short: raise the limit to 4 jobs minus 1 µ$.
    from finops.models import BudgetWindow

    BudgetWindow.objects.filter(pk=tight[0].pk).update(limit_micros=4 * COST_MICROS - 1)
    with pytest.raises(BudgetExceeded) as refused:
        submit(principal)
    assert refused.value.details["remaining_usd"] == str(COST - ONE_MICRO)
    BudgetWindow.objects.filter(pk=tight[0].pk).update(limit_micros=4 * COST_MICROS)
    submit(principal)  # remaining == cost: admitted
    assert BudgetWindow.objects.get(pk=tight[0].pk).reserved_micros == 4 * COST_MICROS
    assert len(windows()) == 4  # both policies applied, day and month each
    assert_never_overspent()


@pytest.mark.django_db
def test_limit_exactly_the_cost_and_one_micro_dollar_below(alice, carol):
    """Fresh windows, created by the submit: limit == cost admits, limit == cost - 1 µ$ refuses."""
    from qcos.errors import BudgetExceeded
    from qcos.jobs.models import QuantumJob

    policy(alice.tenant, daily_limit_usd=COST)
    submit(principal_of(alice))
    policy(carol.tenant, daily_limit_usd=COST - ONE_MICRO)
    with pytest.raises(BudgetExceeded):
        submit(principal_of(carol))
    assert QuantumJob.objects.filter(tenant=carol.tenant).count() == 0
    assert len(audit_actions("BUDGET_EXCEEDED")) == 1


@pytest.mark.django_db
def test_day_rolls_over_at_midnight_utc(alice, frozen_now):
    from finops.models import WindowKind
    from qcos.errors import BudgetExceeded

    policy(alice.tenant, daily_limit_usd=COST, monthly_limit_usd=100)
    principal = principal_of(alice)
    frozen_now(datetime(2026, 3, 14, 23, 59, 59, 999_999, tzinfo=UTC))
    first = submit(principal)
    with pytest.raises(BudgetExceeded):
        submit(principal)
    # 01:30 in UTC+2 is still 23:30 on the 14th in UTC: the same day window.
    frozen_now(datetime(2026, 3, 15, 1, 30, tzinfo=dt_timezone(timedelta(hours=2))))
    with pytest.raises(BudgetExceeded):
        submit(principal)
    frozen_now(datetime(2026, 3, 15, 0, 0, tzinfo=UTC))
    second = submit(principal)
    days = {w.period_start.isoformat(): w for w in windows() if w.kind == WindowKind.DAY}
    assert set(days) == {"2026-03-14", "2026-03-15"}
    assert days["2026-03-14"].reserved_micros == days["2026-03-15"].reserved_micros == COST_MICROS
    (month,) = [w for w in windows() if w.kind == WindowKind.MONTH]
    assert month.period_start.isoformat() == "2026-03-01" and month.reserved_micros == 2 * COST_MICROS
    assert first.id != second.id


@pytest.mark.django_db
def test_month_rolls_over_at_the_first_midnight_utc(alice, frozen_now):
    from finops.models import WindowKind
    from qcos.errors import BudgetExceeded

    policy(alice.tenant, monthly_limit_usd=2 * COST, daily_limit_usd=100)
    principal = principal_of(alice)
    frozen_now(datetime(2026, 2, 28, 23, 59, 59, 999_999, tzinfo=UTC))
    submit(principal)
    frozen_now(datetime(2026, 2, 1, 0, 0, tzinfo=UTC))  # same month, its very first instant
    submit(principal)
    # 2026-03-01 00:30 in UTC+1 is still February in UTC.
    frozen_now(datetime(2026, 3, 1, 0, 30, tzinfo=dt_timezone(timedelta(hours=1))))
    with pytest.raises(BudgetExceeded):
        submit(principal)
    frozen_now(datetime(2026, 3, 1, 0, 0, tzinfo=UTC))
    submit(principal)
    months = {w.period_start.isoformat(): w.reserved_micros for w in windows() if w.kind == WindowKind.MONTH}
    assert months == {"2026-02-01": 2 * COST_MICROS, "2026-03-01": COST_MICROS}


@pytest.mark.django_db
def test_a_reservation_settles_and_releases_in_the_windows_it_was_made_in(alice, frozen_now):
    """Reserved on the last day of a month, settled (or released) on the first of the next: the
    old day and month windows move, the new ones do not."""
    from finops import settlements
    from finops.models import Charge, ChargeStatus

    policy(alice.tenant, monthly_limit_usd=1, daily_limit_usd=1)
    principal = principal_of(alice)
    frozen_now(datetime(2026, 4, 30, 23, 59, 59, tzinfo=UTC))
    old_settled, old_released = submit(principal), submit(principal)
    frozen_now(datetime(2026, 5, 1, 0, 0, 1, tzinfo=UTC))
    new = submit(principal)
    settled = settlements.charge_settle(resource_type="quantum_job", resource_id=old_settled.id)
    assert settled.cost_usd == COST
    assert settlements.charge_release(resource_type="quantum_job", resource_id=old_released.id)
    by_period = {(w.kind, w.period_start.isoformat()): (w.spent_micros, w.reserved_micros) for w in windows()}
    assert by_period == {
        ("month", "2026-04-01"): (COST_MICROS, 0), ("day", "2026-04-30"): (COST_MICROS, 0),
        ("month", "2026-05-01"): (0, COST_MICROS), ("day", "2026-05-01"): (0, COST_MICROS),
    }
    assert Charge.objects.get(resource_id=new.id).status == ChargeStatus.HELD
    assert_never_overspent()


# --- settlement never above the reservation ---------------------------------------------------------


@pytest.mark.django_db
def test_settlement_is_capped_at_the_reservation_and_releases_the_rest(alice):
    from django.db import IntegrityError, transaction

    from finops import settlements
    from finops.models import BudgetWindow, Charge

    policy(alice.tenant, monthly_limit_usd=5 * COST)
    principal = principal_of(alice)
    capped, cheaper, free = (submit(principal) for _ in range(3))
    # A metered actual above the estimate is charged at the reservation.
    assert settlements.reservation_settle(resource_type="quantum_job", resource_id=capped.id,
                                          actual=Decimal("99")).cost_usd == COST
    # Less than reserved (evidence not stored): the rest goes back to the window.
    result = settlements.charge_settle(resource_type="quantum_job", resource_id=cheaper.id,
                                       actual={"evidence_stored": False})
    assert result.cost_usd == Decimal("0")
    assert settlements.reservation_settle(resource_type="quantum_job", resource_id=free.id,
                                          actual=Decimal("0.002")).cost_usd == Decimal("0.002000")
    # Settling twice changes nothing.
    assert settlements.charge_settle(resource_type="quantum_job", resource_id=capped.id) is None
    (window,) = BudgetWindow.objects.all()
    assert window.reserved_micros == 0
    assert window.spent_micros == COST_MICROS + 0 + 2_000
    assert_never_overspent()
    # The database refuses a settlement above the estimate, and a window past a block limit.
    charge = Charge.objects.get(resource_id=capped.id)
    with pytest.raises(IntegrityError), transaction.atomic():
        Charge.objects.filter(pk=charge.pk).update(settled_micros=charge.estimated_micros + 1)
    if window.hard:
        with pytest.raises(IntegrityError), transaction.atomic():
            BudgetWindow.objects.filter(pk=window.pk).update(reserved_micros=window.limit_micros - window.spent_micros + 1)


@pytest.mark.django_db
def test_failure_cancellation_and_rejection_release(alice, bob):
    from finops.models import BudgetWindow, Charge, ChargeStatus
    from qcos.jobs import services
    from qcos.jobs.approvals import job_decide
    from qcos.jobs.states import JobStatus

    policy(alice.tenant, monthly_limit_usd=3 * COST, per_job_limit_usd=1)
    principal = principal_of(alice)
    failing, cancelled, kept = (submit(principal) for _ in range(3))
    job = services.job_claim(job_id=failing.id, worker="w")
    assert services.job_fail(job_id=failing.id, attempt=job.attempts, code="X", message="boom",
                             transient=False) == JobStatus.FAILED
    services.job_cancel(principal=principal, job=cancelled)
    (window,) = BudgetWindow.objects.all()
    assert window.reserved_micros == COST_MICROS  # only ``kept`` still holds
    # A job held for approval reserves nothing; rejecting it releases its pending charge.
    from finops.models import BudgetPolicy

    BudgetPolicy.objects.filter(tenant=alice.tenant).update(per_job_limit_usd=COST - ONE_MICRO)
    held = submit(principal)
    assert held.status == JobStatus.PENDING_APPROVAL
    job_decide(user=bob.user, job=held, decision="reject", reason="not now")
    statuses = dict(Charge.objects.values_list("resource_id", "status"))
    assert statuses == {failing.id: ChargeStatus.RELEASED, cancelled.id: ChargeStatus.RELEASED,
                        kept.id: ChargeStatus.HELD, held.id: ChargeStatus.RELEASED}
    window.refresh_from_db()
    assert (window.reserved_micros, window.spent_micros) == (COST_MICROS, 0)
    assert_never_overspent()


# --- soft_block, notify, warnings, per-job limits -----------------------------------------------------


@pytest.mark.django_db
def test_soft_block_holds_for_approval_with_nothing_reserved(alice, bob):
    from finops.models import BudgetWindow, Charge, ChargeStatus
    from qcos.jobs.approvals import job_decide
    from qcos.jobs.states import JobStatus

    policy(alice.tenant, monthly_limit_usd=2 * COST, on_exceeded="soft_block")
    principal = principal_of(alice)
    first, second, third = (submit(principal) for _ in range(3))
    assert [j.status for j in (first, second, third)] == [JobStatus.QUEUED, JobStatus.QUEUED,
                                                          JobStatus.PENDING_APPROVAL]
    charge = Charge.objects.get(resource_id=third.id)
    assert (charge.status, charge.reserved_micros, charge.windows, charge.hold_reason) == (
        ChargeStatus.PENDING, 0, [], "soft_block")
    (window,) = BudgetWindow.objects.all()
    assert (window.reserved_micros, window.hard) == (2 * COST_MICROS, False)
    assert audit_actions("JOB_APPROVAL_REQUIRED")
    assert not audit_actions("BUDGET_EXCEEDED")
    # The approver's override admits it past the limit, marked and audited.
    job_decide(user=bob.user, job=third, decision="approve", reason="deadline")
    charge.refresh_from_db()
    window.refresh_from_db()
    assert (charge.status, charge.over_limit) == (ChargeStatus.HELD, True)
    assert window.reserved_micros == 3 * COST_MICROS > window.limit_micros
    assert len(audit_actions("BUDGET_OVERRIDE")) == 1


@pytest.mark.django_db
def test_a_block_window_refuses_even_when_a_soft_block_window_is_also_full(alice):
    """``block`` wins over ``soft_block``: a job no approval could admit is refused at submit, not
    held for an approval that must fail (whatever the order of the windows' ids)."""
    from qcos.errors import BudgetExceeded
    from qcos.jobs.models import QuantumJob
    from qcos.tenancy.models import Project

    project = Project.objects.get(tenant=alice.tenant, slug="quantum-ml")
    # The project's soft_block policy (and so its window) comes first in id order.
    policy(alice.tenant, project, monthly_limit_usd=COST, on_exceeded="soft_block")
    policy(alice.tenant, monthly_limit_usd=COST, on_exceeded="block")
    principal = principal_of(alice)
    submit(principal)
    with pytest.raises(BudgetExceeded):
        submit(principal)
    assert QuantumJob.objects.count() == 1


@pytest.mark.django_db
def test_notify_admits_past_the_limit_and_announces_once(alice, mailoutbox, webhook,
                                                         django_capture_on_commit_callbacks):
    from finops.models import BudgetWindow, Charge

    policy(alice.tenant, monthly_limit_usd=2 * COST, on_exceeded="notify", warning_threshold_percent=50,
           warning_notify=["finance@alpha.example"], webhook_url=webhook.url)
    principal = principal_of(alice)
    for _ in range(5):
        with django_capture_on_commit_callbacks(execute=True):
            submit(principal)
    (window,) = BudgetWindow.objects.all()
    assert window.reserved_micros == 5 * COST_MICROS and not window.hard
    assert sorted(Charge.objects.values_list("over_limit", flat=True)) == [False, False, True, True, True]
    exceeded = audit_actions("BUDGET_EXCEEDED")
    assert len(exceeded) == 1 and exceeded[0].outcome == "SUCCESS"
    assert len(audit_actions("BUDGET_WARNING")) == 1
    events = [json.loads(body)["event"] for body in webhook.bodies]
    assert events == ["BUDGET_WARNING", "BUDGET_EXCEEDED"]
    assert [m.to for m in mailoutbox] == [["finance@alpha.example"]] * 2
    assert "warning" in mailoutbox[0].subject and "exceeded" in mailoutbox[1].subject
    assert "research-alpha" in mailoutbox[1].body


@pytest.mark.django_db
def test_warning_threshold_announced_once_by_email_and_webhook(alice, mailoutbox, webhook,
                                                               django_capture_on_commit_callbacks):
    policy(alice.tenant, monthly_limit_usd=10 * COST, warning_threshold_percent=80,
           warning_notify=["finance@alpha.example", "lead@alpha.example"], webhook_url=webhook.url)
    principal = principal_of(alice)
    for n in range(10):
        with django_capture_on_commit_callbacks(execute=True):
            submit(principal)
        if n == 6:  # 70 %: not yet
            assert not mailoutbox and not webhook.bodies
    assert len(audit_actions("BUDGET_WARNING")) == 1
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["finance@alpha.example", "lead@alpha.example"]
    (body,) = webhook.bodies
    payload = json.loads(body)
    assert payload["event"] == "BUDGET_WARNING" and payload["used_usd"] == str(8 * COST)
    assert payload["tenant_id"] == "research-alpha" and payload["window"] == "month"


@pytest.mark.django_db(transaction=True)
def test_warning_announced_exactly_once_under_concurrency(postgres_only, alice, mailoutbox):
    """Many submitters cross the threshold together: one BUDGET_WARNING, one e-mail."""
    from finops.models import BudgetWindow

    policy(alice.tenant, monthly_limit_usd=100 * COST, daily_limit_usd=40 * COST, warning_threshold_percent=25,
           warning_notify=["finance@alpha.example"])
    principal = principal_of(alice)
    outcomes = run_together([lambda: submit(principal).id] * 48)
    assert not outcomes.errors, outcomes.errors[:5]
    assert len(outcomes.admitted) == 40
    warnings = audit_actions("BUDGET_WARNING")
    assert sorted(json.loads(e.payload)["details"]["window"] for e in warnings) == ["day", "month"]
    assert all(w.warned for w in BudgetWindow.objects.all())
    assert len(mailoutbox) == 2
    assert_never_overspent()


@pytest.mark.django_db
def test_per_job_limit_block_refuses(alice):
    from qcos.errors import BudgetExceeded
    from qcos.jobs.models import QuantumJob

    policy(alice.tenant, per_job_limit_usd=COST - ONE_MICRO, on_per_job_exceeded="block", monthly_limit_usd=100)
    with pytest.raises(BudgetExceeded) as refused:
        submit(principal_of(alice))
    assert refused.value.details["window"] == "per_job"
    assert not QuantumJob.objects.exists()
    assert len(audit_actions("BUDGET_EXCEEDED")) == 1
    policy_row = alice.tenant.budget_policies.get()
    policy_row.per_job_limit_usd = COST  # exactly the cost: within the limit
    policy_row.save()
    submit(principal_of(alice))


@pytest.mark.django_db
def test_per_job_limit_require_approval_holds_then_reserves_on_approval(alice, bob):
    from finops.models import BudgetWindow, Charge, ChargeStatus
    from qcos.errors import BudgetExceeded
    from qcos.jobs.approvals import job_decide
    from qcos.jobs.states import JobStatus

    policy(alice.tenant, per_job_limit_usd=COST - ONE_MICRO, on_per_job_exceeded="require_approval",
           monthly_limit_usd=2 * COST)
    principal = principal_of(alice)
    held = [submit(principal) for _ in range(3)]
    assert all(j.status == JobStatus.PENDING_APPROVAL for j in held)
    assert not BudgetWindow.objects.exists() or all(w.reserved_micros == 0 for w in BudgetWindow.objects.all())
    assert {c.hold_reason for c in Charge.objects.all()} == {"per_job_limit"}
    job_decide(user=bob.user, job=held[0], decision="approve", reason="ok")
    job_decide(user=bob.user, job=held[1], decision="approve", reason="ok")
    # Approval re-checks the block window: the third no longer fits, and nothing changes.
    with pytest.raises(BudgetExceeded):
        job_decide(user=bob.user, job=held[2], decision="approve", reason="ok")
    held[2].refresh_from_db()
    assert held[2].status == JobStatus.PENDING_APPROVAL
    assert Charge.objects.get(resource_id=held[2].id).status == ChargeStatus.PENDING
    (window,) = BudgetWindow.objects.all()
    assert window.reserved_micros == 2 * COST_MICROS == window.limit_micros
    assert_never_overspent()


# --- the webhook receiver ----------------------------------------------------------------------------


class _Hook:
    def __init__(self):
        self.bodies: list[bytes] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                hook.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/budget-hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    hook = _Hook()
    yield hook
    hook.close()


@pytest.mark.django_db(transaction=True)
def test_notify_announces_the_exceedance_once_under_concurrency(postgres_only, alice):
    """Many submitters take a notify window past its limit together: all admitted, one
    BUDGET_EXCEEDED (the reservation that crossed the limit), one BUDGET_WARNING."""
    from finops.models import BudgetWindow

    policy(alice.tenant, monthly_limit_usd=10 * COST, on_exceeded="notify")
    principal = principal_of(alice)
    outcomes = run_together([lambda: submit(principal).id] * 30)
    assert not outcomes.errors, outcomes.errors[:5]
    assert len(outcomes.admitted) == 30
    assert len(audit_actions("BUDGET_EXCEEDED")) == 1
    assert len(audit_actions("BUDGET_WARNING")) == 1
    (window,) = BudgetWindow.objects.all()
    assert window.reserved_micros == 30 * COST_MICROS


@pytest.mark.django_db
def test_notify_announces_the_exceedance_once_per_window_even_after_releases(alice):
    from qcos.jobs import services

    policy(alice.tenant, monthly_limit_usd=2 * COST, on_exceeded="notify")
    principal = principal_of(alice)
    jobs = [submit(principal) for _ in range(3)]  # the third crosses the limit: announced
    assert len(audit_actions("BUDGET_EXCEEDED")) == 1
    for job in jobs[:2]:
        services.job_cancel(principal=principal, job=job)  # back under the limit
    submit(principal)
    submit(principal)  # crosses the same window's limit again
    assert len(audit_actions("BUDGET_EXCEEDED")) == 1
