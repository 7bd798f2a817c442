"""The limits of the HTTP boundary (docs/errors.md) and the errors that refuse what is past them.

Imports nothing of DRF's views, so that the parser (loaded by DRF's settings) can use it.
"""

from __future__ import annotations

from qcos.errors import QCOSError

MAX_URL_BYTES = 8192
MAX_HEADER_FIELDS = 100
MAX_HEADER_FIELD_BYTES = 8192
MAX_HEADER_BYTES = 32768
MAX_JSON_DEPTH = 64
# Parsing costs about a microsecond per array or object: this bounds a body's parse to a fraction
# of a second however it is built (an evidence bundle has a few dozen).
MAX_JSON_CONTAINERS = 100_000
# The body's limit is Django's DATA_UPLOAD_MAX_MEMORY_SIZE (QCOS_MAX_BODY_BYTES), read when used.


class MalformedRequest(QCOSError):
    code = "MALFORMED_REQUEST"


class PayloadTooLarge(QCOSError):
    code = "PAYLOAD_TOO_LARGE"
    http_status = 413

    def __init__(self, limit: int):
        super().__init__(f"the request body is larger than the {limit} bytes accepted",
                         details={"max_bytes": limit})


class UriTooLong(QCOSError):
    code = "URI_TOO_LONG"
    http_status = 414


class HeadersTooLarge(QCOSError):
    code = "HEADERS_TOO_LARGE"
    http_status = 431
