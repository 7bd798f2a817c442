"""Chargeback report writes: request, build (in a Celery task), recover (reads: ``report_selectors``).

* ``report_generate`` validates, stores a PENDING report and its audit entry in one transaction,
  and enqueues the build after commit (in the embedded default, eager Celery builds it right there).
* ``report_build`` claims the report with a conditional UPDATE (PENDING → RUNNING, or a RUNNING
  claim older than the task's hard time limit, whose worker must be gone), builds the file and
  stores it READY, or FAILED with the error. Duplicate deliveries find nothing to claim.
* ``reports_reconcile`` re-enqueues reports whose message the broker lost and fails those that
  used up their attempts.

The database row is the truth; the broker only wakes a worker (REFERENCE.md §4).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence
from datetime import date, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from ledger.audit import Outcome, audit_append, system_principal, user_principal
from qcos.tenancy.principal import Principal
from qcos.tenancy.roles import Capability

from . import reports
from .models import ChargebackReport, ReportStatus

logger = logging.getLogger(__name__)

# The build task's limits (workers.tasks.build_report): a RUNNING claim older than the hard limit
# belongs to a worker that died, so it may be claimed again.
SOFT_TIME_LIMIT_S = 600
HARD_TIME_LIMIT_S = 660
MAX_ATTEMPTS = 3
# A PENDING report not claimed for this long lost its message (crash between commit and publish,
# or the broker was down): the reconciler enqueues it again.
REQUEUE_AFTER_S = 120


def _now():
    return timezone.now()


# --- writes --------------------------------------------------------------------------------------


def report_generate(
    *,
    principal: Principal,
    report_type: str,
    start_date: date,
    end_date: date,
    group_by: Sequence[str] | None,
    format: str,
) -> ChargebackReport:
    """Request a report of the caller's tenant. Nothing is written unless the request is valid."""
    principal.require(Capability.VIEW_COSTS)
    spec = reports.report_spec(report_type=report_type, start_date=start_date, end_date=end_date,
                               group_by=group_by, format=format)
    with transaction.atomic():
        report = ChargebackReport.objects.create(
            id=f"rep-{secrets.token_hex(12)}", tenant=principal.tenant, requested_by=principal.user,
            report_type=spec.report_type, start_date=spec.start_date, end_date=spec.end_date,
            group_by=list(spec.group_by), format=spec.format, status=ReportStatus.PENDING,
        )
        audit_append(
            action="REPORT_REQUESTED",
            principal=user_principal(principal.user, principal.tenant.slug, principal.roles),
            resource_type="chargeback_report", resource_id=report.id,
            details={"report_type": spec.report_type, "start_date": spec.start_date.isoformat(),
                     "end_date": spec.end_date.isoformat(), "group_by": list(spec.group_by), "format": spec.format},
        )
        transaction.on_commit(lambda: report_enqueue(report_id=report.id))
    return report


def report_enqueue(*, report_id: str) -> None:
    """Wake a worker (the maintenance queue every worker listens on). Failure is logged, not
    raised: the report is committed and the reconciler enqueues it again."""
    from workers.providers.registry import MAINTENANCE_QUEUE
    from workers.tasks import build_report

    try:
        build_report.apply_async(args=[report_id], queue=MAINTENANCE_QUEUE, retry=False)
    except Exception:
        logger.warning("could not enqueue report %s; the reconciler will retry", report_id, exc_info=True)


def _claimable(now) -> Q:
    stale = now - timedelta(seconds=HARD_TIME_LIMIT_S)
    return (Q(status=ReportStatus.PENDING) | Q(status=ReportStatus.RUNNING, started_at__lt=stale)) & Q(
        attempts__lt=MAX_ATTEMPTS
    )


def report_build(*, report_id: str) -> str | None:
    """Build a claimed report; returns its final status, or None when there was nothing to claim
    (another delivery has it, or it is finished)."""
    now = _now()
    with transaction.atomic():
        claimed = ChargebackReport.objects.filter(_claimable(now), pk=report_id).update(
            status=ReportStatus.RUNNING, started_at=now, attempts=F("attempts") + 1
        )
    if not claimed:
        return None
    report = ChargebackReport.objects.select_related("tenant").defer("content").get(pk=report_id)
    spec = reports.ReportSpec(report.report_type, report.start_date, report.end_date, tuple(report.group_by),
                              report.format)
    principal = system_principal("reports", report.tenant.slug)
    try:
        built = reports.build(spec, tenant_ids=[report.tenant_id], tenant_id=report.tenant.slug)
    except Exception as exc:  # the report says why; the worker keeps running
        logger.exception("report %s failed", report_id)
        return _finish(report, principal, status=ReportStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
    return _finish(report, principal, status=ReportStatus.READY, content=built.content, rows=built.rows)


def _finish(report: ChargebackReport, principal: dict, *, status: str, content: bytes | None = None,
            rows: int = 0, error: str = "") -> str | None:
    digest = hashlib.sha256(content).hexdigest() if content is not None else ""
    with transaction.atomic():
        # Only the claim that is still current may finish it (a re-claimed report has a later start).
        won = ChargebackReport.objects.filter(
            pk=report.pk, status=ReportStatus.RUNNING, started_at=report.started_at
        ).update(status=status, content=content, content_sha256=digest, rows=rows, error=error[:2000],
                 completed_at=_now())
        if not won:
            return None
        details = {"format": report.format, "rows": rows, "content_sha256": digest, "attempt": report.attempts}
        if error:
            details["error"] = error[:500]
        audit_append(
            action="REPORT_GENERATED", principal=principal, resource_type="chargeback_report",
            resource_id=report.pk, details=details,
            outcome=Outcome.SUCCESS if status == ReportStatus.READY else Outcome.FAILURE,
            tenant_slug=report.tenant.slug,
        )
    return status


def reports_reconcile() -> dict[str, int]:
    """Re-enqueue reports the broker or a worker lost; fail those out of attempts."""
    now = _now()
    failed = 0
    exhausted = ChargebackReport.objects.filter(
        Q(status=ReportStatus.PENDING) | Q(status=ReportStatus.RUNNING,
                                           started_at__lt=now - timedelta(seconds=HARD_TIME_LIMIT_S)),
        attempts__gte=MAX_ATTEMPTS,
    ).select_related("tenant").defer("content")
    for report in exhausted[:100]:
        with transaction.atomic():
            if ChargebackReport.objects.filter(pk=report.pk, status=report.status, attempts=report.attempts).update(
                status=ReportStatus.FAILED, completed_at=now,
                error=f"the worker building this report was lost {MAX_ATTEMPTS} times",
            ):
                failed += 1
                audit_append(action="REPORT_GENERATED", principal=system_principal("reconciler", report.tenant.slug),
                             resource_type="chargeback_report", resource_id=report.pk, outcome=Outcome.FAILURE,
                             details={"error": "ATTEMPTS_EXHAUSTED"}, tenant_slug=report.tenant.slug)
    stuck = ChargebackReport.objects.filter(_claimable(now)).filter(
        Q(status=ReportStatus.PENDING, created_at__lt=now - timedelta(seconds=REQUEUE_AFTER_S))
        | Q(status=ReportStatus.RUNNING)  # claimable while RUNNING: its claim is stale
    )
    ids = list(stuck.values_list("pk", flat=True)[:100])
    for report_id in ids:
        report_enqueue(report_id=report_id)
    return {"reenqueued": len(ids), "failed": failed}
