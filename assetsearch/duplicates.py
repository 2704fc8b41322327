"""Near-duplicate groups over the whole catalogue of one registered model."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

import numpy as np

from .conf import app_settings
from .copies import Picture, get_picture, is_copy
from .encoders import get_encoder
from .models import Asset, IndexEntry
from .registry import get_index
from .search import Query, get_targets, vector_ranking

NEIGHBOURS = 10
# Prepared pictures kept while grouping (about 110 kB each): neighbours are often met again.
PICTURE_CACHE_SIZE = 512


def duplicate_groups(
    threshold: float | None = None, *, model: Any = Asset, check_pixels: bool = True,
    progress: Callable[[Iterable[Any]], Iterable[Any]] = lambda rows: rows,
) -> list[list[int]]:
    """Groups of ``model`` ids (default: assets) that are copies of each other (transitively).

    One index query per object for its ``NEIGHBOURS`` nearest; a neighbour at
    least ``threshold`` similar (default ``DUPLICATE_THRESHOLD``) is linked
    when :mod:`assetsearch.copies` confirms it on pixels within
    ``DUPLICATE_PIXEL_TOLERANCE`` (any neighbour above the threshold with
    ``check_pixels=False`` or a tolerance of None). Links are joined with
    union-find, so a chain a~b~c is one group, and a pair already in one
    group is not compared again.
    """
    threshold = app_settings.DUPLICATE_THRESHOLD if threshold is None else threshold
    tolerance = app_settings.DUPLICATE_PIXEL_TOLERANCE if check_pixels else None
    alias = get_encoder().alias
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    targets = get_targets(Query(text="-", models=[model]))
    rows = IndexEntry.objects.for_model(model).for_encoder(alias).with_vector().order_by("object_id").values_list("object_id", "vector")
    index = get_index(model)

    @lru_cache(maxsize=PICTURE_CACHE_SIZE)
    def picture(object_id: int) -> Picture | None:
        obj = model._default_manager.filter(pk=object_id).first()
        return None if obj is None else get_picture(obj, index)

    def copies(a: int, b: int) -> bool:
        if tolerance is None:
            return True
        first, second = picture(a), picture(b)
        return first is not None and second is not None and is_copy(first, second, tolerance)

    for object_id, vector in progress(rows.iterator(chunk_size=500)):
        neighbours = vector_ranking(np.asarray(vector, dtype=np.float32), targets, depth=NEIGHBOURS + 1, exact=False, alias=alias)
        for (_, other), score in neighbours:
            if other != object_id and score >= threshold and find(other) != find(object_id) and copies(object_id, other):
                parent[find(other)] = find(object_id)
    groups: dict[int, list[int]] = {}
    for object_id in parent:
        groups.setdefault(find(object_id), []).append(object_id)
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g[0]))
