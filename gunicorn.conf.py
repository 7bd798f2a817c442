"""Gunicorn settings for the QCOS web tier.

Gunicorn reads ``./gunicorn.conf.py`` from its working directory by default: the Docker image and
docker-compose start it in /app, where this file is, so these apply there without a flag (else
pass ``-c gunicorn.conf.py``). Command-line options (``--bind``, ``--workers``) still win.

Request limits (docs/errors.md). Gunicorn refuses what is past its own limits before Django sees
the request, so these are set above Django's (qcos/api/limits.py: 8 KiB per header field, 32 KiB
of headers, 100 fields, 8 KiB of URL), and Django answers most oversized requests with the
details of what was too large. What is past gunicorn's limits too gets the same JSON error shape,
written by ``_json_error`` below instead of gunicorn's HTML page.
"""

import json

from gunicorn import util

# The longest request line gunicorn accepts (it cannot be raised past 8190 bytes).
limit_request_line = 8190
limit_request_fields = 128
limit_request_field_size = 16384

_CODES = {
    400: "MALFORMED_REQUEST",
    403: "PERMISSION_DENIED",
    414: "URI_TOO_LONG",
    417: "EXPECTATION_FAILED",
    431: "HEADERS_TOO_LARGE",
    500: "INTERNAL_ERROR",
    501: "NOT_IMPLEMENTED",
}


def _json_error(sock, status_int, reason, mesg):
    """gunicorn.util.write_error, in the one error shape. ``mesg`` quotes the client's bytes (the
    request line, a header name): it is not echoed back."""
    code = _CODES.get(status_int, "MALFORMED_REQUEST" if 400 <= status_int < 500 else "INTERNAL_ERROR")
    body = json.dumps({"error": {"code": code, "message": reason.lower(), "details": {}}}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"X-Content-Type-Options: nosniff\r\nContent-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


util.write_error = _json_error
