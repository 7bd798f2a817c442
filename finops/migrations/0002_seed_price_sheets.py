"""Seed the price-sheet table with the published figures in ``finops.catalog.DEFAULT_SHEETS``
(version 1 of each sheet). Later versions are added in the admin or by ``price_sheet_publish``."""

from django.db import migrations


def seed(apps, schema_editor):
    from finops.catalog import DEFAULT_SHEETS

    PriceSheetVersion = apps.get_model("finops", "PriceSheetVersion")
    for sheet in DEFAULT_SHEETS:
        data = sheet.to_dict()
        PriceSheetVersion.objects.get_or_create(
            sheet_id=sheet.sheet_id,
            version=int(sheet.version),
            defaults={
                "family": sheet.family,
                "effective_from": sheet.effective_from,
                "parameters": data["parameters"],
                "notes": sheet.notes,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("finops", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
