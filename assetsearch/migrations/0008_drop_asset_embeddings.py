"""Drop what 0007 moved into the index entries: the asset's status columns,
``AssetEmbedding`` and the flags' asset key (a separate migration: Postgres
cannot alter a table with deferred constraint checks pending from 0007's
updates in the same transaction)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("assetsearch", "0007_index_entries"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="moderationflag", name="assetsearch_one_flag_per_concept"),
        migrations.RemoveField(model_name="moderationflag", name="asset"),
        migrations.AlterField(
            model_name="moderationflag",
            name="entry",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="flags", to="assetsearch.indexentry"),
        ),
        migrations.AddConstraint(
            model_name="moderationflag",
            constraint=models.UniqueConstraint(fields=("entry", "concept"), name="assetsearch_one_flag_per_entry"),
        ),
        migrations.RemoveField(model_name="asset", name="embedding_attempts"),
        migrations.RemoveField(model_name="asset", name="embedding_error"),
        migrations.RemoveField(model_name="asset", name="embedding_status"),
        migrations.RemoveField(model_name="asset", name="embedding_status_changed_at"),
        migrations.DeleteModel(name="AssetEmbedding"),
    ]
