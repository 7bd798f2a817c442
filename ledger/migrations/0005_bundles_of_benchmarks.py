"""Benchmark runs' evidence bundles get a BundleRecord and a registry leaf, like jobs' bundles.

Runs completed before this migration are entered now, oldest first: the registry sequencer then
gives them leaf indexes like any new leaf. Their signed bundles are not changed (the bundle text is
copied from ``BenchmarkRun.bundle_body``, which stays as it was).
"""

import django.db.models.deletion
from django.db import migrations, models


def register_completed_runs(apps, schema_editor):
    import orjson

    from ledger.crypto.bundle import registry_leaf_hash

    BenchmarkRun = apps.get_model("bench", "BenchmarkRun")
    BundleRecord = apps.get_model("ledger", "BundleRecord")
    RegistryLeaf = apps.get_model("ledger", "RegistryLeaf")
    runs = (BenchmarkRun.objects.filter(status="completed").exclude(bundle_body="").select_related("tenant")
            .order_by("completed_at", "id"))
    for run in runs.iterator():
        bundle = orjson.loads(run.bundle_body)
        record = BundleRecord.objects.create(
            bundle_id=run.bundle_id, benchmark=run, tenant_slug=run.tenant.slug, body=run.bundle_body,
            merkle_root=bundle["merkle_root"], created_at=run.completed_at)
        RegistryLeaf.objects.create(bundle=record, leaf_hash=registry_leaf_hash(bundle).hex())


class Migration(migrations.Migration):

    dependencies = [
        ('bench', '0001_initial'),
        ('jobs', '0006_job_finished_notify'),
        ('ledger', '0004_drop_pattern_ops_indexes'),
    ]

    operations = [
        migrations.AddField(
            model_name='bundlerecord',
            name='benchmark',
            field=models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='bundle_record', to='bench.benchmarkrun'),
        ),
        migrations.AlterField(
            model_name='bundlerecord',
            name='job',
            field=models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='bundle', to='jobs.quantumjob'),
        ),
        migrations.AddConstraint(
            model_name='bundlerecord',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('benchmark__isnull', True), ('job__isnull', False)), models.Q(('benchmark__isnull', False), ('job__isnull', True)), _connector='OR'), name='bundle_of_a_job_or_a_benchmark'),
        ),
        migrations.RunPython(register_completed_runs, migrations.RunPython.noop),
    ]
