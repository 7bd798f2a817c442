"""RFC 9162 §2.1 Merkle tree: hashes, proofs and proof verification, storage-agnostic.

Why: the registry is an append-only log whose tree head (a signed checkpoint) commits to
every bundle ever registered. Auditors must be able to check an inclusion proof or a
consistency proof with nothing but this file, so the verifiers are the literal RFC 9162
algorithms (§2.1.3.2 and §2.1.4.2) and return ``False`` instead of raising on anything
malformed (wrong lengths, sizes, types, extra or missing elements).

Tree shape (RFC 9162 §2.1.1): leaf = SHA-256(0x00 ‖ data), node = SHA-256(0x01 ‖ l ‖ r),
MTH(D[n]) splits at k = the largest power of two < n; an odd node is promoted, never
duplicated. The empty tree's hash is SHA-256 of the empty string.

Storage model for the server: in an append-only tree every *perfect* subtree (2**level
leaves starting at ``index * 2**level``) never changes once complete. Keep them in a table
keyed by ``(level, index)`` (level 0 = leaf hashes); :func:`new_perfect_nodes` says which
rows an append creates. Any proof then needs O(log n) lookups: plan them with
:func:`inclusion_proof_nodes` / :func:`consistency_proof_nodes` (one ``IN`` query), then call
:func:`inclusion_proof_from` / :func:`consistency_proof_from` with the fetched ``dict``.
A store may be sparse: missing nodes are recomputed from their children.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "NodeGetter",
    "NodeSource",
    "consistency_proof",
    "consistency_proof_from",
    "consistency_proof_nodes",
    "inclusion_proof",
    "inclusion_proof_from",
    "inclusion_proof_nodes",
    "leaf_hash",
    "levels_getter",
    "new_perfect_nodes",
    "node_hash",
    "perfect_levels",
    "root",
    "root_from",
    "root_from_inclusion_proof",
    "subtree_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
#: RFC 9162 §2.1.1: MTH({}) = SHA-256().
EMPTY_ROOT = hashlib.sha256(b"").digest()

#: ``get(level, index)`` returns the stored hash of that perfect subtree, or None.
NodeGetter = Callable[[int, int], bytes | None]
#: A getter, a ``{(level, index): hash}`` mapping, or a plain sequence of leaf hashes.
NodeSource = NodeGetter | Mapping[tuple[int, int], bytes] | Sequence[bytes]

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1: MTH({d0}) = SHA-256(0x00 ‖ d0)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: SHA-256(0x01 ‖ MTH(left) ‖ MTH(right))."""
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (n >= 2), RFC 9162 §2.1.1's k."""
    return 1 << ((n - 1).bit_length() - 1)


def _is_perfect(start: int, end: int) -> bool:
    size = end - start
    return size & (size - 1) == 0 and start % size == 0


