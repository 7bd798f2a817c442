"""RFC 8785 canonical JSON and the strict encoders the verifier relies on."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ledger.crypto.canonical import (
    CanonicalizationError,
    b64decode_strict,
    canonical_json,
    format_timestamp,
    hash_json,
    parse_tagged_sha256,
    parse_timestamp,
    sha256_tagged,
)


def test_rfc8785_differs_from_sort_keys_dumps() -> None:
    assert canonical_json({"b": 1.0, "a": [1e-07, -0.0, 1e21]}) == b'{"a":[1e-7,0,1e+21],"b":1}'
    # RFC 8785 §3.2.3: keys sorted by UTF-16 code units, so U+1F600 (surrogate 0xD83D)
    # precedes U+FB33, unlike a code-point sort such as json.dumps(sort_keys=True).
    obj = {"\ufb33": 1, "\U0001f600": 2, "\r": 3, "1": 4}
    assert canonical_json(obj) == '{"\\r":3,"1":4,"\U0001f600":2,"\ufb33":1}'.encode()
    assert json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() != canonical_json(obj)
    assert canonical_json("\u2028<>") == '"\u2028<>"'.encode()


def test_i_json_limits_raise() -> None:
    for bad in (float("nan"), float("inf"), 2**53, {1: "non-string key"}):
        with pytest.raises((CanonicalizationError, TypeError, ValueError)):
            canonical_json(bad)


def test_tagged_hashes() -> None:
    assert sha256_tagged(b"") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert hash_json({"a": 1, "b": [True, None]}) == hash_json({"b": [True, None], "a": 1.0})
    assert parse_tagged_sha256(sha256_tagged(b"")) == bytes.fromhex(sha256_tagged(b"")[7:])
    for bad in ("sha256:" + "A" * 64, "sha256:" + "a" * 63, "sha384:" + "a" * 64, None, "a" * 64):
        assert parse_tagged_sha256(bad) is None


def test_base64_is_strict() -> None:
    assert b64decode_strict("QQ==") == b"A"
    for bad in ("QR==", "QQ", "QQ=", " QQ==", "QQ==\n", "Q-==", "Q_==", 5, None):
        assert b64decode_strict(bad) is None


def test_timestamps() -> None:
    moment = datetime(2026, 1, 4, 10, 30, tzinfo=UTC)
    assert format_timestamp(moment) == "2026-01-04T10:30:00Z"
    assert format_timestamp(moment.astimezone(timezone(timedelta(hours=2)))) == "2026-01-04T10:30:00Z"
    assert format_timestamp(moment.replace(microsecond=5)) == "2026-01-04T10:30:00.000005Z"
    assert parse_timestamp("2026-01-04T12:30:00+02:00") == moment
    assert parse_timestamp("2026-01-04T10:30:00") is None  # naive
    assert parse_timestamp("2026-01-04") is None and parse_timestamp(None) is None
    with pytest.raises(ValueError):
        format_timestamp(datetime(2026, 1, 4))
