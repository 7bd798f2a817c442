"""RFC 9162 Merkle tree: reference vectors from transparency-dev/merkle, tampered proofs,
exhaustive small trees and the perfect-subtree store."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest

from ledger.crypto import merkle

VECTORS = json.loads((Path(__file__).parent / "data" / "rfc9162_vectors.json").read_text())
LEAVES = [merkle.leaf_hash(bytes.fromhex(d)) for d in VECTORS["leaves"]]
ROOTS = [bytes.fromhex(r) for r in VECTORS["roots"]]
SOME_HASH = bytes.fromhex(VECTORS["some_hash"])
EMPTY = merkle.EMPTY_ROOT


def _hx(items: list[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in items]


def _flip(data: bytes, bit: int) -> bytes:
    return bytes([data[0] ^ (1 << bit)]) + data[1:]


def test_hasher_vectors() -> None:
    h = VECTORS["hasher"]
    assert merkle.EMPTY_ROOT.hex() == h["empty_root"]
    assert merkle.root([]).hex() == h["empty_root"]
    assert merkle.leaf_hash(b"").hex() == h["empty_leaf"]
    assert merkle.leaf_hash(b"L123456").hex() == h["leaf_L123456"]
    assert merkle.node_hash(b"N123", b"N456").hex() == h["node_N123_N456"]


def test_second_preimage_domain_separation() -> None:
    a, b = merkle.leaf_hash(b"Hello"), merkle.leaf_hash(b"World")
    assert merkle.node_hash(a, b) != merkle.leaf_hash(a + b)
    assert merkle.node_hash(a, b) != merkle.node_hash(b, a)


@pytest.mark.parametrize("size", range(1, 9))
def test_roots(size: int) -> None:
    assert merkle.root(LEAVES[:size]) == ROOTS[size - 1]
    store = merkle.levels_getter(merkle.perfect_levels(LEAVES))
    assert merkle.root_from(size, store) == ROOTS[size - 1]


@pytest.mark.parametrize("vector", VECTORS["inclusion"], ids=lambda v: f"{v['index']}of{v['size']}")
def test_inclusion_vectors(vector: dict) -> None:
    index, size, proof = vector["index"], vector["size"], _hx(vector["proof"])
    assert merkle.inclusion_proof(index, LEAVES[:size]) == proof
    assert merkle.inclusion_proof_from(index, size, LEAVES) == proof
    assert merkle.verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size - 1])


@pytest.mark.parametrize("vector", VECTORS["consistency"], ids=lambda v: f"{v['size1']}to{v['size2']}")
def test_consistency_vectors(vector: dict) -> None:
    s1, s2, proof = vector["size1"], vector["size2"], _hx(vector["proof"])
    assert merkle.consistency_proof(s1, LEAVES[:s2]) == proof
    assert merkle.consistency_proof_from(s1, s2, LEAVES) == proof
    assert merkle.verify_consistency(s1, s2, ROOTS[s1 - 1], ROOTS[s2 - 1], proof)


def _groups(vector: dict) -> list[list[tuple[int, int]]]:
    ids = [tuple(i) for i in vector["ids"]]
    if vector["rehash"] is None:
        return [[i] for i in ids]
    begin, end = vector["rehash"]
    # Go lists a rehashed group bottom-up; our plan lists it left to right.
    return [[i] for i in ids[:begin]] + [list(reversed(ids[begin:end]))] + [[i] for i in ids[end:]]


@pytest.mark.parametrize("vector", VECTORS["inclusion_nodes"], ids=lambda v: f"{v['index']}of{v['size']}")
def test_inclusion_plan_matches_reference_node_ids(vector: dict) -> None:
    assert merkle.inclusion_proof_nodes(vector["index"], vector["size"]) == _groups(vector)


@pytest.mark.parametrize("vector", VECTORS["consistency_nodes"], ids=lambda v: f"{v['size1']}to{v['size2']}")
def test_consistency_plan_matches_reference_node_ids(vector: dict) -> None:
    assert merkle.consistency_proof_nodes(vector["size1"], vector["size2"]) == _groups(vector)


def _inclusion_tampers(index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes):
    """Our own list of wrong inputs, modelled on the categories the reference tests use."""
    yield "index - 1", (leaf, index - 1, size, proof, root)
    yield "index + 1", (leaf, index + 1, size, proof, root)
    yield "index ^ 2", (leaf, index ^ 2, size, proof, root)
    yield "size * 2", (leaf, index, size * 2, proof, root)
    yield "size // 2", (leaf, index, size // 2, proof, root)
    yield "short wrong leaf", (b"WrongLeaf", index, size, proof, root)
    yield "wrong leaf", (SOME_HASH, index, size, proof, root)
    yield "empty-tree root", (leaf, index, size, proof, EMPTY)
    yield "random root", (leaf, index, size, proof, SOME_HASH)
    yield "short root", (leaf, index, size, proof, root[:31])
    yield "trailing empty", (leaf, index, size, [*proof, b""], root)
    yield "trailing root", (leaf, index, size, [*proof, root], root)
    yield "preceding empty", (leaf, index, size, [b"", *proof], root)
    yield "preceding root", (leaf, index, size, [root, *proof], root)
    yield "not a list", (leaf, index, size, "".join(p.hex() for p in proof), root)
    if proof:
        yield "hex strings", (leaf, index, size, [p.hex() for p in proof], root)
    yield "string index", (leaf, str(index), size, proof, root)
    yield "float size", (leaf, index, float(size), proof, root)
    for i in range(len(proof)):
        for bit in (0, 3, 7):
            bad = list(proof)
            bad[i] = _flip(bad[i], bit)
            yield f"proof[{i}] bit {bit}", (leaf, index, size, bad, root)
        bad = list(proof)
        bad[i] = bad[i] + b"\x00"
        yield f"proof[{i}] padded", (leaf, index, size, bad, root)
    if proof:
        yield "truncated", (leaf, index, size, proof[:-1], root)
        yield "first removed", (leaf, index, size, proof[1:], root)
    if len(proof) > 1:
        yield "inserted", (leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], root)
        yield "swapped", (leaf, index, size, [proof[1], proof[0], *proof[2:]], root)


def _consistency_tampers(s1: int, s2: int, r1: bytes, r2: bytes, proof: list[bytes]):
    yield "size1 - 1", (s1 - 1, s2, r1, r2, proof)
    yield "size1 + 1", (s1 + 1, s2, r1, r2, proof)
    yield "size1 ^ 2", (s1 ^ 2, s2, r1, r2, proof)
    yield "size2 * 2", (s1, s2 * 2, r1, r2, proof)
    yield "size2 // 2", (s1, s2 // 2, r1, r2, proof)
    yield "wrong root1", (s1, s2, SOME_HASH, r2, proof)
    yield "wrong root2", (s1, s2, r1, SOME_HASH, proof)
    yield "short root1", (s1, s2, b"WrongRoot", r2, proof)
    yield "swapped roots", (s1, s2, r2, r1, proof)
    yield "empty proof", (s1, s2, r1, r2, [])
    yield "trailing empty", (s1, s2, r1, r2, [*proof, b""])
    yield "trailing root1", (s1, s2, r1, r2, [*proof, r1])
    yield "trailing root2", (s1, s2, r1, r2, [*proof, r2])
    yield "preceding empty", (s1, s2, r1, r2, [b"", *proof])
    yield "preceding root1", (s1, s2, r1, r2, [r1, *proof])
    yield "preceding root2", (s1, s2, r1, r2, [r2, *proof])
    yield "preceding proof[0]", (s1, s2, r1, r2, [proof[0], *proof])
    yield "truncated", (s1, s2, r1, r2, proof[:-1])
    for i in range(len(proof)):
        for bit in (0, 4, 7):
            bad = list(proof)
            bad[i] = _flip(bad[i], bit)
            yield f"proof[{i}] bit {bit}", (s1, s2, r1, r2, bad)
        bad = list(proof)
        bad[i] = bad[i][:-1]
        yield f"proof[{i}] truncated hash", (s1, s2, r1, r2, bad)


@pytest.mark.parametrize("vector", VECTORS["inclusion"], ids=lambda v: f"{v['index']}of{v['size']}")
def test_tampered_inclusion_proofs_are_rejected(vector: dict) -> None:
    index, size, proof = vector["index"], vector["size"], _hx(vector["proof"])
    accepted = [
        name
        for name, args in _inclusion_tampers(index, size, proof, ROOTS[size - 1], LEAVES[index])
        if merkle.verify_inclusion(*args)
    ]
    assert accepted == []


@pytest.mark.parametrize(
    "vector", [v for v in VECTORS["consistency"] if v["proof"]], ids=lambda v: f"{v['size1']}to{v['size2']}"
)
def test_tampered_consistency_proofs_are_rejected(vector: dict) -> None:
    s1, s2, proof = vector["size1"], vector["size2"], _hx(vector["proof"])
    accepted = [
        name
        for name, args in _consistency_tampers(s1, s2, ROOTS[s1 - 1], ROOTS[s2 - 1], proof)
        if merkle.verify_consistency(*args)
    ]
    assert accepted == []


def test_trivial_and_invalid_consistency_cases() -> None:
    r = ROOTS
    assert merkle.verify_consistency(0, 0, EMPTY, EMPTY, [])
    assert merkle.verify_consistency(0, 5, EMPTY, r[4], [])
    assert merkle.verify_consistency(3, 3, r[2], r[2], [])
    assert not merkle.verify_consistency(0, 5, SOME_HASH, r[4], [])  # old root must be MTH({})
    assert not merkle.verify_consistency(3, 3, r[2], r[3], [])
    assert not merkle.verify_consistency(3, 3, r[2], r[2], [EMPTY])
    assert not merkle.verify_consistency(0, 5, EMPTY, r[4], [EMPTY])
    assert not merkle.verify_consistency(4, 3, r[3], r[2], [])  # time travel
    assert not merkle.verify_consistency(1, 2, r[0], r[1], [])
    assert not merkle.verify_consistency(-1, 2, r[0], r[1], [LEAVES[1]])
    assert not merkle.verify_consistency(1, 2, r[0], r[1], None)  # type: ignore[arg-type]


def test_degenerate_inclusion_inputs() -> None:
    leaf = merkle.leaf_hash(b"data")
    assert merkle.verify_inclusion(leaf, 0, 1, [], leaf)
    for index, size in [(0, 0), (1, 0), (1, 1), (2, 1), (-1, 1)]:
        assert not merkle.verify_inclusion(leaf, index, size, [], leaf)
    assert not merkle.verify_inclusion(b"", 0, 1, [], leaf)
    assert not merkle.verify_inclusion(leaf, 0, 1, [], b"")
    assert not merkle.verify_inclusion(leaf, 0, 1.0, [], leaf)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        merkle.inclusion_proof(3, LEAVES[:3])


def test_every_proof_of_small_trees() -> None:
    leaves = [merkle.leaf_hash(str(i).encode()) for i in range(33)]
    for n in range(1, len(leaves) + 1):
        tree, root = leaves[:n], merkle.root(leaves[:n])
        for i in range(n):
            proof = merkle.inclusion_proof(i, tree)
            assert merkle.verify_inclusion(tree[i], i, n, proof, root)
            # (n + 1 may legitimately share a proof shape with n: the size is bound by the
            # signed checkpoint, not by the proof. Size * 2 always changes the shape.)
            assert not merkle.verify_inclusion(tree[i], i, 2 * n, proof, root)
            if n > 1:
                assert not merkle.verify_inclusion(tree[(i + 1) % n], i, n, proof, root)
        for m in range(n + 1):
            proof = merkle.consistency_proof(m, tree)
            assert merkle.verify_consistency(m, n, merkle.root(leaves[:m]), root, proof)
            if 0 < m < n:
                assert not merkle.verify_consistency(m, n, SOME_HASH, root, proof)
                assert not merkle.verify_consistency(m, n, merkle.root(leaves[:m]), SOME_HASH, proof)


def test_sparse_and_complete_stores_agree() -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(1000)]
    levels = merkle.perfect_levels(leaves)
    full = merkle.levels_getter(levels)
    sparse = {(lvl, i): h for lvl, row in enumerate(levels) for i, h in enumerate(row) if lvl % 3 == 0}
    for size in (1, 2, 3, 500, 777, 1000):
        assert merkle.root_from(size, full) == merkle.root(leaves[:size]) == merkle.root_from(size, sparse)
        for index in (0, size // 2, size - 1):
            expected = merkle.inclusion_proof(index, leaves[:size])
            assert merkle.inclusion_proof_from(index, size, full) == expected
            assert merkle.inclusion_proof_from(index, size, sparse) == expected
        expected = merkle.consistency_proof(size // 3, leaves[:size])
        assert merkle.consistency_proof_from(size // 3, size, sparse) == expected


def test_plan_then_fetch_uses_only_planned_rows() -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(1 << 12 | 37)]
    get = merkle.levels_getter(merkle.perfect_levels(leaves))
    n = len(leaves)
    for index in (0, 1234, n - 1):
        plan = merkle.inclusion_proof_nodes(index, n)
        rows = {key: get(*key) for group in plan for key in group}
        assert None not in rows.values()
        assert len(rows) <= 2 * math.ceil(math.log2(n))
        assert merkle.inclusion_proof_from(index, n, rows) == merkle.inclusion_proof(index, leaves)
    plan = merkle.consistency_proof_nodes(1000, n)
    rows = {key: get(*key) for group in plan for key in group}
    assert merkle.consistency_proof_from(1000, n, rows) == merkle.consistency_proof(1000, leaves)


def test_lookups_are_logarithmic() -> None:
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(1 << 15 | 5)]
    get = merkle.levels_getter(merkle.perfect_levels(leaves))
    calls = []

    def counting(level: int, index: int) -> bytes | None:
        calls.append((level, index))
        return get(level, index)

    merkle.inclusion_proof_from(12345, len(leaves), counting)
    assert len(calls) <= 2 * math.ceil(math.log2(len(leaves)))


def test_appending_maintains_the_store() -> None:
    store: dict[tuple[int, int], bytes] = {}
    leaves = []
    for i in range(70):
        h = merkle.leaf_hash(b"entry %d" % i)
        leaves.append(h)
        for key, value in merkle.new_perfect_nodes(i, h, store):
            store[key] = value
        assert merkle.root_from(i + 1, store) == merkle.root(leaves)
    levels = merkle.perfect_levels(leaves)
    assert store == {(lvl, i): h for lvl, row in enumerate(levels) for i, h in enumerate(row)}
