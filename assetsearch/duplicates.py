"""Near-duplicate groups over the whole catalogue of one registered model."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .conf import app_settings
from .encoders import get_encoder
from .models import Asset, IndexEntry
from .search import Query, get_targets, vector_ranking

NEIGHBOURS = 10


def duplicate_groups(
    threshold: float | None = None, *, model: Any = Asset,
    progress: Callable[[Iterable[Any]], Iterable[Any]] = lambda rows: rows,
) -> list[list[int]]:
    """Groups of ``model`` ids (default: assets) linked by similarity >= ``threshold`` (transitively).

    One index query per object for its ``NEIGHBOURS`` nearest; links are joined
    with union-find, so a chain a~b~c is one group.
    """
    threshold = app_settings.DUPLICATE_THRESHOLD if threshold is None else threshold
    alias = get_encoder().alias
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    targets = get_targets(Query(text="-", models=[model]))
    rows = IndexEntry.objects.for_model(model).for_encoder(alias).with_vector().order_by("object_id").values_list("object_id", "vector")
    for object_id, vector in progress(rows.iterator(chunk_size=500)):
        neighbours = vector_ranking(np.asarray(vector, dtype=np.float32), targets, depth=NEIGHBOURS + 1, exact=False, alias=alias)
        for (_, other), score in neighbours:
            if other != object_id and score >= threshold:
                parent[find(other)] = find(object_id)
    groups: dict[int, list[int]] = {}
    for object_id in parent:
        groups.setdefault(find(object_id), []).append(object_id)
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g[0]))
