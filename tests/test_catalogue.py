"""Catalogue statistics: what a similarity means against the stored vectors (assetsearch.catalogue)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from assetsearch.catalogue import CatalogueStats, background_logits, composed_match
from assetsearch.constants import CATALOGUE_MIN_VECTORS

IMAGE, TEXT = np.array([1.0, 0.0]), np.array([0.0, 1.0])


@pytest.fixture
def stats() -> CatalogueStats:
    # Similarities to IMAGE spread three times wider than to TEXT, as CLIP's do.
    rng = np.random.default_rng(0)
    vectors = np.column_stack([rng.normal(0.3, 0.15, 5000), rng.normal(0.2, 0.05, 5000)])
    made = CatalogueStats.from_vectors(vectors)
    assert made is not None
    return made


def test_statistics_are_the_catalogues_mean_and_spread_of_each_similarity(stats):
    assert stats.size == 5000
    assert stats.typical(IMAGE) == pytest.approx(0.3, abs=0.01) and stats.spread(IMAGE) == pytest.approx(0.15, abs=0.01)
    assert stats.typical(TEXT) == pytest.approx(0.2, abs=0.01) and stats.spread(TEXT) == pytest.approx(0.05, abs=0.01)
    assert stats.z_scores(np.array([stats.typical(TEXT) + 2 * stats.spread(TEXT)]), TEXT)[0] == pytest.approx(2.0)
    assert CatalogueStats.from_vectors(np.ones((CATALOGUE_MIN_VECTORS - 1, 2))) is None  # too few to say anything
    flat = CatalogueStats.from_vectors(np.ones((CATALOGUE_MIN_VECTORS, 2)))
    assert flat is not None and flat.spread(IMAGE) > 0  # a part that never varies still divides by something


def test_a_part_far_above_the_catalogue_cannot_outvote_the_others(stats):
    def similarity(vector: np.ndarray, z: float) -> float:
        return stats.typical(vector) + z * stats.spread(vector)

    # A near-copy of the query image that ignores the words, and an asset that answers both.
    copy = {"image": similarity(IMAGE, 4.0), "text": similarity(TEXT, -0.5)}
    answer = {"image": similarity(IMAGE, 1.2), "text": similarity(TEXT, 1.3)}
    similarities = {name: np.array([copy[name], answer[name]]) for name in ("image", "text")}
    parts, weights = {"image": IMAGE, "text": TEXT}, {"image": 1.0, "text": 1.0}
    capped = composed_match(similarities, parts, weights, stats, cap=1.5)
    assert capped[1] > capped[0]
    assert capped[1] == pytest.approx((1.2 + 1.3) / 2) and capped[0] == pytest.approx((1.5 - 0.5) / 2)
    uncapped = composed_match(similarities, parts, weights, stats, cap=math.inf)
    assert uncapped[0] > uncapped[1]  # the sum the index retrieves with: the copy wins
    # Weights count as in the query vector: words weighed 3x win even uncapped.
    assert np.argmax(composed_match(similarities, parts, {"image": 1.0, "text": 3.0}, stats, cap=math.inf)) == 1


def test_the_negative_part_only_takes_away(stats):
    parts = {"text": TEXT, "negative": IMAGE}
    z = np.array([0.0, 1.0, 3.0, -2.0])  # typical, like the negative, far past the cap, far less like it than typical
    similarities = {"text": np.full(4, stats.typical(TEXT)), "negative": stats.typical(IMAGE) + z * stats.spread(IMAGE)}
    match = composed_match(similarities, parts, {"text": 1.0, "negative": 0.5}, stats, cap=1.5)
    assert match == pytest.approx([0.0, -0.5 / 1.5, -0.5 / 1.5 * 1.5, 0.0])
    # Being unlike the negative earns nothing: a weaker answer to the words stays below a better one.
    weaker = {
        "text": stats.typical(TEXT) + np.array([0.0, -1.0]) * stats.spread(TEXT),
        "negative": stats.typical(IMAGE) + np.array([0.5, -3.0]) * stats.spread(IMAGE),
    }
    assert np.argmax(composed_match(weaker, parts, {"text": 1.0, "negative": 0.5}, stats, cap=1.5)) == 0


def test_the_moderation_background_sits_spreads_above_the_catalogues_typical_similarity(stats):
    logits = background_logits([IMAGE, TEXT], stats, 30.0, 1.0)
    assert logits == pytest.approx([30 * (stats.typical(IMAGE) + stats.spread(IMAGE)), 30 * (stats.typical(TEXT) + stats.spread(TEXT))])
    assert background_logits([IMAGE], None, 30.0, 1.0) == []  # no statistics: the prompts only
    assert background_logits([IMAGE], stats, 30.0, None) == []  # switched off
