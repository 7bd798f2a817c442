from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path, re_path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularJSONAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

from qcos.api.errors import not_found_view


def healthz(request):
    return JsonResponse({"status": "ok"})


def landing(request):
    """``/``: where a newcomer's browser or curl lands first; names the way in rather than a 404."""
    return JsonResponse({
        "service": "QCOS",
        "api": "/api/v2.1/",
        "docs": "/api/docs",
        "schema": "/api/schema.json",
        "admin": "/admin/",
        "health": "/healthz",
    })


urlpatterns = [
    path("", landing, name="landing"),
    path("healthz", healthz),
    path("admin/", admin.site.urls),
    path("api/v2.1/", include("qcos.api.urls")),
    path("api/v2/bench/", include("bench.urls")),
    path("bench/", include("bench.urls_v3")),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/schema.json", SpectacularJSONAPIView.as_view(), name="schema-json"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    # Any other API path answers the one JSON error shape even with DEBUG on (the embedded
    # default), where Django would otherwise serve its HTML debug page listing the URL patterns.
    re_path(r"^(?:api|bench)/", not_found_view),
    # Every other unknown path too; "admin" without its slash is left to APPEND_SLASH's redirect.
    re_path(r"^(?!admin$)", not_found_view),
]

handler400 = "qcos.api.errors.bad_request_view"
handler403 = "qcos.api.errors.permission_denied_view"
handler404 = "qcos.api.errors.not_found_view"
handler500 = "qcos.api.errors.server_error_view"
