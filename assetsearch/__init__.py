"""assetsearch: make a Django site's images searchable by meaning."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .indexes import BaseImageIndex

__version__ = "0.1.0"


def register(model: Any, index_class: type[BaseImageIndex] | None = None) -> BaseImageIndex:
    """Index ``model``'s images; see :mod:`assetsearch.indexes` (imported lazily: call it from ``ready()``)."""
    from .registry import register as register_index

    return register_index(model, index_class)