def _pair_up(level: Sequence[bytes]) -> list[bytes]:
    """Hash adjacent pairs; a trailing odd node is dropped (the caller keeps it)."""
    it, join, prefix = iter(level), b"".join, b"\x01"
    # join() of a tuple is measurably faster than two bytes concatenations here.
    return [_sha256(join((prefix, a, b))).digest() for a, b in zip(it, it, strict=False)]


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves (RFC 9162 §2.1.1), iteratively.

    Pairing level by level and keeping each level's odd last node as a "peak" is the same
    tree as the recursive split at the largest power of two: the peaks are the perfect
    subtrees of the binary decomposition of n, folded right to left.
    """
    if len(leaf_hashes) == 0:
        return EMPTY_ROOT
    peaks: list[bytes] = []
    level: Sequence[bytes] = leaf_hashes
    while len(level) > 1:
        if len(level) % 2:
            peaks.append(level[-1])
        level = _pair_up(level)
    acc = level[0]
    if peaks:
        acc_right = peaks[0]
        for peak in peaks[1:]:
            acc_right = node_hash(peak, acc_right)
        acc = node_hash(acc, acc_right)
    return acc


def perfect_levels(leaf_hashes: Sequence[bytes]) -> list[list[bytes]]:
    """All perfect-subtree hashes: ``levels[L][i]`` covers leaves [i·2^L, (i+1)·2^L).

    This is exactly the set of rows a server stores; incomplete right edges are absent.
    """
    levels = [list(leaf_hashes)]
    while len(levels[-1]) >= 2:
        levels.append(_pair_up(levels[-1]))
    return levels


def levels_getter(levels: Sequence[Sequence[bytes]]) -> NodeGetter:
    """Expose :func:`perfect_levels` output (or any per-level arrays) as a node getter."""

    def get(level: int, index: int) -> bytes | None:
        if level < len(levels) and index < len(levels[level]):
            return levels[level][index]
        return None

    return get


def _as_getter(nodes: NodeSource) -> NodeGetter:
    if isinstance(nodes, Mapping):
        mapping = nodes
        return lambda level, index: mapping.get((level, index))
    if callable(nodes):
        return nodes
    leaves = nodes
    return lambda level, index: leaves[index] if level == 0 and index < len(leaves) else None


def _subtree(start: int, end: int, get: NodeGetter) -> bytes:
    if _is_perfect(start, end):
        level = (end - start).bit_length() - 1
        stored = get(level, start >> level)
        if stored is not None:
            if len(stored) != HASH_SIZE:
                raise ValueError(f"stored node ({level}, {start >> level}) is not {HASH_SIZE} bytes")
            return bytes(stored)
        if level == 0:
            raise KeyError(f"leaf hash {start} is not available")
        mid = start + ((end - start) >> 1)
    else:
        mid = start + _split(end - start)
    return node_hash(_subtree(start, mid, get), _subtree(mid, end, get))


def subtree_hash(start: int, end: int, nodes: NodeSource) -> bytes:
    """MTH(D[start:end]) using stored perfect-subtree hashes where available.

    Perfect aligned ranges are looked up as ``(level, start >> level)``; other ranges are
    split as RFC 9162 §2.1.1 does. With a complete store this costs O(log n) lookups.
    """
    if not 0 <= start < end:
        raise ValueError("need 0 <= start < end")
    return _subtree(start, end, _as_getter(nodes))


def root_from(tree_size: int, nodes: NodeSource) -> bytes:
    """Root of the first ``tree_size`` leaves from a node store (O(log n) lookups)."""
    return EMPTY_ROOT if tree_size == 0 else subtree_hash(0, tree_size, nodes)


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose MTHs form PATH(index, D[size]), RFC 9162 §2.1.3.1, leaf first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:  # PATH(m, D[0:k]) : MTH(D[k:n])
            ranges.append((start + k, end))
            end = start + k
        else:  # PATH(m - k, D[k:n]) : MTH(D[0:k])
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Ranges whose MTHs form PROOF(m, D[n]) = SUBPROOF(m, D[n], true), RFC 9162 §2.1.4.1."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"need 0 <= old_size <= new_size, got {old_size}, {new_size}")
    if old_size in (0, new_size):
        return []  # the empty tree and an identical tree need no proof
    ranges: list[tuple[int, int]] = []
    start, end, m, complete = 0, new_size, old_size, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:  # SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            ranges.append((start + k, end))
            end = start + k
        else:  # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            ranges.append((start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:  # SUBPROOF(m, D[m], false) = {MTH(D[m])}
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def _cover(start: int, end: int) -> list[tuple[int, int]]:
    """Perfect subtrees, left to right, whose right fold is MTH(D[start:end]).

    Valid for the ranges proofs use: their start is aligned to their largest part.
    """
    out: list[tuple[int, int]] = []
    while not _is_perfect(start, end):
        k = _split(end - start)
        if start % k:
            raise ValueError(f"range [{start}, {end}) does not occur in an RFC 9162 proof")
        out.append((k.bit_length() - 1, start // k))
        start += k
    level = (end - start).bit_length() - 1
    out.append((level, start >> level))
    return out


def inclusion_proof_nodes(index: int, tree_size: int) -> list[list[tuple[int, int]]]:
    """Plan an inclusion proof: for each proof element, the ``(level, index)`` nodes whose
    right fold (``node(a, node(b, c))``) is that element. Fetch them in one query."""
    return [_cover(s, e) for s, e in _inclusion_ranges(index, tree_size)]


def consistency_proof_nodes(old_size: int, new_size: int) -> list[list[tuple[int, int]]]:
    """Plan a consistency proof, same shape as :func:`inclusion_proof_nodes`."""
    return [_cover(s, e) for s, e in _consistency_ranges(old_size, new_size)]


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) over an in-memory list of leaf hashes (O(n) hashing)."""
    return [root(leaf_hashes[s:e]) for s, e in _inclusion_ranges(index, len(leaf_hashes))]


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(old_size, D[n]) over an in-memory list of leaf hashes (O(n) hashing)."""
    return [root(leaf_hashes[s:e]) for s, e in _consistency_ranges(old_size, len(leaf_hashes))]


def inclusion_proof_from(index: int, tree_size: int, nodes: NodeSource) -> list[bytes]:
    """PATH(index, D[tree_size]) from a node store: O(log n) lookups when it is complete."""
    get = _as_getter(nodes)
    return [_subtree(s, e, get) for s, e in _inclusion_ranges(index, tree_size)]


def consistency_proof_from(old_size: int, new_size: int, nodes: NodeSource) -> list[bytes]:
    """PROOF(old_size, D[new_size]) from a node store: O(log n) lookups when complete."""
    get = _as_getter(nodes)
    return [_subtree(s, e, get) for s, e in _consistency_ranges(old_size, new_size)]


def new_perfect_nodes(
    index: int, new_leaf_hash: bytes, nodes: NodeSource
) -> list[tuple[tuple[int, int], bytes]]:
    """Rows to insert when appending leaf ``index`` (== old tree size): the leaf itself and
    every perfect subtree it completes. Left siblings are read from ``nodes``."""
    get = _as_getter(nodes)
    out = [((0, index), bytes(new_leaf_hash))]
    level, i, current = 0, index, bytes(new_leaf_hash)
    while i & 1:  # a right child completes its parent
        size = 1 << level
        left = _subtree((i - 1) * size, i * size, get)
        current = node_hash(left, current)
        level, i = level + 1, i >> 1
        out.append(((level, i), current))
    return out


def _is_hash(value: object) -> bool:
    return isinstance(value, (bytes, bytearray)) and len(value) == HASH_SIZE


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_proof(proof: object) -> bool:
    return isinstance(proof, (list, tuple)) and all(_is_hash(p) for p in proof)


def root_from_inclusion_proof(
    leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes]
) -> bytes | None:
    """The root implied by an inclusion proof (RFC 9162 §2.1.3.2 steps 1-5), or None."""
    if not (_is_size(index) and _is_size(tree_size) and _is_hash(leaf) and _is_proof(proof)):
        return None
    if index >= tree_size:  # step 1
        return None
    fn, sn = index, tree_size - 1  # step 2
    r = bytes(leaf)  # step 3
    for p in proof:  # step 4
        if sn == 0:  # 4a
            return None
        if fn & 1 or fn == sn:  # 4b
            r = node_hash(bytes(p), r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, bytes(p))
        fn >>= 1  # 4c
        sn >>= 1
    return r if sn == 0 else None  # step 5 (sn must be 0)


def verify_inclusion(
    leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root_hash: bytes
) -> bool:
    """RFC 9162 §2.1.3.2; False (never an exception) for any malformed input."""
    if not _is_hash(root_hash):
        return False
    computed = root_from_inclusion_proof(leaf, index, tree_size, proof)
    return computed is not None and hmac.compare_digest(computed, bytes(root_hash))


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> bool:
    """RFC 9162 §2.1.4.2; False (never an exception) for any malformed input.

    Trivial cases: equal sizes need an empty proof and equal roots; an empty old tree is
    consistent with anything (its root must be SHA-256 of the empty string) with an empty
    proof. Otherwise the proof must be non-empty (step 1).
    """
    if not (_is_size(old_size) and _is_size(new_size) and _is_proof(proof)):
        return False
    if not (_is_hash(old_root) and _is_hash(new_root)) or old_size > new_size:
        return False
    old_root, new_root = bytes(old_root), bytes(new_root)
    if old_size == new_size:
        return len(proof) == 0 and hmac.compare_digest(old_root, new_root)
    if old_size == 0:
        return len(proof) == 0 and hmac.compare_digest(old_root, EMPTY_ROOT)
    if len(proof) == 0:  # step 1
        return False
    path = [bytes(p) for p in proof]
    if old_size & (old_size - 1) == 0:  # step 2: first is an exact power of 2
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:  # 6a
            return False
        if fn & 1 or fn == sn:  # 6b
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1  # 6c
        sn >>= 1
    # step 7
    return sn == 0 and hmac.compare_digest(fr, old_root) and hmac.compare_digest(sr, new_root)
