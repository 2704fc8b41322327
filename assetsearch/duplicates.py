"""Near-duplicate groups over the whole catalogue."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from .conf import app_settings
from .encoders import get_encoder
from .models import Asset, AssetEmbedding
from .search import vector_ranking

NEIGHBOURS = 10


def duplicate_groups(
    threshold: float | None = None, *, progress: Callable[[Iterable[int]], Iterable[int]] = lambda ids: ids
) -> list[list[int]]:
    """Groups of asset ids linked by similarity >= ``threshold`` (transitively).

    One index query per asset for its ``NEIGHBOURS`` nearest; links are joined
    with union-find, so a chain a~b~c is one group.
    """
    threshold = app_settings.DUPLICATE_THRESHOLD if threshold is None else threshold
    key = get_encoder().key
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    rows = AssetEmbedding.objects.for_model(key).order_by("asset_id").values_list("asset_id", "vector")
    all_assets = Asset.objects.all()
    for asset_id, vector in progress(rows.iterator(chunk_size=500)):
        neighbours = vector_ranking(np.asarray(vector, dtype=np.float32), all_assets, depth=NEIGHBOURS + 1, exact=False, model_key=key)
        for other, score in neighbours:
            if other != asset_id and score >= threshold:
                parent[find(other)] = find(asset_id)
    groups: dict[int, list[int]] = {}
    for asset_id in parent:
        groups.setdefault(find(asset_id), []).append(asset_id)
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g[0]))
