"""The HNSW index on the stored vectors: build parameters, per-query ``ef_search``, rebuilds.

Two settings shape the graph when it is built: ``HNSW_M`` (links per node)
and ``HNSW_EF_CONSTRUCTION`` (candidates weighed per insertion). One is read
at query time: ``HNSW_EF_SEARCH`` (candidates kept while walking the graph),
raised by :func:`get_ef_search` for pages deeper than it. Changing a build
parameter takes effect when ``manage.py assetsearch_rebuild_index`` rebuilds
the index: ``CREATE INDEX CONCURRENTLY`` beside the old one, then a swap, so
searches and writes go on meanwhile. The system check ``assetsearch.W003``
says when the live index was built with other parameters than the settings.

The index's name, column and operator class are the ``HnswIndex`` in
``AssetEmbedding.Meta`` (the migrations build it from there).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection, connections

from .conf import app_settings

# pgvector's bounds: hnsw.ef_search is at most 1000; m 2..100; ef_construction 4..1000 and >= 2m.
EF_SEARCH_LIMIT = 1000
M_RANGE = (2, 100)
EF_CONSTRUCTION_RANGE = (4, 1000)
# pgvector's own defaults, for an index built without WITH (...).
PGVECTOR_DEFAULTS = {"m": 16, "ef_construction": 64}
REBUILD_SUFFIX = "_rebuild"


@dataclass(frozen=True)
class IndexParameters:
    m: int
    ef_construction: int

    def __str__(self) -> str:
        return f"m={self.m}, ef_construction={self.ef_construction}"

    def validate(self) -> IndexParameters:
        """Self, or ``ValueError`` naming the parameter pgvector would refuse."""
        if not M_RANGE[0] <= self.m <= M_RANGE[1]:
            raise ValueError(f"HNSW m must be between {M_RANGE[0]} and {M_RANGE[1]}, not {self.m}.")
        low, high = max(EF_CONSTRUCTION_RANGE[0], 2 * self.m), EF_CONSTRUCTION_RANGE[1]
        if not low <= self.ef_construction <= high:
            raise ValueError(f"HNSW ef_construction must be between {low} (2 x m) and {high}, not {self.ef_construction}.")
        return self


def configured_parameters() -> IndexParameters:
    """The build parameters the settings ask for."""
    return IndexParameters(int(app_settings.HNSW_M), int(app_settings.HNSW_EF_CONSTRUCTION)).validate()


# Adaptive ef_search (HNSW_ADAPTIVE_EF_SEARCH): a page needing the ``depth``
# nearest rows keeps at least DEEP_PAGE_FACTOR x depth candidates, and a
# filtered scan FILTERED_FACTOR x the list. Measured (benchmarks/search.py
# --sweep, README "Benchmarks"): ranks 81-100 at ef = depth miss far more
# than a first page does, and a filtered walk at twice the list finds more
# of the true matches at about the same time, as its iterative scan visits
# that many tuples anyway.
DEEP_PAGE_FACTOR = 4
FILTERED_FACTOR = 2


def get_ef_search(depth: int, *, filtered: bool = False) -> int:
    """``hnsw.ef_search`` for a query that needs the ``depth`` nearest rows.

    ``HNSW_EF_SEARCH``; adaptively (``HNSW_ADAPTIVE_EF_SEARCH``) raised for
    deep pages and filtered scans, else only to ``depth`` (the walk cannot
    return more rows than it keeps); at most pgvector's limit.
    """
    ef_search = int(app_settings.HNSW_EF_SEARCH)
    if app_settings.HNSW_ADAPTIVE_EF_SEARCH:
        ef_search = max(ef_search, DEEP_PAGE_FACTOR * depth) * (FILTERED_FACTOR if filtered else 1)
    return min(max(ef_search, depth), EF_SEARCH_LIMIT)


def _model_index() -> tuple[str, Any]:
    """The embedding table and its ``HnswIndex`` declaration."""
    from django.apps import apps
    from pgvector.django import HnswIndex

    AssetEmbedding = apps.get_model("assetsearch", "AssetEmbedding")  # not imported: models imports this module's callers
    (index,) = [i for i in AssetEmbedding._meta.indexes if isinstance(i, HnswIndex)]
    return AssetEmbedding._meta.db_table, index


def index_name() -> str:
    return _model_index()[1].name


def live_parameters(using: str = "default") -> IndexParameters | None:
    """The parameters the live index was built with; None when there is no valid index."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT c.reloptions FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
            "WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace AND i.indisvalid",
            [index_name()],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    options = dict(PGVECTOR_DEFAULTS)
    for option in row[0] or []:
        key, _, value = option.partition("=")
        if key in options:
            options[key] = int(value)
    return IndexParameters(**options)


