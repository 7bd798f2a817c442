"""What the OpenAPI schema says about every operation, beyond each view's own annotations.

Views document their own success bodies and the error codes they answer; this module adds what
every operation shares, so a generated client is told the truth everywhere:

* every error answer (any 4xx or 5xx) is the one shape ``{"error": {"code", "message",
  "details"}}`` -- the ``Error`` component (``qcos.api.errors``);
* any authenticated operation can answer 401 ``UNAUTHENTICATED`` and any operation 406
  ``NOT_ACCEPTABLE`` (content negotiation runs before the view);
* an operation with a JSON body can answer 400 ``MALFORMED_REQUEST`` and 415
  ``UNSUPPORTED_MEDIA_TYPE``;
* a 503 may carry ``Retry-After``.

tests/api/test_openapi_schemathesis.py runs schemathesis against the schema the server serves.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema_field

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

_COMMON_ALL = {
    "406": "NOT_ACCEPTABLE: the Accept header names no media type this operation answers with",
}
_COMMON_AUTHENTICATED = {
    "401": "UNAUTHENTICATED: no key, an invalid or revoked key, a key in the query string, "
           "or two different keys in X-API-Key and Authorization",
}
_COMMON_WITH_BODY = {
    "400": "MALFORMED_REQUEST (the body is not JSON) or VALIDATION_ERROR",
    "415": "UNSUPPORTED_MEDIA_TYPE: the body must be application/json",
}


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
            common = dict(_COMMON_ALL)
            if any(requirement for requirement in operation.get("security", [])):
                common.update(_COMMON_AUTHENTICATED)
            if "requestBody" in operation:
                common.update(_COMMON_WITH_BODY)
            for status, description in common.items():
                responses.setdefault(status, {"description": description})
            for status, response in responses.items():
                if status[0] in "45":
                    response["content"] = {"application/json": {"schema": ERROR_REF}}
                    if status == "503":
                        response.setdefault("headers", {}).update(RETRY_AFTER)
            operation["responses"] = dict(sorted(responses.items()))
    return result
