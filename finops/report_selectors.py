"""Reads for chargeback reports: every API and admin read starts here, scoped to one tenant."""

from __future__ import annotations

from django.db.models import QuerySet

from qcos.errors import NotFound
from qcos.tenancy.principal import Principal
from qcos.tenancy.roles import Capability

from . import reports
from .models import ChargebackReport


def reports_for(*, principal: Principal) -> QuerySet[ChargebackReport]:
    """The one place tenant scoping happens for reports."""
    principal.require(Capability.VIEW_COSTS)
    return ChargebackReport.objects.filter(tenant=principal.tenant).defer("content")


def report_get(*, principal: Principal, report_id: str, with_content: bool = False) -> ChargebackReport:
    """A report of the caller's tenant; another tenant's is NOT_FOUND, exactly like a missing one."""
    queryset = reports_for(principal=principal)
    if with_content:
        queryset = queryset.defer(None)
    report = queryset.select_related("tenant").filter(pk=report_id).first()
    if report is None:
        raise NotFound(f"report {report_id} not found", details={"report_id": report_id})
    return report


def report_filename(report: ChargebackReport) -> str:
    return (f"{report.tenant.slug}-{report.report_type}-{report.start_date:%Y%m%d}-{report.end_date:%Y%m%d}"
            f".{reports.EXTENSIONS[report.format]}")
