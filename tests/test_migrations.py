"""Migration 0007 moves a database of pre-registry rows into index entries."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from assetsearch.encoders import get_encoder

from .api_helpers import assetsearch_settings

# The last migration before the index entries (the state a site upgrades from).
BEFORE = ("assetsearch", "0006_hnsw_ef_construction")


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=512).astype(np.float32)
    return vector / np.linalg.norm(vector)


@pytest.mark.django_db(transaction=True)
def test_0007_moves_vectors_statuses_and_flags_of_existing_assets_without_re_embedding():
    from assetsearch.models import IndexEntry
    from assetsearch.index import sync_vector_indexes

    IndexEntry.objects.all().delete()
    executor = MigrationExecutor(connection)
    latest = [key for key in executor.loader.graph.leaf_nodes() if key[0] == "assetsearch"]
    vit = {"MODEL": "ViT-B-32", "PRETRAINED": None, "DEVICE": "cpu"}
    try:
        executor.migrate([BEFORE])
        old = executor.loader.project_state([BEFORE]).apps
        Asset, Embedding = old.get_model("assetsearch", "Asset"), old.get_model("assetsearch", "AssetEmbedding")
        Concept, Flag = old.get_model("assetsearch", "ModerationConcept"), old.get_model("assetsearch", "ModerationFlag")
        key = get_encoder("default").key
        ready = Asset.objects.create(image="assetsearch/old/ready.png", title="ready", content_hash="a" * 64, embedding_status="ready", embedding_attempts=1)
        pending = Asset.objects.create(image="assetsearch/old/pending.png", title="pending", embedding_status="pending")
        failed = Asset.objects.create(image="assetsearch/old/failed.png", title="failed", embedding_status="failed", embedding_error="not an image", embedding_attempts=2)
        Embedding.objects.create(asset=ready, model_key=key, vector=unit(1), content_hash="a" * 64)
        Embedding.objects.create(asset=ready, model_key="ViT-B-32:random", vector=unit(2), content_hash="a" * 64)  # a backfill of "next"
        Embedding.objects.create(asset=pending, model_key="retired-model:123", vector=unit(3), content_hash="b" * 64)
        concept = Concept.objects.create(name="old concept", prompts=["x"], action="hide", enabled=True)
        Flag.objects.create(asset=ready, concept=concept, score=0.9)

        with assetsearch_settings(ENCODERS={"default": {}, "next": vit}):
            executor = MigrationExecutor(connection)
            executor.migrate(latest)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(latest)
        sync_vector_indexes()  # the HNSW indexes went with the table on the way down

    from assetsearch.models import Asset as CurrentAsset, ModerationFlag

    entries = {(e.object_id, e.encoder): e for e in IndexEntry.objects.for_model(CurrentAsset)}
    assert set(entries) == {(ready.pk, "default"), (ready.pk, "next"), (pending.pk, "default"), (failed.pk, "default")}
    moved = entries[ready.pk, "default"]
    assert (moved.status, moved.model_key, moved.content_hash, moved.attempts) == ("ready", key, "a" * 64, 1)
    assert np.allclose(np.asarray(moved.vector), unit(1), atol=1e-3)  # the same vector: nothing re-embedded
    assert entries[ready.pk, "next"].model_key == "ViT-B-32:random"
    # The retired model's vector is not carried over; the asset keeps its state.
    assert entries[pending.pk, "default"].vector is None and entries[pending.pk, "default"].status == "pending"
    assert (entries[failed.pk, "default"].status, entries[failed.pk, "default"].error, entries[failed.pk, "default"].attempts) == ("failed", "not an image", 2)
    flag = ModerationFlag.objects.get()
    assert flag.entry == moved and flag.asset == CurrentAsset.objects.get(pk=ready.pk)
    # The Asset API's view of it is unchanged, and the hide concept still hides the asset.
    asset = CurrentAsset.objects.get(pk=failed.pk)
    assert (asset.embedding_status, asset.embedding_error, asset.embedding_attempts) == ("failed", "not an image", 2)
    assert ready.pk not in set(CurrentAsset.objects.visible_to(None).values_list("pk", flat=True))
