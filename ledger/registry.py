"""The transparency registry: an RFC 9162 Merkle log of evidence bundles with signed checkpoints.

Bundles are appended as unsequenced leaves inside the job's completion transaction (no lock on
that path). ``registry_sequence`` (periodic) gives them consecutive leaf indices, stores the
perfect-subtree nodes each new leaf completes, and signs a C2SP checkpoint of the new tree. An
inclusion or consistency proof then needs O(log n) stored nodes, fetched in one query.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from .audit import audit_sequence
from .crypto import merkle
from .crypto.note import sign_checkpoint
from .keys import signer_for
from .models import RegistryCheckpoint, RegistryLeaf, RegistryNode

_SEQUENCER_LOCK = 0x51C05A0D18


class _NodeStore:
    """Node lookups for the Merkle functions: a batch query, then a dict of what is known."""

    def __init__(self) -> None:
        self.known: dict[tuple[int, int], bytes] = {}

    def fetch(self, keys: list[tuple[int, int]]) -> None:
        wanted = [k for k in keys if k not in self.known]
        if not wanted:
            return
        # One plain query (the ORM's OR-of-Q building costs more than the lookup itself).
        index = connection.ops.quote_name("index")  # a reserved word in SQLite
        where = " OR ".join([f"(level = %s AND {index} = %s)"] * len(wanted))
        params = [part for key in wanted for part in key]
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT level, {index}, hash FROM ledger_registrynode WHERE {where}", params)
            for level, index, value in cursor.fetchall():
                self.known[(level, index)] = bytes.fromhex(value)

    def __call__(self, level: int, index: int) -> bytes | None:
        key = (level, index)
        if key not in self.known:
            self.fetch([key])
        return self.known.get(key)


def tree_size() -> int:
    latest = RegistryLeaf.objects.filter(leaf_index__isnull=False).order_by("-leaf_index").values_list(
        "leaf_index", flat=True
    ).first()
    return 0 if latest is None else latest + 1


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SEQUENCER_LOCK])


def registry_sequence(*, batch: int = 5000) -> RegistryCheckpoint | None:
    """Sequence pending leaves and sign a checkpoint of the new size (None when nothing was new)."""
    with transaction.atomic():
        _lock()
        size = tree_size()
        pending = list(RegistryLeaf.objects.filter(leaf_index__isnull=True).order_by("id")[:batch])
        if not pending:
            return None
        store = _NodeStore()
        now = timezone.now()
        new_nodes: list[RegistryNode] = []
        for leaf in pending:
            rows = merkle.new_perfect_nodes(size, bytes.fromhex(leaf.leaf_hash), store)
            for (level, index), value in rows:
                store.known[(level, index)] = value
                new_nodes.append(RegistryNode(level=level, index=index, hash=value.hex()))
            leaf.leaf_index, leaf.registered_at = size, now
            size += 1
        RegistryNode.objects.bulk_create(new_nodes)
        RegistryLeaf.objects.bulk_update(pending, ["leaf_index", "registered_at"])
        root = merkle.root_from(size, store)
        note = sign_checkpoint(settings.QCOS["REGISTRY_ORIGIN"], size, root, signer_for("ledger"))
        return RegistryCheckpoint.objects.create(tree_size=size, root=root.hex(), note=note, created_at=now)


def sequence_now() -> None:
    """Run the registry's and the audit log's periodic sequencers once, now: what a completion
    calls after its commit in embedded mode, which has no beat (``QCOS["SEQUENCE_INLINE"]``)."""
    registry_sequence()
    audit_sequence()


def root_at(size: int) -> bytes:
    """The tree head of the first ``size`` leaves, from the stored nodes."""
    return merkle.root_from(size, _NodeStore())


def latest_checkpoint() -> RegistryCheckpoint | None:
    return RegistryCheckpoint.objects.order_by("-tree_size").first()


def inclusion_proof(index: int, size: int) -> list[bytes]:
    store = _NodeStore()
    store.fetch([node for group in merkle.inclusion_proof_nodes(index, size) for node in group])
    return merkle.inclusion_proof_from(index, size, store)


def consistency_proof(first: int, second: int) -> list[bytes]:
    store = _NodeStore()
    store.fetch([node for group in merkle.consistency_proof_nodes(first, second) for node in group])
    return merkle.consistency_proof_from(first, second, store)


@dataclass(frozen=True)
class Registration:
    leaf_index: int
    tree_size: int
    proof: list[bytes]
    checkpoint: RegistryCheckpoint


def registration_of(bundle_id: str) -> Registration | None:
    """The bundle's inclusion proof in the latest checkpoint, once it is in one."""
    leaf = RegistryLeaf.objects.filter(bundle_id=bundle_id, leaf_index__isnull=False).first()
    checkpoint = latest_checkpoint()
    if leaf is None or checkpoint is None or checkpoint.tree_size <= leaf.leaf_index:
        return None
    proof = inclusion_proof(leaf.leaf_index, checkpoint.tree_size)
    return Registration(leaf.leaf_index, checkpoint.tree_size, proof, checkpoint)


def certificate_id(leaf_index: int, leaf_hash: str) -> str:
    return f"cert-{leaf_index:010d}-{leaf_hash[:16]}"


def registration_status(document: dict) -> dict:
    """Whether a bundle (as a document) is a leaf in a signed checkpoint, and its certificate."""
    from .crypto.bundle import BundleFormatError, registry_leaf_hash

    try:
        leaf_hash = registry_leaf_hash(document).hex()
    except (BundleFormatError, KeyError, TypeError, ValueError):
        leaf_hash = None
    leaf = RegistryLeaf.objects.filter(leaf_hash=leaf_hash, leaf_index__isnull=False).first() if leaf_hash else None
    checkpoint = latest_checkpoint()
    registered = bool(leaf and checkpoint and checkpoint.tree_size > leaf.leaf_index)
    return {
        "registered": registered,
        "registration_date": leaf.registered_at.isoformat().replace("+00:00", "Z") if registered else None,
        "certificate_id": certificate_id(leaf.leaf_index, leaf.leaf_hash) if registered else None,
        "leaf_index": leaf.leaf_index if registered else None,
        "tree_size": checkpoint.tree_size if registered else None,
    }
