"""Retrieval metrics for a labelled query set, and ANN-vs-exact recall.

The query set is JSON: a list of objects, each with the query parts that
:class:`assetsearch.search.Query` accepts (``text``, ``image`` as a file
path, ``asset_id``, ``negative``, weights, ``hybrid``) and ``relevant``, the
ids of the assets that count as hits::

    [{"text": "a red circle", "relevant": [12, 40]},
     {"asset_id": 7, "relevant": [8]}]
"""

from __future__ import annotations

import time
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .encoders import get_encoder
from .models import Asset
from .search import Filters, Query, compose, get_targets, search, vector_ranking

QUERY_FIELDS = {"text", "asset_id", "negative", "text_weight", "image_weight", "asset_weight", "negative_weight", "hybrid"}


@dataclass
class LabelledQuery:
    query: Query
    relevant: set[int]


def load_query_set(items: Sequence[dict[str, Any]], base_dir: Path | None = None, depth: int = 10) -> list[LabelledQuery]:
    queries = []
    for n, item in enumerate(items, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("relevant"), list) or not item["relevant"]:
            raise ValueError(f"Query {n}: needs a non-empty list 'relevant' of asset ids.")
        unknown = set(item) - QUERY_FIELDS - {"image", "relevant"}
        if unknown:
            raise ValueError(f"Query {n}: unknown field(s) {', '.join(sorted(unknown))}.")
        options = {k: v for k, v in item.items() if k in QUERY_FIELDS}
        if "image" in item:
            path = Path(item["image"])
            options["image"] = (base_dir / path if base_dir and not path.is_absolute() else path).read_bytes()
        queries.append(LabelledQuery(Query.from_data({**options, "limit": depth}), {int(pk) for pk in item["relevant"]}))
    return queries


def average_precision(ranked: Sequence[int], relevant: set[int]) -> float:
    hits, total = 0, 0.0
    for i, pk in enumerate(ranked, start=1):
        if pk in relevant:
            hits += 1
            total += hits / i
    return total / min(len(relevant), len(ranked)) if ranked else 0.0


def evaluate(queries: Sequence[LabelledQuery], depth: int = 10) -> dict[str, float]:
    """Recall@1/5/10, MRR, mAP@depth, latency percentiles, ANN-vs-exact recall@10."""
    recalls = {1: [], 5: [], 10: []}
    reciprocal, precisions, latencies, overlap = [], [], [], []
    alias = get_encoder().alias
    for labelled in queries:
        if labelled.query.models is None:  # the labels name assets
            labelled = dataclasses.replace(labelled, query=dataclasses.replace(labelled.query, models=[Asset]))
        started = time.perf_counter()
        hits = search(labelled.query).hits
        latencies.append((time.perf_counter() - started) * 1000)
        ranked = [hit.object.pk for hit in hits]
        for k in recalls:
            recalls[k].append(float(bool(set(ranked[:k]) & labelled.relevant)))
        first = next((i for i, pk in enumerate(ranked, start=1) if pk in labelled.relevant), None)
        reciprocal.append(1.0 / first if first else 0.0)
        precisions.append(average_precision(ranked, labelled.relevant))
        vector = compose(labelled.query).vector
        targets = get_targets(dataclasses.replace(labelled.query, filters=Filters()))
        approx = {key for key, _ in vector_ranking(vector, targets, depth=10, exact=False, alias=alias)}
        exact = {key for key, _ in vector_ranking(vector, targets, depth=10, exact=True, alias=alias)}
        overlap.append(len(approx & exact) / max(1, len(exact)))
    return {
        "queries": len(queries),
        **{f"recall@{k}": float(np.mean(v)) for k, v in recalls.items()},
        "MRR": float(np.mean(reciprocal)),
        f"mAP@{depth}": float(np.mean(precisions)),
        "latency_p50_ms": float(np.percentile(latencies, 50)),
        "latency_p95_ms": float(np.percentile(latencies, 95)),
        "ann_recall@10_vs_exact": float(np.mean(overlap)),
    }


__all__ = ["LabelledQuery", "evaluate", "load_query_set", "average_precision"]
