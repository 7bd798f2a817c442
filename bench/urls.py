"""The seed's Benchmarking API routes, mounted at ``/api/v2/bench/`` (Bench V3: ``urls_v3``)."""

from django.urls import path

from . import api

urlpatterns = [
    path("workloads", api.WorkloadsView.as_view(), name="bench-workloads"),
    path("run", api.RunView.as_view(), name="bench-run"),
    path("report/<str:benchmark_id>", api.ReportView.as_view(), name="bench-report"),
    path("report/<str:benchmark_id>/download", api.DownloadView.as_view(), name="bench-report-download"),
    path("verify", api.VerifyView.as_view(), name="bench-verify"),
    path("compare", api.CompareView.as_view(), name="bench-compare"),
]
