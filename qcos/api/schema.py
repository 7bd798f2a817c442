"""What the OpenAPI schema says about every operation, beyond each view's own annotations.

Views document their own success bodies and the error codes they answer; this module adds what
every operation shares, so a generated client is told the truth everywhere:

* every error answer (any 4xx or 5xx) is the one shape ``{"error": {"code", "message",
  "details"}}`` -- the ``Error`` component (``qcos.api.errors``);
* any operation can answer what the request boundary, content negotiation and the database
  answer around its view (a NUL in the URL, 406, 414, 431, 503 with ``Retry-After``), an
  authenticated one 401, one with a JSON body 400 ``MALFORMED_REQUEST``, 413 and 415.

tests/api/test_openapi_schemathesis.py runs schemathesis against the schema the server serves.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema_field

from .limits import MAX_URL_BYTES

ERROR_REF = {"$ref": "#/components/schemas/Error"}

ERROR_COMPONENT: dict[str, Any] = {
    "type": "object",
    "description": "The one error shape of every 4xx and 5xx answer.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "Stable error code, e.g. VALIDATION_ERROR."},
                "message": {"type": "string", "description": "What went wrong, for people."},
                "details": {"type": "object", "additionalProperties": True,
                            "description": "Machine-readable context (which field, the limits, ...)."},
            },
            "required": ["code", "message", "details"],
        },
    },
    "required": ["error"],
}

RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying (on a transient fault).",
        "required": False,
        "schema": {"type": "integer", "minimum": 0},
    },
}

# (status, code, description): what any operation can answer, whatever its view does, because
# the request boundary (qcos.api.middleware), authentication, content negotiation or the
# database answer before or around it (docs/errors.md).
_COMMON_ALL = [
    ("400", "VALIDATION_ERROR", "VALIDATION_ERROR: a NUL character in the path, query string or a header"),
    ("406", "NOT_ACCEPTABLE", "NOT_ACCEPTABLE: the Accept header names no media type this operation answers with"),
    ("414", "URI_TOO_LONG", f"URI_TOO_LONG: the URL is longer than {MAX_URL_BYTES} bytes"),
    ("431", "HEADERS_TOO_LARGE", "HEADERS_TOO_LARGE: too many headers, or too long"),
    ("503", "SERVICE_UNAVAILABLE", "SERVICE_UNAVAILABLE: a transient fault (the database unreachable or "
                                   "restarting); retry after Retry-After"),
]
_COMMON_AUTHENTICATED = [
    ("401", "UNAUTHENTICATED", "UNAUTHENTICATED: no key, an invalid or revoked key, a key in the query "
                               "string, or two different keys in X-API-Key and Authorization"),
]
_COMMON_WITH_BODY = [
    ("400", "MALFORMED_REQUEST", "MALFORMED_REQUEST (not JSON, or JSON_TOO_DEEP / JSON_TOO_COMPLEX)"),
    ("413", "PAYLOAD_TOO_LARGE", "PAYLOAD_TOO_LARGE: the body is larger than the server accepts"),
    ("415", "UNSUPPORTED_MEDIA_TYPE", "UNSUPPORTED_MEDIA_TYPE: the body must be application/json"),
]


def error(description: str) -> OpenApiResponse:
    """An answer in the one error shape (also for a 2xx that carries one, e.g. a report not yet ready)."""
    return OpenApiResponse(response=ERROR_REF, description=description)


def documented(field_class: type, schema: dict[str, Any]) -> type:
    """``field_class`` as the schema states it, where the server's rule is not the field's own
    (e.g. a plain text field whose values a service checks with its own error code)."""
    return extend_schema_field(schema)(type(field_class.__name__, (field_class,), {}))


# Only what charges a budget (a job's submit, a benchmark run) can answer 402.
BUDGET_REFUSED = {402: error("BUDGET_EXCEEDED (a `block` budget or per-job limit refused it)")}


def add_common_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_COMPONENT
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            common = list(_COMMON_ALL)
            if any(requirement for requirement in operation.get("security", [])):
                common += _COMMON_AUTHENTICATED
            if "requestBody" in operation:
                common += _COMMON_WITH_BODY
            for status, code, description in common:
                response = responses.setdefault(status, {"description": description})
                if code not in response["description"]:
                    response["description"] += f"; or {description}"
            for status, response in responses.items():
                if status[0] in "45":
                    response["content"] = {"application/json": {"schema": ERROR_REF}}
                    if status == "503":
                        response.setdefault("headers", {}).update(RETRY_AFTER)
            operation["responses"] = dict(sorted(responses.items()))
    return result
