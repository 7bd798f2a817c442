"""Bench V3 evidence routes, mounted at ``/bench/``."""

from django.urls import path

from . import api

urlpatterns = [
    path("evidence/verify", api.EvidenceVerifyView.as_view(), name="bench-evidence-verify"),
    path("evidence/<str:benchmark_id>", api.EvidenceView.as_view(), name="bench-evidence"),
]
