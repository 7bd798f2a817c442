"""Operator console for benchmark runs: the report list, a side-by-side comparison of selected
reports and their fidelity-vs-qubits plot. Read-only: runs change state through services only."""

from __future__ import annotations

import json

import orjson
from django.contrib import admin
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from qcos.tenancy.admin import TenantScopedAdmin

from .models import BenchmarkRun, BenchmarkStatus
from .plot import fidelity_vs_qubits_svg
from .selectors import MAX_COMPARE, comparison


def _report(run: BenchmarkRun) -> dict | None:
    return orjson.loads(run.report_body) if run.report_body else None


@admin.register(BenchmarkRun)
class BenchmarkRunAdmin(TenantScopedAdmin):
    list_display = ["id", "tenant", "project", "backend_id", "status", "dev_mode", "shots", "average_fidelity",
                    "estimated_cost_usd", "submitted_at"]
    list_select_related = ["tenant", "project"]
    list_filter = ["status", "dev_mode", "backend_id", "tenant"]
    search_fields = ["id", "content_hash", "backend_id"]
    date_hierarchy = "submitted_at"
    show_full_result_count = False
    list_per_page = 50
    actions = ["compare_selected"]
    exclude = ["report_body", "bundle_body"]

    def get_list_filter(self, request):
        # The tenant filter would list every tenant's name: superusers only.
        return self.list_filter if request.user.is_superuser else [f for f in self.list_filter if f != "tenant"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name not in self.exclude] + ["plot", "report_json"]

    # Staff see their tenants' runs (TenantScopedAdmin scopes the queryset); nobody edits them.
    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="average fidelity")
    def average_fidelity(self, run: BenchmarkRun) -> str:
        report = _report(run) if run.status == BenchmarkStatus.COMPLETED else None
        return f"{report['summary']['average_fidelity']:.4f}" if report else "—"

    @admin.display(description="fidelity vs qubits")
    def plot(self, run: BenchmarkRun) -> str:
        report = _report(run)
        return mark_safe(fidelity_vs_qubits_svg([report])) if report else "—"  # noqa: S308 - our own SVG

    @admin.display(description="signed report")
    def report_json(self, run: BenchmarkRun) -> str:
        report = _report(run)
        if not report:
            return "—"
        return format_html("<pre style='max-height:30em;overflow:auto'>{}</pre>", json.dumps(report, indent=2))

    @admin.action(description="Compare selected reports (fidelity vs qubits)")
    def compare_selected(self, request, queryset):
        ids = [str(pk) for pk in queryset.filter(status=BenchmarkStatus.COMPLETED).values_list("pk", flat=True)]
        if not ids:
            self.message_user(request, "select at least one completed run", level="warning")
            return None
        url = reverse("admin:bench_benchmarkrun_compare")
        return HttpResponseRedirect(f"{url}?ids={','.join(ids[:MAX_COMPARE])}")

    def get_urls(self):
        extra = [
            path("compare/", self.admin_site.admin_view(self.compare_view), name="bench_benchmarkrun_compare"),
            path("compare/plot.svg", self.admin_site.admin_view(self.compare_plot), name="bench_benchmarkrun_plot"),
        ]
        return extra + super().get_urls()

    def _selected_reports(self, request) -> list[dict]:
        ids = [i for i in request.GET.get("ids", "").split(",") if i][:MAX_COMPARE]
        runs = self.get_queryset(request).filter(pk__in=ids, status=BenchmarkStatus.COMPLETED)
        return [r for r in (_report(run) for run in runs) if r]

    def compare_view(self, request):
        reports = self._selected_reports(request)
        context = {
            **self.admin_site.each_context(request), "title": "Compare benchmark reports", "opts": self.model._meta,
            "table": comparison(reports) if reports else None,
            "plot": mark_safe(fidelity_vs_qubits_svg(reports, "Fidelity vs qubits: comparison")) if reports else "",  # noqa: S308
            "plot_url": f"{reverse('admin:bench_benchmarkrun_plot')}?ids={request.GET.get('ids', '')}",
        }
        return TemplateResponse(request, "admin/bench/compare.html", context)

    def compare_plot(self, request):
        return HttpResponse(fidelity_vs_qubits_svg(self._selected_reports(request)), content_type="image/svg+xml")
