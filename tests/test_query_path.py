"""The lean query path: how many statements one text search costs, and what each one is.

A text search with a cached embedding sends one statement for the ranking
(the HNSW knobs set inside it, the query vector a binary parameter, no
transaction), one for the page's objects and one for their embedding state;
the API adds its token and the user's permissions. The counts are exact, so a
change that adds a round trip (or a query per hit) fails here. An embedding
task, likewise, calls the model once for its batch.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from psycopg.pq import Format

from assetsearch.encoders import get_encoder
from assetsearch.index import get_ef_search, vector_index_name
from assetsearch.models import Asset, IndexEntry
from assetsearch.pipeline import embed_assets
from assetsearch.querysets import configure_index_scan
from assetsearch.search import Query, search

from .api_helpers import _fresh_throttles, make_user, viewer, viewer_client  # noqa: F401  (fixtures)
from .utils import image_file, scene

pytestmark = pytest.mark.django_db

COLOURS = ["red", "blue", "green"]
SHAPES = ["circle", "square", "star", "heart"]
QUERY = "a red circle"


@pytest.fixture(scope="module")
def catalogue(django_db_setup, django_db_blocker):
    """12 coloured shapes, embedded in-process by the bundled model."""
    with django_db_blocker.unblock(), override_settings(ASSETSEARCH={"AUTO_EMBED": False}):
        assets = {
            (colour, shape): Asset.objects.create(
                image=image_file(scene(colour=colour, shape=shape), seed=10 * i + j), title=f"{colour} {shape}", tags=[colour, shape]
            )
            for i, colour in enumerate(COLOURS)
            for j, shape in enumerate(SHAPES)
        }
        result = embed_assets([a.pk for a in assets.values()])
        assert len(result.embedded) == len(assets), result
        yield assets
        Asset.objects.filter(pk__in=[a.pk for a in assets.values()]).delete()


def statements(context: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in context.captured_queries]


def is_ranking(sql: str) -> bool:
    """The ranking statement: the index entries by distance, with the HNSW knobs set in its own WHERE."""
    return (
        sql.startswith('SELECT "assetsearch_indexentry"."content_type_id"')
        and "set_config('hnsw.ef_search'" in sql
        and "set_config('hnsw.iterative_scan', 'strict_order', true)" in sql
        and re.search(r"<=> \$\d+::halfvec", sql) is not None
    )


def check_lean(sql: list[str], before: int) -> None:
    """``before`` statements, then ranking, the page's assets, their entries; nothing else."""
    assert len(sql) == before + 3, "\n".join(s[:160] for s in sql)
    ranking, objects, entries = sql[before:]
    assert is_ranking(ranking), ranking[:400]
    assert objects.startswith('SELECT "assetsearch_asset"."id"') and ' IN (' in objects, objects[:300]
    assert entries.startswith('SELECT "assetsearch_indexentry"."id"') and '"vector"' not in entries.split(" FROM ")[0], entries[:400]
    # No SAVEPOINT/BEGIN of an atomic block, no set_config of its own, no vector literal in the SQL.
    assert not any(s.split()[0] in ("SAVEPOINT", "RELEASE", "BEGIN") or s.startswith("SELECT set_config") for s in sql)
    assert "[0." not in ranking and "[-0." not in ranking and len(ranking) < 2000


def orm_ranking(vector: Any, depth: int) -> list[int]:
    """The ranking the way the ORM ran it before: SET LOCAL in a transaction, then the queryset (text vector)."""
    alias = get_encoder().alias
    with transaction.atomic():
        configure_index_scan(depth)
        return list(IndexEntry.objects.nearest(vector, alias).values_list("object_id", flat=True)[:depth])


def test_a_python_text_search_is_three_statements_and_ranks_as_before(catalogue):
    search(Query(text=QUERY, limit=5))  # embeds the text once; the cache serves it from here on
    with CaptureQueriesContext(connection) as context:
        results = search(Query(text=QUERY, limit=5))
    check_lean(statements(context), before=0)
    ranked = [hit.object.pk for hit in results.hits]
    assert ranked[0] == catalogue["red", "circle"].pk
    assert [hit.rank for hit in results.hits] == [1, 2, 3, 4, 5]
    vector = get_encoder().embed_texts([QUERY])[0]
    assert ranked == orm_ranking(vector, 5)
    # The embedding state came with the page: reading it costs nothing more.
    with CaptureQueriesContext(connection) as context:
        assert {hit.object.embedding_status for hit in results.hits} == {"ready"}
    assert statements(context) == []


@pytest.mark.parametrize("limit", [3, 12])
def test_an_api_text_search_is_six_statements_whatever_the_page_size(viewer_client, catalogue, limit):
    path = f"/api/search/?q={QUERY.replace(' ', '+')}&limit={limit}"
    assert viewer_client.get(path).status_code == 200  # warms the text cache
    with CaptureQueriesContext(connection) as context:
        response = viewer_client.get(path)
    assert response.status_code == 200, response.content
    sql = statements(context)
    # The token (with its user) and the user's permissions (own and groups'), then the lean search.
    assert sql[0].startswith('SELECT "authtoken_token"."key"'), sql[0][:200]
    assert all("auth_permission" in s for s in sql[1:3]), [s[:200] for s in sql[1:3]]
    check_lean(sql, before=3)
    hits = response.json()["results"]
    assert len(hits) == limit and [hit["rank"] for hit in hits] == list(range(1, limit + 1))
    assert hits[0]["asset"]["id"] == catalogue["red", "circle"].pk
    assert all(hit["asset"]["embedding"]["status"] == "ready" and hit["asset"]["embedding"]["attempts"] == 1 for hit in hits)
    python_hits = search(Query(text=QUERY, limit=limit)).hits
    assert [hit["asset"]["id"] for hit in hits] == [hit.object.pk for hit in python_hits]
    assert [hit["score"] for hit in hits] == pytest.approx([hit.score for hit in python_hits])


