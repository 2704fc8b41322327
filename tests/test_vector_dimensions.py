"""Vectors of any dimension: a 768-d encoder backfilled beside the 512-d one, switched by one setting."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection, transaction

from assetsearch.encoders import get_encoder
from assetsearch.models import Asset, IndexEntry
from assetsearch.index import existing_vector_indexes, plan_vector_indexes, sync_vector_indexes, vector_index_name
from assetsearch.querysets import configure_index_scan
from assetsearch.search import Query, search

from .api_helpers import assetsearch_settings
from .utils import image_file, scene, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]

# The bundled architecture with 768-d embeddings and random weights, through open_clip's same loader
# (a ViT-L-14 or SigLIP config works the same way, and is far slower on 2 CPU cores).
WIDE = {"MODEL": "assetsearch-demo-768", "MODEL_CONFIG": str(Path(__file__).parent / "model_configs"), "PRETRAINED": None, "DEVICE": "cpu"}


def plan_of(queryset) -> str:
    with transaction.atomic():
        configure_index_scan(20)
        with connection.cursor() as cursor:
            # A tiny table (whose statistics earlier tests skewed): ask whether the index *can* serve the ORDER BY.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_sort = off")
        return queryset.explain()


def test_a_768_d_encoder_is_backfilled_beside_the_512_d_one_and_searched_through_its_own_index():
    assert get_encoder().dimensions == 512
    assets = [
        Asset.objects.create(image=image_file(scene(colour=c, shape=s), seed=i), title=f"{c} {s}")
        for i, (c, s) in enumerate([("red", "circle"), ("blue", "square"), ("green", "star")])
    ]
    for asset in assets:
        wait_for(lambda: Asset.objects.get(pk=asset.pk).embedding_status == "ready", timeout=90)
    table = IndexEntry._meta.db_table
    default_index = vector_index_name("default", 512)
    assert default_index in existing_vector_indexes()

    migrating = assetsearch_settings(ENCODERS={"default": {}, "wide": WIDE}, INDEXED_ENCODERS=["wide"])
    with migrating:
        assert get_encoder("wide").dimensions == 768
        wide_index = vector_index_name("wide", 768)
        assert plan_vector_indexes().missing == {wide_index: ("wide", 768)}
        out = io.StringIO()
        call_command("assetsearch_sync_indexes", stdout=out)
        assert f"Created {wide_index}" in out.getvalue()
        # Backfill the existing rows; meanwhile new uploads are embedded by both encoders.
        call_command("assetsearch_reembed", encoder="wide", sync=True, verbosity=0)
        late = Asset.objects.create(image=image_file(scene(colour="yellow", shape="heart"), seed=9), title="late")
        wait_for(lambda: IndexEntry.objects.for_objects(Asset, [late.pk]).ready().count() == 2, timeout=90)
        dims = {e.encoder: len(e.vector) for e in IndexEntry.objects.for_objects(Asset, [late.pk])}
        assert dims == {"default": 512, "wide": 768}
        assert IndexEntry.objects.for_encoder("wide").with_vector(get_encoder("wide").key).count() == 4
        # Search still runs on the 512-d vectors until the switch.
        assert search(Query(text="a red circle", models=[Asset], limit=1)).hits[0].object == assets[0]

    with assetsearch_settings(ENCODERS={"default": {}, "wide": WIDE}, SEARCH_ENCODER="wide"):
        results = search(Query(text="a red circle", models=[Asset], limit=4))
        assert results.strategy == "index" and len(results.hits) == 4  # random weights: only the ranking machinery
        query = get_encoder().embed_texts(["a red circle"])[0]
        assert query.shape == (768,)
        plan = plan_of(IndexEntry.objects.nearest(query, "wide").values_list("object_id", "distance")[:20])
        assert f"Index Scan using {wide_index}" in plan, plan
        # The 512-d alias is served by its own index, never the 768-d one.
        plan = plan_of(IndexEntry.objects.nearest(np.ones(512, dtype=np.float32), "default").values_list("object_id")[:20])
        assert f"Index Scan using {default_index}" in plan, plan

    # Done with the wide model: --prune drops its index.
    out = io.StringIO()
    call_command("assetsearch_sync_indexes", "--prune", stdout=out)
    assert f"Dropped {wide_index}" in out.getvalue() and wide_index not in existing_vector_indexes()
    sync_vector_indexes()
