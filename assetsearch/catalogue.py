"""What a similarity means in this catalogue: statistics of the stored vectors.

A cosine similarity alone says little. CLIP's image-to-image similarities
spread several times wider than its text-to-image ones (the modality gap),
and 0.3 to "a green star" is a strong match in one catalogue and a typical
one in another. Measured against the catalogue, a query part's similarity
becomes a number of standard deviations above the catalogue's typical one,
which is comparable across parts and across catalogues:

* :func:`assetsearch.search.compose` divides each part by its spread, so a
  weight means the same for words and images;
* :func:`composed_match` orders the candidates of a query of several parts
  by their z-scores capped at ``COMPOSE_PART_CAP``, so an asset must answer
  every part (a near-copy of the query image that ignores the words does
  not come first);
* :func:`background_logits` gives a moderation concept a "none of these"
  competitor at the catalogue's typical similarity to each prompt, so an
  asset that matches none of the prompts well does not score near 1 merely
  because the concept's prompt is the least bad of them.

The mean and covariance come from a random sample of the stored vectors
(``COMPOSE_SAMPLE_SIZE``, :func:`assetsearch.search.catalogue_stats`, cached
for ``COMPOSE_STATS_TIMEOUT`` seconds); for a vector ``p``, the
similarities ``p . x`` over the catalogue have mean ``p . m`` and variance
``p' C p``. This module is the arithmetic alone (no database, no settings),
so the demo model's evaluation computes exactly what the product does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .constants import CATALOGUE_MIN_VECTORS, MIN_SPREAD


@dataclass(frozen=True)
class CatalogueStats:
    """Mean and covariance of a sample of one encoder alias's stored vectors."""

    mean: np.ndarray
    covariance: np.ndarray
    size: int  # vectors in the sample

    @classmethod
    def from_vectors(cls, vectors: np.ndarray) -> CatalogueStats | None:
        """Statistics of ``vectors`` (n, d); None under ``CATALOGUE_MIN_VECTORS``, too few to say."""
        if len(vectors) < CATALOGUE_MIN_VECTORS:
            return None
        vectors = np.asarray(vectors, dtype=np.float64)
        return cls(vectors.mean(axis=0), np.cov(vectors, rowvar=False), len(vectors))

    def typical(self, vector: np.ndarray) -> float:
        """The catalogue's mean similarity to ``vector``."""
        return float(self.mean @ vector)

    def spread(self, vector: np.ndarray) -> float:
        """The standard deviation of the catalogue's similarity to ``vector`` (at least ``MIN_SPREAD``)."""
        return max(math.sqrt(max(float(vector @ self.covariance @ vector), 0.0)), MIN_SPREAD)

    def z_scores(self, similarities: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """How many standard deviations ``similarities`` to ``vector`` lie above the catalogue's mean."""
        return (np.asarray(similarities, dtype=np.float64) - self.typical(vector)) / self.spread(vector)


def composed_vector(
    parts: Mapping[str, np.ndarray], weights: Mapping[str, float], stats: CatalogueStats | None, *, negative: str = "negative",
) -> np.ndarray:
    """The query vector the index retrieves with: each part weighed by ``weight / spread``, the negative part subtracted.

    Dividing by each part's spread over the catalogue (1 without statistics)
    keeps a part whose similarities vary widely (an image) from outvoting
    one whose similarities vary little (words, across the modality gap).
    The sum is measured against the length it would have if no part
    cancelled another: a tiny weight (1e-30) still gives a direction; only
    parts that cancel leave (almost) nothing.
    """
    scaled = {name: weights[name] / (stats.spread(vector) if stats else 1.0) for name, vector in parts.items()}
    total = sum((-1 if name == negative else 1) * scaled[name] * vector.astype(np.float64) for name, vector in parts.items())
    scale = sum(scaled.values())
    return total / scale if scale else total


def composed_match(
    similarities: Mapping[str, np.ndarray], parts: Mapping[str, np.ndarray], weights: Mapping[str, float], stats: CatalogueStats,
    *, cap: float, negative: str = "negative",
) -> np.ndarray:
    """How well candidates with these per-part similarities answer every part of a query.

    Each part's similarity becomes its z-score in the catalogue, capped at
    ``cap`` standard deviations (the setting ``COMPOSE_PART_CAP``); the match is their weighted
    mean, the negative part subtracted. Past the cap an asset is already as
    like that part as anything in the catalogue, so one part cannot outvote
    the others: a near-copy of the query image (4 standard deviations) that
    ignores the words no longer beats an asset that answers both.

    The negative part only takes away: an asset no more like it than the
    catalogue's typical one loses nothing, and one far less like it gains
    nothing. Otherwise "a star, not red" ranked a yellow triangle above
    purple stars, yellow being the colour least like red.
    """
    total = sum(weights[name] for name in parts) or 1.0
    match = np.zeros(len(next(iter(similarities.values()))), dtype=np.float64)
    for name, vector in parts.items():
        z = stats.z_scores(similarities[name], vector)
        if name == negative:
            match -= weights[name] / total * np.clip(z, 0.0, float(cap))
        else:
            match += weights[name] / total * np.minimum(z, float(cap))
    return match


def background_logits(prompts: Sequence[np.ndarray], stats: CatalogueStats | None, scale: float, spreads: float | None) -> list[float]:
    """The "none of these" logits a concept's prompts compete with: ``scale * (typical + spreads * spread)`` each.

    ``spreads`` is the setting ``MODERATION_BACKGROUND_SPREADS``; empty without statistics or when it is None.
    """
    if stats is None or spreads is None:
        return []
    return [float(scale) * (stats.typical(p) + float(spreads) * stats.spread(p)) for p in prompts]