def index_size_bytes(using: str = "default") -> int:
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_relation_size(%s::regclass)", [index_name()])
        return int(cursor.fetchone()[0])


def create_index_sql(parameters: IndexParameters, *, name: str | None = None, concurrently: bool = False) -> str:
    """The ``CREATE INDEX`` statement for the model's HNSW index with ``parameters``."""
    table, index = _model_index()
    quote = connection.ops.quote_name
    (column,), (opclass,) = index.fields, index.opclasses
    return (
        f"CREATE INDEX {'CONCURRENTLY ' if concurrently else ''}{quote(name or index.name)} ON {quote(table)} "
        f"USING hnsw ({quote(column)} {opclass}) WITH (m = {int(parameters.m)}, ef_construction = {int(parameters.ef_construction)})"
    )


Progress = Callable[[str, int, int], None]  # (phase, done, total)


def rebuild_index(
    parameters: IndexParameters, *, maintenance_work_mem: str | None = None, progress: Progress | None = None,
) -> None:
    """Build the index anew with ``parameters`` beside the old one, then swap them.

    ``CREATE INDEX CONCURRENTLY`` takes no lock that blocks reads or
    writes; the old index serves searches until ``DROP INDEX CONCURRENTLY``
    removes it, and the new one is renamed into its place. A run
    interrupted midway leaves at most an extra ``*_rebuild`` index, which
    the next run drops (or, if the old index is already gone, renames).
    Runs outside any transaction (autocommit), as CONCURRENTLY requires.
    """
    parameters.validate()
    name = index_name()
    temporary = name + REBUILD_SUFFIX
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if maintenance_work_mem:
            # The graph is built in memory: one that does not fit is built far more slowly.
            cursor.execute("SELECT set_config('maintenance_work_mem', %s, false)", [maintenance_work_mem])
        if live_parameters() is None and _exists(cursor, temporary, valid=True):
            cursor.execute(f"ALTER INDEX {quote(temporary)} RENAME TO {quote(name)}")  # an interrupted swap
            return
        cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote(temporary)}")
        watcher = _ProgressWatcher(progress) if progress else None
        try:
            cursor.execute(create_index_sql(parameters, name=temporary, concurrently=True))
        finally:
            if watcher:
                watcher.stop()
        cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote(name)}")
        cursor.execute(f"ALTER INDEX {quote(temporary)} RENAME TO {quote(name)}")


def _exists(cursor: Any, name: str, *, valid: bool) -> bool:
    cursor.execute(
        "SELECT i.indisvalid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
        "WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace",
        [name],
    )
    row = cursor.fetchone()
    return row is not None and (row[0] or not valid)


class _ProgressWatcher:
    """Reports ``pg_stat_progress_create_index`` from another connection while a build runs."""

    def __init__(self, progress: Progress, interval: float = 1.0) -> None:
        self.progress, self.interval = progress, interval
        self.pid = connection.connection.info.backend_pid
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        try:
            while not self.done.wait(self.interval):
                with connections["default"].cursor() as cursor:
                    cursor.execute(
                        "SELECT phase, tuples_done, tuples_total, blocks_done, blocks_total "
                        "FROM pg_stat_progress_create_index WHERE pid = %s",
                        [self.pid],
                    )
                    row = cursor.fetchone()
                if row:
                    phase, tuples_done, tuples_total, blocks_done, blocks_total = row
                    done, total = (tuples_done, tuples_total) if tuples_total else (blocks_done, blocks_total)
                    self.progress(phase, int(done or 0), int(total or 0))
        finally:
            connections["default"].close()  # this thread's own connection

    def stop(self) -> None:
        self.done.set()
        self.thread.join()
