"""Asset.original_filename: the uploader's name for the file, kept for display now that
the server names stored files. Existing assets get the base name of their stored file,
which was the uploader's name before."""

from __future__ import annotations

import os

from django.db import migrations, models


def backfill(apps, schema_editor):
    Asset = apps.get_model("assetsearch", "Asset")
    assets = list(Asset.objects.filter(original_filename="").only("pk", "image"))
    for asset in assets:
        asset.original_filename = os.path.basename(asset.image.name or "")[:100]
    Asset.objects.bulk_update(assets, ["original_filename"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [("assetsearch", "0004_asset_editors_group")]

    operations = [
        migrations.AddField(
            model_name="asset",
            name="original_filename",
            field=models.CharField(
                blank=True, editable=False, max_length=100, verbose_name="original file name",
                help_text="The uploader's name for the file, for display; the stored file is named by the server.",
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
    ]
