"""A benchmark run's evidence bundle is entered in the transparency registry, like a job's."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.db import IntegrityError, transaction

from bench.models import BenchmarkRun
from ledger.crypto import EvidenceBundle
from ledger.crypto.bundle import registry_leaf_hash
from ledger.crypto.keyring import KeyRing
from ledger.models import BundleRecord, RegistryLeaf
from ledger.registry import registry_sequence

from .conftest import completed


def pinned(actor) -> KeyRing:
    return KeyRing.from_dict(actor.client.get("/api/v2.1/ledger/keys").json())


def bench_run(actor) -> dict:
    return completed(actor, backend_id="simulator", workloads=["bell_state"], shots=64, seed=3)["report"]


def test_a_completed_run_leaves_a_registry_leaf_for_its_signed_bundle(alice):
    result = bench_run(alice)
    record = BundleRecord.objects.get(benchmark_id=result["id"])
    assert (record.bundle_id, record.tenant_slug, record.job_id) == (result["bundle_id"], "research-alpha", None)
    bundle = alice.client.get(f"/bench/evidence/{result['id']}").json()
    leaf = RegistryLeaf.objects.get(bundle=record)
    assert leaf.leaf_index is None  # until the sequencer runs
    assert leaf.leaf_hash == registry_leaf_hash(bundle).hex()
    assert "registry" not in bundle


def test_once_sequenced_the_bundle_carries_its_inclusion_proof_and_verifies_offline(alice):
    first, result = bench_run(alice), bench_run(alice)
    checkpoint = registry_sequence()
    assert checkpoint.tree_size == 2
    bundle = alice.client.get(f"/bench/evidence/{result['id']}").json()
    assert bundle["registry"]["tree_size"] == 2
    assert first["bundle_id"] != result["bundle_id"]
    report = EvidenceBundle(bundle).verify(keyring=pinned(alice), require_registry=True)
    assert report.is_valid and report.registry_valid, report.failures
    answer = alice.client.post("/api/v2.1/ledger/bundles/verify",
                               {"bundle_id": result["bundle_id"], "check_registry": True}, format="json").json()
    assert answer["is_valid"] and answer["registered"] and answer["certificate_id"].startswith("cert-")
    leaf = alice.client.get(f"/api/v2.1/registry/leaves/{result['bundle_id']}")
    assert leaf.status_code == 200 and leaf.json()["leaf_index"] in (0, 1)


def test_another_tenant_cannot_see_a_runs_bundle_through_the_ledger(alice, carol):
    result = bench_run(alice)
    registry_sequence()
    verify = carol.client.post("/api/v2.1/ledger/bundles/verify",
                               {"bundle_id": result["bundle_id"], "check_registry": True}, format="json")
    assert verify.status_code == 404 and verify.json()["error"]["code"] == "NOT_FOUND"
    assert carol.client.get(f"/api/v2.1/registry/leaves/{result['bundle_id']}").status_code == 404


def test_a_bundle_record_belongs_to_exactly_one_job_or_run(alice):
    result = bench_run(alice)
    record = BundleRecord.objects.get(benchmark_id=result["id"])
    for subject in ({}, {"benchmark_id": result["id"], "job_id": "job-x"}):
        with pytest.raises(IntegrityError), transaction.atomic():
            BundleRecord.objects.create(bundle_id="bundle-other", tenant_slug="research-alpha", body="{}",
                                        merkle_root="0" * 64, created_at=record.created_at, **subject)


def test_the_migration_registers_runs_completed_before_it(alice):
    result = bench_run(alice)
    before = RegistryLeaf.objects.get(bundle_id=result["bundle_id"]).leaf_hash
    # As a run completed before the migration kept it: the bundle text on the run, no record.
    BenchmarkRun.objects.filter(pk=result["id"]).update(
        bundle_body=BundleRecord.objects.get(bundle_id=result["bundle_id"]).body)
    RegistryLeaf.objects.filter(bundle_id=result["bundle_id"]).delete()
    BundleRecord.objects.filter(bundle_id=result["bundle_id"]).delete()
    migration = importlib.import_module("ledger.migrations.0005_bundles_of_benchmarks")
    migration.register_completed_runs(apps, None)
    record = BundleRecord.objects.get(benchmark_id=result["id"])
    assert record.bundle_id == result["bundle_id"] and RegistryLeaf.objects.get(bundle=record).leaf_hash == before


def test_embedded_mode_registers_a_runs_bundle_as_it_completes(alice, settings):
    """With no beat (the embedded default), the completion sequences the registry itself, as a
    job's does: the bundle is served with its inclusion proof at once."""
    settings.QCOS = {**settings.QCOS, "SEQUENCE_INLINE": True}
    result = bench_run(alice)
    leaf = alice.client.get(f"/api/v2.1/registry/leaves/{result['bundle_id']}").json()
    assert leaf["leaf_index"] is not None
    bundle = alice.client.get(f"/bench/evidence/{result['id']}").json()
    assert bundle["registry"]["tree_size"] >= 1
    assert EvidenceBundle(bundle).verify(keyring=pinned(alice), require_registry=True).is_valid
