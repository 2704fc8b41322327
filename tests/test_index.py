"""The HNSW index parameters: settings, the concurrent rebuild command, the system check, ef_search."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.checks import run_checks
from django.core.management import CommandError, call_command

from assetsearch.encoders import get_encoder
from assetsearch.index import EF_SEARCH_LIMIT, IndexParameters, configured_parameters, get_ef_search, live_parameters, vector_index_name
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

    from django.db import connection

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
