"""Chargeback reports and the cost dashboard in the admin.

Who sees what: superusers every tenant; a member whose role may view costs (admin, auditor: the
``VIEW_COSTS`` capability) the tenants where they hold that role, nothing else. The dashboard
aggregates with ``finops.reports.aggregate`` (the reports' own GROUP BY, two queries) and draws its
charts as inline SVG built here, so the admin needs no JavaScript or chart dependency.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

from django.contrib import admin
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe

from qcos.tenancy.models import Tenant
from qcos.tenancy.roles import ROLE_CAPABILITIES, Capability

from . import reports
from .models import ChargebackReport, CostDashboard, usd
from .report_selectors import report_filename

COST_ROLES = sorted(role for role, caps in ROLE_CAPABILITIES.items() if Capability.VIEW_COSTS in caps)
DEFAULT_DAYS = 30
MONTHLY_AFTER_DAYS = 92  # longer ranges are drawn per calendar month
TOP_SERIES = 8
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")


def cost_tenant_ids(request) -> list[int] | None:
    """Tenants whose costs the user may see; None means all (superusers)."""
    if request.user.is_superuser:
        return None
    return list(request.user.memberships.filter(role__in=COST_ROLES).values_list("tenant_id", flat=True))


def _may_view(request) -> bool:
    return request.user.is_active and request.user.is_staff and (
        request.user.is_superuser or bool(cost_tenant_ids(request)))


class _CostsAdmin(admin.ModelAdmin):
    def has_module_permission(self, request) -> bool:
        return _may_view(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return _may_view(request)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ChargebackReport)
class ChargebackReportAdmin(_CostsAdmin):
    list_display = ["id", "tenant", "report_type", "start_date", "end_date", "format", "status", "rows",
                    "created_at", "completed_at", "download"]
    list_filter = ["status", "format"]
    list_select_related = ["tenant"]
    search_fields = ["=id", "=tenant__slug"]
    list_per_page = 100
    change_list_template = "admin/finops/chargebackreport_change_list.html"
    exclude = ["content"]
    readonly_fields = ["id", "tenant", "requested_by", "report_type", "start_date", "end_date", "group_by", "format",
                       "status", "rows", "content_sha256", "error", "created_at", "started_at", "attempts",
                       "completed_at", "download"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request).defer("content")
        tenants = cost_tenant_ids(request)
        return queryset if tenants is None else queryset.filter(tenant_id__in=tenants)

    @admin.display(description="file")
    def download(self, obj: ChargebackReport) -> str:
        if obj.status != "READY":
            return obj.error[:80] if obj.error else "—"
        url = reverse("admin:finops_chargebackreport_download", args=[obj.pk])
        return format_html('<a href="{}">download {}</a>', url, reports.EXTENSIONS[obj.format])

    def get_urls(self):
        view = self.admin_site.admin_view(self.download_view)
        return [path("<str:report_id>/download/", view, name="finops_chargebackreport_download"),
                *super().get_urls()]

    def download_view(self, request, report_id: str) -> HttpResponse:
        report = self.get_queryset(request).defer(None).filter(pk=report_id, status="READY").first()
        if report is None or not self.has_view_permission(request, report):
            raise Http404("no such report")
        response = HttpResponse(bytes(report.content), content_type=reports.CONTENT_TYPES[report.format])
        response["Content-Disposition"] = f'attachment; filename="{report_filename(report)}"'
        return response

    def changelist_view(self, request, extra_context=None):
        extra = {"cost_dashboard_url": reverse("admin:finops_costdashboard_changelist"), **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)


@admin.register(CostDashboard)
class CostDashboardAdmin(_CostsAdmin):
    """The dashboard replaces the change list: spend per tenant and per backend over time."""

    def get_queryset(self, request):
        return super().get_queryset(request).none()

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise Http404("no dashboard")
        scope = cost_tenant_ids(request)
        tenants = Tenant.objects.all() if scope is None else Tenant.objects.filter(pk__in=scope)
        chosen = request.GET.get("tenant") or ""
        tenant_ids = scope
        if chosen:
            tenant = tenants.filter(slug=chosen).first()
            tenant_ids = [tenant.pk] if tenant else []
        start, end, errors = _range(request)
        monthly = (end - start).days + 1 > MONTHLY_AFTER_DAYS
        charts = []
        for dim, title in (("tenant", "Spend per tenant"), ("backend", "Spend per backend")):
            rows = reports.aggregate(tenant_ids=tenant_ids, start_date=start, end_date=end, group_by=[dim],
                                     by_day=True)
            periods = _periods(start, end, monthly)
            series = _series(rows, dim, monthly)
            charts.append({"title": title, "svg": stacked_bars_svg(periods, series, monthly),
                           "totals": _totals(series)})
        context = {
            **self.admin_site.each_context(request),
            "title": "Cost dashboard",
            "opts": self.model._meta,
            "charts": charts,
            "start": start.isoformat(), "end": end.isoformat(), "errors": errors,
            "granularity": "month" if monthly else "day (UTC)",
            "tenants": list(tenants.values_list("slug", flat=True)), "chosen": chosen,
            "all_tenants": scope is None,
            "reports_url": reverse("admin:finops_chargebackreport_changelist"),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/finops/cost_dashboard.html", context)


def _range(request) -> tuple[date, date, list[str]]:
    today = timezone.now().date()
    errors: list[str] = []
    try:
        end = date.fromisoformat(request.GET.get("end") or today.isoformat())
        start = date.fromisoformat(request.GET.get("start") or (end - timedelta(days=DEFAULT_DAYS - 1)).isoformat())
    except ValueError:
        errors.append("dates must look like 2026-01-31; showing the last 30 days")
        end, start = today, today - timedelta(days=DEFAULT_DAYS - 1)
    if end < start:
        errors.append("the end is before the start; swapped")
        start, end = end, start
    if (end - start).days + 1 > reports.MAX_RANGE_DAYS:
        errors.append(f"at most {reports.MAX_RANGE_DAYS} days; showing the last {reports.MAX_RANGE_DAYS}")
        start = end - timedelta(days=reports.MAX_RANGE_DAYS - 1)
    return start, end, errors


def _periods(start: date, end: date, monthly: bool) -> list[date]:
    if monthly:
        months, cursor = [], start.replace(day=1)
        while cursor <= end:
            months.append(cursor)
            cursor = (cursor + timedelta(days=32)).replace(day=1)
        return months
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def _series(rows, dim: str, monthly: bool) -> dict[str, dict[date, int]]:
    """``{label: {period: micros}}``: the biggest ``TOP_SERIES`` by total, the rest as "other"."""
    by_label: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        period = row.day.replace(day=1) if monthly else row.day
        by_label[row.keys[dim] or "(none)"][period] += row.micros
    ranked = sorted(by_label, key=lambda label: -sum(by_label[label].values()))
    series = {label: dict(by_label[label]) for label in ranked[:TOP_SERIES]}
    if len(ranked) > TOP_SERIES:
        other: dict[date, int] = defaultdict(int)
        for label in ranked[TOP_SERIES:]:
            for period, micros in by_label[label].items():
                other[period] += micros
        series["other"] = dict(other)
    return series


def _totals(series: dict[str, dict[date, int]]) -> list[tuple[str, str, str]]:
    """(label, colour, USD) per series, the chart's legend."""
    return [(label, PALETTE[i % len(PALETTE)], reports.money(sum(values.values())))
            for i, (label, values) in enumerate(series.items())]


