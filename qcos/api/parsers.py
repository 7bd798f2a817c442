"""The API's JSON body parser: bounded before it parses, strict about what it accepts.

DRF's JSONParser hands the body to ``json.load``, whose C scanner recurses once per nesting level:
a body nested a thousand deep raised RecursionError (a 500) and a 60 MB body was read whole. Here:

* the body is read up to ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes, never more (``PAYLOAD_TOO_LARGE``);
* its nesting is measured on the text before parsing, and anything deeper than ``MAX_JSON_DEPTH``
  is refused (``JSON_TOO_DEEP``), so the parser never recurses past it;
* a key given twice in one object is ``MALFORMED_REQUEST``: which of the two values counts must
  never depend on the parser (a proxy or a signature check may have read the other one);
* numbers that do not fit a double (``1e400``) and the literals ``NaN``/``Infinity`` are refused;
* a NUL character or an unpaired surrogate in any string, key or value, is ``VALIDATION_ERROR``:
  PostgreSQL cannot store either, and no field of the API has a use for them.
"""

from __future__ import annotations

import json
import math
from itertools import accumulate
from typing import Any

from django.conf import settings
from rest_framework.parsers import BaseParser

from qcos.errors import ValidationFailed

from .limits import MAX_JSON_CONTAINERS, MAX_JSON_DEPTH, MalformedRequest, PayloadTooLarge

_DEPTH_STEP = {40: 1, 41: -1}  # "(" and ")" as bytes
_AS_PARENS = bytes.maketrans(b"[{]}", b"(())")
_NOT_STRUCTURE = bytes(set(range(256)) - set(b'"[]{}'))


def _structure(text: str) -> bytes:
    """The text's arrays and objects as parentheses, strings left out: ``{"a": [1, "]"]}`` → ``(())``.

    Only C-speed byte operations (a regular expression over the strings cost milliseconds per
    circuit). Inside a string every backslash starts an escape and only ``\\`` has a backslash
    second, so removing ``\\`` pairs and then ``\"`` leaves exactly the quotes that delimit strings;
    the text between every other pair of them is outside strings.
    """
    raw = text.encode("utf-8", "surrogatepass").replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(raw.translate(None, _NOT_STRUCTURE).split(b'"')[::2])
    return outside.translate(_AS_PARENS)


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``text`` nests arrays and objects more than ``limit`` deep (strings excluded)."""
    if text.count("[") + text.count("{") <= limit:
        return False  # the common case: too few brackets to be that deep, and nothing to scan
    return _nesting_exceeds(_structure(text), limit)


def _nesting_exceeds(nesting: bytes, limit: int) -> bool:
    # Each pass of str.replace (C speed) lowers the deepest point by at most one level, and by
    # exactly one where it is closed: a wide body empties in a few passes, a deep one does not.
    remaining, passes = nesting, 0
    while remaining and passes <= limit:
        reduced = remaining.replace(b"()", b"")
        if len(reduced) == len(remaining):
            break
        remaining, passes = reduced, passes + 1
    rest = _max_depth(remaining, limit)
    if rest > limit:
        return True
    if passes + rest <= limit:
        return False
    return _max_depth(nesting, limit) > limit  # unbalanced (not JSON anyway): measure it all


def _max_depth(nesting: bytes, limit: int) -> int:
    """The deepest point of a string of parentheses, or the first depth past ``limit``."""
    depth = deepest = 0
    for start in range(0, len(nesting), 4096):
        running = list(accumulate(map(_DEPTH_STEP.__getitem__, nesting[start:start + 4096]), initial=depth))
        depth, deepest = running[-1], max(deepest, *running)
        if deepest > limit:
            break
    return deepest


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise MalformedRequest(f"JSON parse error: the key {duplicate[:64]!r} appears twice in one object",
                               details={"key": duplicate[:64]})
    return obj


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedRequest(f"JSON parse error: the number {text[:32]} is out of range")
    return value


def _no_constants(name: str):
    raise MalformedRequest(f"JSON parse error: {name} is not a JSON number")


def _bad_string(value: str) -> str | None:
    if "\x00" in value:
        return "a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "an unpaired surrogate"
    return None


def check_strings(data: Any, path: str = "") -> None:
    """Refuse NUL characters and unpaired surrogates anywhere in parsed JSON (keys and values)."""
    stack = [(data, path)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            if problem := _bad_string(value):
                raise ValidationFailed(f"invalid request: {where or 'body'}: text must not contain {problem}",
                                       details={"field": where or None})
        elif isinstance(value, dict):
            for key, item in value.items():
                if problem := _bad_string(key):
                    raise ValidationFailed(f"invalid request: {where or 'body'}: a key must not contain {problem}",
                                           details={"field": where or None})
                stack.append((item, f"{where}.{key}" if where else key))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(value))


def parse_json_body(raw: bytes, encoding: str = "utf-8") -> Any:
    try:
        text = raw.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise MalformedRequest(f"JSON parse error: the body is not valid {encoding} text") from None
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH:
        nesting = _structure(text)
        if _nesting_exceeds(nesting, MAX_JSON_DEPTH):
            raise MalformedRequest(f"JSON nested more than {MAX_JSON_DEPTH} levels deep", code="JSON_TOO_DEEP",
                                   details={"max_depth": MAX_JSON_DEPTH})
        if nesting.count(b"(") > MAX_JSON_CONTAINERS:
            raise MalformedRequest(f"JSON with more than {MAX_JSON_CONTAINERS} arrays and objects",
                                   code="JSON_TOO_COMPLEX", details={"max_containers": MAX_JSON_CONTAINERS})
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys, parse_float=_finite, parse_constant=_no_constants)
    except ValueError as exc:  # JSONDecodeError, and ints longer than Python converts
        raise MalformedRequest(f"JSON parse error - {exc}") from None
    # Only an escape can put a NUL or a surrogate in a JSON string (raw control characters are
    # refused by the parser), so a body without one needs no walk.
    lowered = text.lower() if "\\U" in text else text
    if "\\u0000" in lowered or "\\ud" in lowered:
        check_strings(data)
    return data


class BoundedJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(limit)
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        return parse_json_body(raw, encoding)
