"""One partial HNSW index per indexed encoder alias, at that alias's dimension.

The entry table's ``vector`` column holds ``halfvec`` of any dimension, so
one index cannot serve every alias. Each alias in ``INDEXED_ENCODERS`` (and
``SEARCH_ENCODER``) gets the index pgvector documents for that case::

    CREATE INDEX ... ON assetsearch_indexentry
        USING hnsw ((vector::halfvec(512)) halfvec_cosine_ops) WHERE encoder = 'default'

and search orders by the same expression
(:func:`assetsearch.querysets.vector_expression`). ``migrate`` creates the
missing ones; ``manage.py assetsearch_sync_indexes`` creates them (optionally
``CONCURRENTLY``) and, with ``--prune``, drops those of aliases no longer
indexed or whose dimension changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .conf import app_settings
from .encoders import get_encoder
from .models import IndexEntry
from .querysets import create_vector_index, drop_vector_index, existing_vector_indexes, vector_index_name


@dataclass
class IndexPlan:
    wanted: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (alias, dimensions)
    existing: set[str] = field(default_factory=set)

    @property
    def missing(self) -> dict[str, tuple[str, int]]:
        return {name: spec for name, spec in self.wanted.items() if name not in self.existing}

    @property
    def obsolete(self) -> list[str]:
        return sorted(self.existing - set(self.wanted))


def plan_vector_indexes() -> IndexPlan:
    """The indexes the configured encoders need, and those that exist."""
    wanted = {}
    for alias in app_settings.get_indexed_encoders():
        dimensions = get_encoder(alias).dimensions
        wanted[vector_index_name(alias, dimensions)] = (alias, dimensions)
    return IndexPlan(wanted, set(existing_vector_indexes(IndexEntry._meta.db_table)))


def sync_vector_indexes(*, prune: bool = False, concurrently: bool = False) -> tuple[list[str], list[str]]:
    """Create the missing indexes (and drop obsolete ones with ``prune``); returns (created, dropped)."""
    plan = plan_vector_indexes()
    created = [create_vector_index(IndexEntry._meta.db_table, alias, dims, concurrently=concurrently) for alias, dims in plan.missing.values()]
    dropped = []
    if prune:
        for name in plan.obsolete:
            drop_vector_index(name, concurrently=concurrently)
            dropped.append(name)
    return created, dropped
