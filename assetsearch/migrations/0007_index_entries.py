"""Index entries: one table of vectors and pipeline states for every registered model.

Creates ``IndexEntry`` (keyed by content type, object id and encoder alias)
and moves each asset's vectors and embedding state into it, with no
re-embedding: set-based ``INSERT ... SELECT``, seconds for a million assets.
A vector's encoder alias is found by its model key (``BaseEncoder.key``) among
the configured encoders; vectors of a model no configured alias produces
are not carried over (search could not use them). Moderation flags point at
the asset's entry. ``0008_drop_asset_embeddings`` then drops the old columns.
"""

from __future__ import annotations

import logging

import django.db.models.deletion
import django.utils.timezone
import pgvector.django.halfvec
from django.db import migrations, models

logger = logging.getLogger("assetsearch.migrations")


def configured_aliases() -> dict[str, str]:
    """``{model key: alias}`` of the configured encoders (those that can say their key)."""
    from assetsearch.conf import app_settings
    from assetsearch.encoders import get_encoder

    aliases = dict.fromkeys(["default", app_settings.SEARCH_ENCODER, *app_settings.user_settings.get("ENCODERS", {})])
    keys: dict[str, str] = {}
    for alias in aliases:
        try:
            keys.setdefault(get_encoder(alias).key, alias)
        except Exception:  # noqa: BLE001 - a misconfigured alias owns no vectors here
            logger.warning("Encoder alias %r cannot say its model key; its vectors are not migrated.", alias)
    return keys


def move_embeddings(apps, schema_editor):
    Asset = apps.get_model("assetsearch", "Asset")
    AssetEmbedding = apps.get_model("assetsearch", "AssetEmbedding")
    ContentType = apps.get_model("contenttypes", "ContentType")
    IndexEntry = apps.get_model("assetsearch", "IndexEntry")
    Flag = apps.get_model("assetsearch", "ModerationFlag")
    db = schema_editor.connection.alias
    if not Asset.objects.using(db).exists():
        return
    from assetsearch.conf import app_settings

    search_alias = app_settings.SEARCH_ENCODER
    keys = configured_aliases()
    stored = set(AssetEmbedding.objects.using(db).values_list("model_key", flat=True).distinct())
    if len(stored) == 1 and not stored & set(keys):
        # One model made every vector but no alias names it now (e.g. its
        # checkpoint moved): they are the search alias's, as before.
        keys[next(iter(stored))] = search_alias
    search_key = next((key for key, alias in keys.items() if alias == search_alias), "")
    content_type, _ = ContentType.objects.using(db).get_or_create(app_label="assetsearch", model="asset")
    entries, assets, embeddings = IndexEntry._meta.db_table, Asset._meta.db_table, AssetEmbedding._meta.db_table
    columns = (
        "content_type_id, object_id, encoder, model_key, vector, source_key, content_hash,"
        " status, status_changed_at, error, attempts, embedded_at"
    )
    with schema_editor.connection.cursor() as cursor:
        # Every asset gets an entry of the search alias, with its state; its vector when that model made one.
        cursor.execute(
            f"""INSERT INTO {entries} ({columns})
            SELECT %s, a.id, %s, COALESCE(e.model_key, ''), e.vector, a.image, COALESCE(e.content_hash, ''),
                   a.embedding_status, a.embedding_status_changed_at, a.embedding_error, a.embedding_attempts, e.created_at
            FROM {assets} a LEFT JOIN {embeddings} e ON e.asset_id = a.id AND e.model_key = %s""",
            [content_type.pk, search_alias, search_key],
        )
        # Vectors of other configured aliases (a backfill under way): ready entries of theirs.
        for key, alias in keys.items():
            if alias == search_alias:
                continue
            cursor.execute(
                f"""INSERT INTO {entries} ({columns})
                SELECT %s, e.asset_id, %s, e.model_key, e.vector, a.image, e.content_hash, 'ready', e.created_at, '', 1, e.created_at
                FROM {embeddings} e JOIN {assets} a ON a.id = e.asset_id WHERE e.model_key = %s""",
                [content_type.pk, alias, key],
            )
        cursor.execute(
            f"""UPDATE {Flag._meta.db_table} f SET entry_id = ie.id FROM {entries} ie
            WHERE ie.content_type_id = %s AND ie.object_id = f.asset_id AND ie.encoder = %s""",
            [content_type.pk, search_alias],
        )
    dropped = stored - set(keys)
    if dropped:
        logger.warning("Vectors of models no encoder alias produces were not migrated: %s.", ", ".join(sorted(dropped)))


def refuse_with_entries(apps, schema_editor):
    if apps.get_model("assetsearch", "IndexEntry").objects.using(schema_editor.connection.alias).exists():
        raise RuntimeError("Index entries cannot be moved back to the asset tables; empty them first (or restore a backup).")


class Migration(migrations.Migration):

    dependencies = [
        ("assetsearch", "0006_hnsw_ef_construction"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.CreateModel(
            name="IndexEntry",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("content_type", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="contenttypes.contenttype")),
                ("object_id", models.PositiveBigIntegerField()),
                ("encoder", models.CharField(max_length=50, verbose_name="encoder")),
                ("model_key", models.CharField(blank=True, max_length=100, verbose_name="model")),
                ("vector", pgvector.django.halfvec.HalfVectorField(blank=True, null=True)),
                ("source_key", models.CharField(blank=True, max_length=255, verbose_name="source")),
                ("content_hash", models.CharField(blank=True, max_length=64, verbose_name="content hash")),
                ("status", models.CharField(choices=[("pending", "Pending"), ("ready", "Ready"), ("failed", "Failed")], default="pending", max_length=16, verbose_name="status")),
                ("status_changed_at", models.DateTimeField(default=django.utils.timezone.now, verbose_name="status changed at")),
                ("error", models.TextField(blank=True, verbose_name="error")),
                ("attempts", models.PositiveSmallIntegerField(default=0, verbose_name="attempts")),
                ("embedded_at", models.DateTimeField(blank=True, null=True, verbose_name="embedded at")),
            ],
            options={"verbose_name": "index entry", "verbose_name_plural": "index entries"},
        ),
        migrations.AddIndex(
            model_name="indexentry",
            index=models.Index(fields=["status", "status_changed_at"], name="assetsearch_entry_status"),
        ),
        migrations.AddIndex(
            model_name="indexentry",
            index=models.Index(fields=["encoder", "content_type", "status"], name="assetsearch_entry_model_status"),
        ),
        migrations.AddConstraint(
            model_name="indexentry",
            constraint=models.UniqueConstraint(fields=("content_type", "object_id", "encoder"), name="assetsearch_one_entry_per_encoder"),
        ),
        migrations.AddField(
            model_name="moderationflag",
            name="entry",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name="flags", to="assetsearch.indexentry"),
        ),
        migrations.RunPython(move_embeddings, refuse_with_entries),
    ]