def _nice_ceiling(value: Decimal) -> Decimal:
    if value <= 0:
        return Decimal(1)
    exponent = value.adjusted()
    for step in (1, 2, 2.5, 5, 10):
        ceiling = Decimal(str(step)).scaleb(exponent)
        if ceiling >= value:
            return ceiling
    return Decimal(10).scaleb(exponent + 1)


def stacked_bars_svg(periods: list[date], series: dict[str, dict[date, int]], monthly: bool) -> str:
    """A stacked bar chart (one bar per period, one colour per series) as an inline SVG string."""
    width, height, left, bottom, top = 900, 280, 70, 40, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    stacks = [sum(values.get(p, 0) for values in series.values()) for p in periods]
    ceiling = _nice_ceiling(usd(max(stacks, default=0)) or Decimal(0))
    scale = plot_h / float(ceiling)  # drawing only: pixels, never money
    slot = plot_w / max(len(periods), 1)
    bar = max(slot * 0.8, 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
             f'role="img" style="max-width:{width}px;font:11px sans-serif">']
    for i in range(5):
        value = ceiling * i / 4
        y = top + plot_h - float(value) * scale
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">${value.normalize():f}</text>')
    label_every = max(1, len(periods) // 10)
    for index, period in enumerate(periods):
        x = left + index * slot + (slot - bar) / 2
        y = top + plot_h
        for colour_index, (label, values) in enumerate(series.items()):
            micros = values.get(period, 0)
            if not micros:
                continue
            h = float(usd(micros)) * scale
            y -= h
            tip = f"{label} · {period:%Y-%m}" if monthly else f"{label} · {period.isoformat()}"
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{max(h, 0.5):.1f}" '
                         f'fill="{PALETTE[colour_index % len(PALETTE)]}"><title>{escape(tip)}: '
                         f'${reports.money(micros)}</title></rect>')
        if index % label_every == 0:
            text = f"{period:%Y-%m}" if monthly else f"{period:%m-%d}"
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle">{text}</text>')
    parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#888"/>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  (every label above is escaped; the rest are numbers)