def test_the_query_vector_is_one_binary_parameter(catalogue):
    formats: list[Any] = []

    def record(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "set_config('hnsw.ef_search'" in sql:
            query = context["cursor"].cursor._query  # psycopg's record of what it sent
            formats.extend((type(param).__name__, fmt) for param, fmt in zip(params, query.formats or ()))
        return result

    vector = get_encoder().embed_texts([QUERY])[0]
    with connection.execute_wrapper(record):
        IndexEntry.objects.nearest(vector, get_encoder().alias).ranking(5)
    vectors = [fmt for name, fmt in formats if name == "HalfVectorBinary"]
    assert vectors == [Format.BINARY], formats


def test_the_index_knobs_hold_during_the_scan_of_the_statement_that_sets_them(catalogue):
    """With the session at ef_search 1 and no iterative scan, the index yields one candidate,
    which a filter to the two farthest rows removes; the statement's own knobs find both."""
    vector = get_encoder().embed_texts([QUERY])[0]
    entries = IndexEntry.objects.nearest(vector, get_encoder().alias).filter(object_id__in=[a.pk for a in catalogue.values()])
    farthest = [object_id for _, object_id, _ in entries.ranking(len(catalogue))][-2:]
    with connection.cursor() as cursor:
        for setting in ("enable_seqscan = off", "enable_sort = off", "hnsw.ef_search = 1", "hnsw.iterative_scan = off"):
            cursor.execute(f"SET LOCAL {setting}")
    far = entries.filter(object_id__in=farthest)
    assert list(far.values_list("object_id", flat=True)[:2]) == []  # the ORM's statement, the session's knobs
    assert [object_id for _, object_id, _ in far.ranking(2)] == farthest


def test_the_hnsw_index_serves_the_lean_statement(catalogue):
    """EXPLAIN of the statement ranking() sends: an HNSW index scan under the one-time filter that sets its knobs."""
    vector = get_encoder().embed_texts([QUERY])[0]
    alias = get_encoder().alias
    with connection.cursor() as cursor:
        # A tiny table: ask whether the index *can* serve the ORDER BY (as test_vector_dimensions does).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
    plan = IndexEntry.objects.nearest(vector, alias).explain_ranking(20, analyze=True)
    index_scan = plan.index(f"Index Scan using {vector_index_name(alias, 512)}")
    gate = plan.index("One-Time Filter: ((InitPlan 1).col1 IS NOT NULL)")
    assert gate < index_scan, plan
    assert int(re.search(r"rows=(\d+)", plan[index_scan:]).group(1)) >= len(catalogue), plan


@pytest.mark.django_db(transaction=True)
def test_a_deep_page_leaves_no_setting_on_the_connection():
    """Outside a transaction the statement is its own: its ef_search and iterative scan end with it,
    so the next query on this (pooled) connection runs with the session's settings."""
    vector = get_encoder().embed_texts([QUERY])[0]
    entries = IndexEntry.objects.nearest(vector, get_encoder().alias)

    def settings() -> tuple[str, str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('hnsw.ef_search'), current_setting('hnsw.iterative_scan')")
            return cursor.fetchone()

    entries.ranking(1)  # loads pgvector's settings into the session
    before = settings()
    assert before[0] != str(get_ef_search(900)) and before[1] != "strict_order"
    entries.ranking(900)
    assert not connection.in_atomic_block
    assert settings() == before


def test_an_embedding_task_makes_one_model_call_after_the_first(catalogue):
    """The worker's warm-up makes the first call once; a later task calls the model for its own batch only."""
    encoder = get_encoder()
    encoder.warm_up(texts=False)
    calls: list[int] = []
    original = type(encoder).embed_images

    def counted(self, images):  # a spy on the real model call, not a stand-in
        calls.append(len(images))
        return original(self, images)

    asset = catalogue["blue", "star"]
    type(encoder).embed_images = counted
    try:
        result = embed_assets([asset.pk], force=True)
    finally:
        type(encoder).embed_images = original
    assert result.embedded == [asset.pk]
    assert calls == [1], calls  # the asset's image, and no blank warm-up image per task


@pytest.mark.django_db(transaction=True)
def test_a_worker_whose_tasks_run_in_its_main_process_opens_the_database_when_ready(django_assert_num_queries):
    """``worker_ready``: a solo (or threads) worker connects and caches content types before its first task."""
    from types import SimpleNamespace

    from celery.concurrency.prefork import TaskPool as PreforkPool
    from celery.concurrency.solo import TaskPool as SoloPool
    from django.contrib.contenttypes.models import ContentType

    from assetsearch.tasks import warm_up_database

    ContentType.objects.clear_cache()
    with CaptureQueriesContext(connection) as parent:  # a prefork parent runs no task: nothing to warm
        warm_up_database(sender=SimpleNamespace(pool=PreforkPool.__new__(PreforkPool)))
    assert parent.captured_queries == []
    with CaptureQueriesContext(connection) as solo:
        warm_up_database(sender=SimpleNamespace(pool=SoloPool.__new__(SoloPool)))
    statements = " ".join(q["sql"] for q in solo.captured_queries)
    assert "assetsearch_indexentry" in statements and "assetsearch_moderationconcept" in statements, statements
    assert connection.connection is None  # handed back (to the pool, where there is one)
    with django_assert_num_queries(0):
        ContentType.objects.get_for_model(Asset, for_concrete_model=False)
