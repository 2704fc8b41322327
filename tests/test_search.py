"""Search served by the HNSW index; exact mode for evaluation; query errors."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection

from assetsearch.models import Asset
from assetsearch.encoders import embed_texts
from assetsearch.search import SearchError, nearest

from .utils import store_vectors

pytestmark = pytest.mark.django_db


def random_unit_vectors(count: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, 512)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def catalogue(django_db_setup, django_db_blocker):
    """2,000 assets with random vectors, inserted directly (no files, no worker)."""
    with django_db_blocker.unblock():
        yield from _catalogue()
        Asset.objects.all().delete()
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE assetsearch_indexentry")


def _catalogue():
    assets = Asset.objects.bulk_create(Asset(image=f"assetsearch/fake/{i}.png", title=f"asset {i}") for i in range(2000))
    vectors = random_unit_vectors(len(assets))
    store_vectors(assets, vectors)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE assetsearch_indexentry")
    yield assets, vectors


def test_index_results_match_exact_results_and_pages_are_stable(catalogue):
    assets, vectors = catalogue
    query = vectors[123] * 0.9 + random_unit_vectors(1, seed=4)[0] * 0.1
    query /= np.linalg.norm(query)
    exact = nearest(query, limit=10, exact=True)
    approx = nearest(query, limit=10)
    assert exact[0].asset == assets[123] and approx[0].asset == assets[123]
    assert len({h.asset.pk for h in exact} & {h.asset.pk for h in approx}) >= 9
    scores = [h.score for h in exact]
    assert scores == sorted(scores, reverse=True)
    expected = float(np.dot(query, vectors[123]))
    assert exact[0].score == pytest.approx(expected, abs=2e-3)  # halfvec precision
    page2 = nearest(query, limit=5, offset=5, exact=True)
    assert [h.asset.pk for h in page2] == [h.asset.pk for h in exact[5:10]]
    assert [h.rank for h in page2] == [6, 7, 8, 9, 10]


@pytest.mark.parametrize("text, message", [("   ", "empty"), ("x" * 1001, "limit is 1000")])
def test_bad_query_text_is_a_clear_error(text, message):
    with pytest.raises(SearchError, match=message):
        embed_texts([text])


def test_long_text_is_truncated_and_says_so():
    assert not embed_texts(["a red circle"])[0].truncated
    assert embed_texts([" ".join(["a red circle on the left"] * 10)])[0].truncated
