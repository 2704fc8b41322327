"""The HNSW index parameters: settings, the concurrent rebuild command, the system check, ef_search."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.db import connection

from assetsearch.encoders import get_encoder
from assetsearch.index import (
    EF_SEARCH_LIMIT,
    MIN_EF_SEARCH,
    IndexParameters,
    clear_graph_sizes,
    configured_parameters,
    get_ef_search,
    get_graph_size,
    live_parameters,
    vector_index_name,
)
from assetsearch.models import Asset, IndexEntry
from assetsearch.search import vector_ranking

from .api_helpers import assetsearch_settings
from .utils import store_vectors

# CREATE INDEX CONCURRENTLY cannot run inside the test's transaction.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def restore_index():
    """Leave the index as the migrations built it, for the modules after this one."""
    before = live_parameters()
    yield
    call_command("assetsearch_rebuild_index", "--m", str(before.m), "--ef-construction", str(before.ef_construction),
                 stdout=io.StringIO(), stderr=io.StringIO())
    assert live_parameters() == before


def index_warnings() -> list[str]:
    return [m.msg for m in run_checks(databases=["default"]) if m.id == "assetsearch.W003"]


def test_rebuild_swaps_in_an_index_with_the_new_parameters_and_search_uses_it(restore_index):
    key = get_encoder().key
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(200, 512)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assets = Asset.objects.bulk_create(Asset(image=f"index/{i}.png", title=f"i{i}") for i in range(200))
    store_vectors(assets, vectors, content_hash="")
    call_command("assetsearch_rebuild_index", stdout=io.StringIO(), stderr=io.StringIO())  # to the settings
    built = live_parameters()
    assert built == configured_parameters()
    assert index_warnings() == []

    with assetsearch_settings(HNSW_M=8, HNSW_EF_CONSTRUCTION=32):
        assert index_warnings() == [f"The vector index of encoder 'default' was built with {built}; the settings ask for m=8, ef_construction=32."]
        with pytest.raises(CommandError, match="A rebuild is due"):
            call_command("assetsearch_rebuild_index", "--check", stdout=io.StringIO())
        out = io.StringIO()
        call_command("assetsearch_rebuild_index", stdout=out, stderr=io.StringIO())
        assert "Rebuilt the index of 'default' with m=8, ef_construction=32" in out.getvalue()
        assert live_parameters() == IndexParameters(8, 32)
        assert index_warnings() == []
        out = io.StringIO()
        call_command("assetsearch_rebuild_index", stdout=out)
        assert "Up to date" in out.getvalue()

    with connection.cursor() as cursor:  # one index per alias, under its name, used by the planner
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexdef LIKE '%%hnsw%%'", [IndexEntry._meta.db_table])
        assert [row[0] for row in cursor.fetchall()] == [vector_index_name("default", 512)]
    nearest = vector_ranking(vectors[7], Asset.objects.all(), depth=3, exact=False, model_key=key)
    assert nearest[0][0] == assets[7].pk and nearest[0][1] == pytest.approx(1.0, abs=1e-3)


def test_invalid_parameters_are_refused_with_the_reason():
    with pytest.raises(CommandError, match=r"ef_construction must be between 32 \(2 x m\) and 1000, not 20"):
        call_command("assetsearch_rebuild_index", "--m", "16", "--ef-construction", "20", stdout=io.StringIO())
    with assetsearch_settings(HNSW_M=500):
        assert [m.id for m in run_checks(databases=["default"]) if m.id.startswith("assetsearch.E005")] == ["assetsearch.E005"]


def test_ef_search_follows_the_setting_raised_for_deep_pages_and_filters_within_pgvector_s_limit():
    with assetsearch_settings(HNSW_EF_SEARCH=120):
        assert get_ef_search(20) == 120
        assert get_ef_search(100) == 4 * 100  # a deep page: ranks 81-100 need a longer list than a first page
        assert get_ef_search(20, filtered=True) == 2 * 120
        assert get_ef_search(5000) == EF_SEARCH_LIMIT
    with assetsearch_settings(HNSW_EF_SEARCH=120, HNSW_ADAPTIVE_EF_SEARCH=False):
        assert get_ef_search(100) == 120 and get_ef_search(20, filtered=True) == 120
        assert get_ef_search(300) == 300  # never fewer candidates than rows asked for


def test_ef_search_follows_the_size_of_the_graph():
    # HNSW_EF_SEARCH is the list at 100k vectors; sqrt(n / 100k) of it elsewhere.
    with assetsearch_settings(HNSW_EF_SEARCH=400):
        assert get_ef_search(10) == get_ef_search(10, vectors=100_000) == 400  # unknown size: the setting
        assert get_ef_search(10, vectors=10_000) == 126
        assert get_ef_search(10, vectors=10_000, filtered=True) == 2 * 126
        assert get_ef_search(10, vectors=200) == MIN_EF_SEARCH
        assert get_ef_search(20, vectors=200) == 4 * 20  # the deep-page floor still holds
        assert get_ef_search(10, vectors=1_000_000) == EF_SEARCH_LIMIT  # 1265, capped
    with assetsearch_settings(HNSW_EF_SEARCH=400, HNSW_ADAPTIVE_EF_SEARCH=False):
        assert get_ef_search(10, vectors=10_000) == 400


def test_the_graph_size_is_the_index_s_estimate_read_once_per_ttl():
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(300, 512)).astype(np.float32)
    assets = Asset.objects.bulk_create(Asset(image=f"assetsearch/size/{i}.png", title=f"size {i}") for i in range(300))
    store_vectors(assets, vectors / np.linalg.norm(vectors, axis=1, keepdims=True), content_hash="")
    try:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE assetsearch_indexentry")
        clear_graph_sizes()
        size = get_graph_size(get_encoder().alias)
        assert size is not None and 300 <= size <= 300 + IndexEntry.objects.exclude(object_id__in=[a.pk for a in assets]).count() + 50, size
        Asset.objects.filter(pk__in=[a.pk for a in assets]).delete()
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE assetsearch_indexentry")
        assert get_graph_size(get_encoder().alias) == size  # cached: no catalog read per search
        clear_graph_sizes()
        assert get_graph_size(get_encoder().alias) < size
        assert get_graph_size("no-such-alias") is None
    finally:
        Asset.objects.filter(pk__in=[a.pk for a in assets]).delete()
        clear_graph_sizes()
