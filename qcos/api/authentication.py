"""API key authentication: ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``."""

from __future__ import annotations

import logging

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from qcos.tenancy.principal import Principal
from qcos.tenancy.selectors import api_key_lookup
from qcos.tenancy.keys import parse_prefix
from qcos.tenancy.services import api_key_touch, auth_failure_record

logger = logging.getLogger("qcos.auth")


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Resolves a key to ``(user, Principal)``; the principal is ``request.auth``.

    Keys in the query string are refused outright: they end up in proxy and access logs.
    """

    def authenticate(self, request):
        if "api_key" in request.query_params or "apikey" in request.query_params:
            self._fail(request, None, "API keys are not accepted in the query string")
        presented = self._presented_key(request)
        if presented is None:
            return None
        api_key = api_key_lookup(plaintext=presented)
        if api_key is None:
            self._fail(request, parse_prefix(presented), "invalid or revoked API key")
        roles = frozenset({api_key.member_role}) if api_key.member_role else frozenset()
        if not roles:
            self._fail(request, api_key.prefix, "the key's user is no longer a member of its tenant")
        api_key_touch(api_key=api_key, min_interval_seconds=settings.QCOS["API_KEY_TOUCH_SECONDS"])
        return api_key.user, Principal(user=api_key.user, tenant=api_key.tenant, roles=roles, api_key=api_key)

    @staticmethod
    def _fail(request, prefix: str | None, reason: str):
        remote = request.META.get("REMOTE_ADDR")
        logger.warning("failed API authentication from %s: %s", remote, reason)
        auth_failure_record(presented_prefix=prefix, remote_addr=remote, reason=reason)
        raise exceptions.AuthenticationFailed(reason)

    def _presented_key(self, request) -> str | None:
        """The key from either header. Two different keys on one request are refused rather than
        one silently preferred: which identity acts must never be ambiguous."""
        header = (request.META.get("HTTP_X_API_KEY") or "").strip() or None
        auth = authentication.get_authorization_header(request).decode("latin-1").split()
        bearer = auth[1] if len(auth) == 2 and auth[0].lower() == "bearer" else None
        if header and bearer and header != bearer:
            self._fail(request, parse_prefix(header), "two different API keys were presented "
                                                      "(X-API-Key and Authorization: Bearer)")
        return header or bearer

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="qcos"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Either header authenticates: the schema lists two alternative security requirements
    (``[{ApiKey: []}, {Bearer: []}]``), not one requiring both, which a generated client would
    satisfy by sending both -- refused when they differ."""

    target_class = "qcos.api.authentication.ApiKeyAuthentication"
    name = ["ApiKey", "Bearer"]

    def get_security_requirement(self, auto_schema):
        return [{"ApiKey": []}, {"Bearer": []}]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "apiKey", "in": "header", "name": "X-API-Key",
             "description": "The API key. Alternatively `Authorization: Bearer <key>`; never both with "
                            "different keys, never in the query string."},
            {"type": "http", "scheme": "bearer",
             "description": "The API key as a bearer token. Alternatively `X-API-Key: <key>`."},
        ]
