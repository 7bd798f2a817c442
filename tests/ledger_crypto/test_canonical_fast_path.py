"""The orjson fast path must give exactly the RFC 8785 bytes wherever it is taken."""

import random

import rfc8785

from ledger.crypto import canonical
from ledger.crypto.canonical import canonical_json

ALPHABET = "az09 \"\\/\b\f\n\r\t\x00\x01\x1f\x7f é€\u2028\u2029😀\ud7ff\ue000\uffff"


def random_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(7 if depth < 4 else 4)
    if kind == 0:
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(8)))
    if kind == 1:
        return rng.choice([0, 1, -1, 2**53 - 1, -(2**53 - 1), rng.randrange(-10**9, 10**9)])
    if kind == 2:
        return rng.choice([True, False, None])
    if kind == 3:
        return rng.choice([0.5, 1.0, -0.0, 1e-7, 1e21, 3.14159])
    if kind in (4, 5):
        keys = ["".join(rng.choice("abcXYZ_-09é😀") for _ in range(rng.randrange(1, 5))) for _ in range(rng.randrange(5))]
        return {k: random_value(rng, depth + 1) for k in keys}
    return [random_value(rng, depth + 1) for _ in range(rng.randrange(5))]


def test_fast_path_bytes_equal_the_reference_on_random_values():
    rng = random.Random(8785)
    fast_taken = 0
    for _ in range(5000):
        value = random_value(rng)
        if canonical._orjson_is_canonical(value):
            fast_taken += 1
        assert canonical_json(value) == rfc8785.dumps(value), value
    assert fast_taken > 1000  # the comparison really exercised the fast path


def test_floats_and_non_ascii_keys_use_the_reference():
    assert not canonical._orjson_is_canonical({"a": 1.0})
    assert not canonical._orjson_is_canonical({"é": 1})
    assert not canonical._orjson_is_canonical({"a": 2**53})
    assert canonical_json({"b": 1.0, "a": [1e21]}) == b'{"a":[1e+21],"b":1}'


def test_the_exact_type_check_answers_like_the_general_one():
    from collections import OrderedDict

    class Text(str):
        pass

    rng = random.Random(2026)
    values = [random_value(rng) for _ in range(5000)]
    values += [{Text("k"): 1}, {"a": Text("v")}, OrderedDict(a=1), [OrderedDict(b=1.5)], (1, "x"), {"a": (2**53,)},
               {"a": {"é": 1}}, {1: "x"}, {"a": b"bytes"}, {"a": set()}]
    for value in values:
        assert canonical._orjson_is_canonical(value) == canonical._orjson_is_canonical_general(value), value
