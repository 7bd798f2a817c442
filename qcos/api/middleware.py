"""The HTTP boundary: limits checked before anything reads the request, and the one JSON error
shape for every error answer, whoever produced it.

``RequestBoundaryMiddleware`` is the outermost middleware. Before the rest of Django runs it
refuses, in the one shape:

* a URL (path and query string) longer than ``MAX_URL_BYTES``: 414 ``URI_TOO_LONG``;
* more than ``MAX_HEADER_FIELDS`` header fields, one longer than ``MAX_HEADER_FIELD_BYTES`` or all
  of them past ``MAX_HEADER_BYTES``: 431 ``HEADERS_TOO_LARGE``;
* a NUL character in the path, the query string or a header: 400 ``VALIDATION_ERROR`` (PostgreSQL
  cannot store one, and no id, parameter or key contains one);
* a body whose ``Content-Length`` is past ``DATA_UPLOAD_MAX_MEMORY_SIZE``: 413
  ``PAYLOAD_TOO_LARGE``, read from the header before any of the body is. A chunked body (no
  length) is read up to that limit and no further.

Afterwards it answers what a view raised that is a transient fault (503 with ``Retry-After``) or
the client's (400) in the one shape, and rewrites any error response under ``/api/`` or
``/bench/`` that is not JSON (Django's debug pages, a handler that answered HTML) into it.
"""

from __future__ import annotations

import io

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse, JsonResponse

from qcos.errors import QCOSError, ValidationFailed

from .errors import error_body, json_error, json_response_for
from .limits import (
    MAX_HEADER_BYTES,
    MAX_HEADER_FIELD_BYTES,
    MAX_HEADER_FIELDS,
    MAX_URL_BYTES,
    HeadersTooLarge,
    PayloadTooLarge,
    UriTooLong,
)

JSON_PREFIXES = ("/api/", "/bench/")
_BODY_HEADERS = frozenset({"CONTENT_TYPE", "CONTENT_LENGTH"})  # in META without the HTTP_ prefix

_STATUS_CODES = {
    400: ("MALFORMED_REQUEST", "invalid request"),
    401: ("UNAUTHENTICATED", "authentication required"),
    403: ("PERMISSION_DENIED", "permission denied"),
    404: ("NOT_FOUND", "no such endpoint"),
    405: ("METHOD_NOT_ALLOWED", "method not allowed"),
    413: ("PAYLOAD_TOO_LARGE", "the request body is too large"),
    500: ("INTERNAL_ERROR", "internal server error"),
}


class RequestBoundaryMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (refused := _refusal(request)) is not None:
            return json_error(refused)
        response = self.get_response(request)
        if response.status_code >= 400 and request.path_info.startswith(JSON_PREFIXES) \
                and not response.get("Content-Type", "").startswith("application/json"):
            return _in_the_one_shape(response)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        # A view's exception that is a transient fault or the client's (DRF views answer these
        # themselves, through the same mapping); anything else stays a 500 for Django to log.
        return json_response_for(exception)


def _refusal(request: HttpRequest) -> QCOSError | None:
    meta = request.META
    path, query = request.path_info, meta.get("QUERY_STRING", "")
    if len(path) + len(query) > MAX_URL_BYTES:
        return UriTooLong(f"the URL is longer than {MAX_URL_BYTES} bytes", details={"max_bytes": MAX_URL_BYTES})
    if refused := _header_refusal(meta):
        return refused
    # "%00" is the only way a query string decodes to NUL; the path arrives decoded.
    if "\x00" in path:
        return ValidationFailed("invalid request: the path must not contain a NUL character")
    if "%00" in query or "\x00" in query:
        return ValidationFailed("invalid request: query parameters must not contain a NUL character")
    return _body_refusal(request)


def _header_refusal(meta) -> QCOSError | None:
    fields = total = 0
    for name, value in meta.items():
        if name[:5] != "HTTP_" and name not in _BODY_HEADERS or type(value) is not str:
            continue
        size = len(name) + len(value)
        fields, total = fields + 1, total + size
        if size > MAX_HEADER_FIELD_BYTES:
            header = _header_name(name)
            return HeadersTooLarge(f"the {header} header is longer than {MAX_HEADER_FIELD_BYTES} bytes",
                                   details={"header": header, "max_bytes": MAX_HEADER_FIELD_BYTES})
        if "\x00" in value:
            header = _header_name(name)
            return ValidationFailed(f"invalid request: the {header} header must not contain a NUL character",
                                    details={"header": header})
    if fields > MAX_HEADER_FIELDS:
        return HeadersTooLarge(f"more than {MAX_HEADER_FIELDS} header fields", details={"max_fields": MAX_HEADER_FIELDS})
    if total > MAX_HEADER_BYTES:
        return HeadersTooLarge(f"the headers are longer than {MAX_HEADER_BYTES} bytes in all",
                               details={"max_bytes": MAX_HEADER_BYTES})
    return None


def _header_name(meta_key: str) -> str:
    return meta_key.removeprefix("HTTP_").replace("_", "-").title()


def _body_refusal(request: HttpRequest) -> QCOSError | None:
    meta, limit = request.META, settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    length = meta.get("CONTENT_LENGTH")
    if length:
        if not length.isdigit():
            return QCOSError("invalid request: Content-Length is not a number of bytes", code="MALFORMED_REQUEST")
        return PayloadTooLarge(limit) if int(length) > limit else None
    chunked = "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
    if chunked and meta.get("wsgi.input_terminated"):
        # The server de-chunks (gunicorn): read the body now, bounded, and hand it on with its
        # length, so that Django and DRF read it like any other (without a length they read none).
        try:
            body = meta["wsgi.input"].read(limit + 1)
        except Exception:  # the server's parser refused the chunk framing: the client's fault
            return QCOSError("invalid request: the chunked body could not be read", code="MALFORMED_REQUEST")
        if len(body) > limit:
            return PayloadTooLarge(limit)
        request._stream = LimitedStream(io.BytesIO(body), len(body))
        meta["CONTENT_LENGTH"] = str(len(body))
    return None


def _in_the_one_shape(response: HttpResponse) -> JsonResponse:
    code, message = _STATUS_CODES.get(response.status_code, ("ERROR", response.reason_phrase.lower()))
    shaped = JsonResponse(error_body(code, message), status=response.status_code)
    for header in ("Allow", "Retry-After", "WWW-Authenticate"):
        if header in response:
            shaped[header] = response[header]
    return shaped
