"""submit_input_fast must give JobSubmitInput's validated data whenever it gives anything."""

from __future__ import annotations

import json
import random

from qcos.api.serializers import JobSubmitInput, submit_input_fast

BELL = 'OPENQASM 3.0; include "stdgates.inc"; qubit[2] q; bit[2] c; h q[0]; cx q[0], q[1]; c = measure q;'


def _plain(value):
    return json.loads(json.dumps(value))


def _reference(body):
    serializer = JobSubmitInput(data=body)
    return _plain(serializer.validated_data) if serializer.is_valid() else None


TEXTS = ["simulator", " simulator", "simulator ", "", " ", "x" * 64, "x" * 65, "p", "quantum-ml", "a\x00b", "\ud800",
         "é", "x" * 63, "y" * 256, "y" * 257, "k=v", "a,b", "\t"]
VALUES = TEXTS + [None, 0, 1, 1024, -5, 2.5, True, False, "1024", [], {}, {"a": "b"}, "HIGH", "standard", "priority", "urgent", "URGENT"]


def _random_body(rng: random.Random):
    body = {}
    for key in ("circuit", "backend", "shots", "priority", "ledger", "extra"):
        if rng.random() < (0.9 if key in ("circuit", "backend") else 0.5 if key != "extra" else 0.05):
            if key == "circuit":
                body[key] = rng.choice([BELL, BELL, "", " " + BELL, 42, None, "a\x00"])
            elif key == "backend":
                body[key] = rng.choice(["simulator", "simulator", *TEXTS, 3, None])
            elif key == "ledger":
                ledger = {}
                for name in ("enabled", "tenant_id", "project", "tags", "other"):
                    if rng.random() < (0.5 if name != "other" else 0.05):
                        if name == "tags":
                            ledger[name] = rng.choice([
                                {}, {"k": "v"}, {"k": " v"}, {"": "v"}, {"a=b": "v"}, {"k": 1}, {"k": None},
                                {f"k{i}": "v" for i in range(51)}, {"k" * 65: "v"}, {"k": "y" * 257}, None, "k=v",
                                {"team": "ml", "run": "7"},
                            ])
                        elif name == "enabled":
                            ledger[name] = rng.choice([True, False, "true", 1, None])
                        else:
                            ledger[name] = rng.choice(VALUES)
                body[key] = ledger if rng.random() < 0.9 else rng.choice([None, "x", []])
            else:
                body[key] = rng.choice(VALUES)
    return body


def test_the_fast_path_agrees_with_the_serializer_on_random_bodies():
    rng = random.Random(21)
    taken = 0
    for _ in range(12000):
        body = _random_body(rng)
        fast = submit_input_fast(body)
        if fast is not None:
            taken += 1
            assert _plain(fast) == _reference(body), body
    assert taken > 300  # the comparison really exercised the fast path


def test_the_usual_bodies_take_the_fast_path():
    for body in (
        {"circuit": BELL, "backend": "simulator"},
        {"circuit": BELL, "backend": "simulator", "shots": 1024, "ledger": {"project": "p"}},
        {"circuit": BELL, "backend": "simulator", "shots": 10, "priority": "urgent",
         "ledger": {"enabled": True, "tenant_id": "t", "project": "p", "tags": {"k": "v"}}},
    ):
        assert _plain(submit_input_fast(body)) == _reference(body)


def test_anything_unusual_goes_to_the_serializer():
    for body in ([], None, "x", {"circuit": BELL}, {"circuit": BELL, "backend": "simulator", "shots": "10"},
                 {"circuit": BELL, "backend": "simulator", "shots": True},
                 {"circuit": BELL, "backend": "simulator", "ledger": {"project": " p"}},
                 {"circuit": BELL, "backend": "simulator", "ledger": {"tags": {"a=b": "v"}}}):
        assert submit_input_fast(body) is None
