"""The HNSW indexes on the stored vectors: one per encoder alias, build parameters, ``ef_search``, rebuilds.

The entry table's ``vector`` column holds ``halfvec`` of any dimension, so
one index cannot serve every alias. Each alias in ``INDEXED_ENCODERS`` (and
``SEARCH_ENCODER``) gets the partial index pgvector documents for that case::

    CREATE INDEX ... ON assetsearch_indexentry
        USING hnsw ((vector::halfvec(512)) halfvec_cosine_ops) WITH (m = 16, ef_construction = 128)
        WHERE encoder = 'default'

and search orders by the same expression
(:func:`assetsearch.querysets.vector_expression`). Two commands, one concern
each:

- ``manage.py assetsearch_sync_indexes``: which indexes exist. Creates the
  missing ones (``migrate`` does too; ``--concurrently`` on a live site) and,
  with ``--prune``, drops those of aliases no longer indexed or whose
  dimension changed. The check ``assetsearch.W004`` names a missing one.
- ``manage.py assetsearch_rebuild_index``: how they are built. Two settings
  shape the graph: ``HNSW_M`` (links per node) and ``HNSW_EF_CONSTRUCTION``
  (candidates weighed per insertion); changing one takes effect when the
  command rebuilds an alias's index: ``CREATE INDEX CONCURRENTLY`` beside
  the old one, then a swap, so searches and writes go on meanwhile. The
  check ``assetsearch.W003`` says, per alias, when the live index was built
  with other parameters than the settings.

One setting is read at query time: ``HNSW_EF_SEARCH`` (candidates kept while
walking the graph), which :func:`get_ef_search` scales with the graph's size
and raises for deep pages and filtered scans.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, connections

from .conf import app_settings
from .constants import VECTOR_INDEX_PREFIX

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
# ... and follows the graph's size: HNSW_EF_SEARCH is the list at
# REFERENCE_VECTORS, where the defaults were chosen, and a graph of n vectors
# keeps HNSW_EF_SEARCH x sqrt(n / REFERENCE_VECTORS), at least MIN_EF_SEARCH.
# Measured (README "Benchmarks"): 10k vectors reach recall@10 1.000 from
# ef_search 40, and 400 costs them 2.2x the time of 100 for nothing; a
# million reach 0.984 at 1000 (0.962 at 400, 0.945 in another build).
REFERENCE_VECTORS = 100_000
MIN_EF_SEARCH = 40  # pgvector's default
# How long a process trusts its estimate of a graph's size (one catalog read per alias each time).
GRAPH_SIZE_TTL_SECONDS = 300.0


def get_ef_search(depth: int, *, filtered: bool = False, vectors: int | None = None) -> int:
    """``hnsw.ef_search`` for a query that needs the ``depth`` nearest rows of a graph of ``vectors``.

    ``HNSW_EF_SEARCH``; adaptively (``HNSW_ADAPTIVE_EF_SEARCH``) scaled by
    the graph's size when it is known, and raised for deep pages and filtered
    scans; never below ``depth`` (the walk cannot return more rows than it
    keeps); at most pgvector's limit.
    """
    ef_search = int(app_settings.HNSW_EF_SEARCH)
    if app_settings.HNSW_ADAPTIVE_EF_SEARCH:
        if vectors is not None:
            ef_search = max(MIN_EF_SEARCH, round(ef_search * math.sqrt(max(vectors, 0) / REFERENCE_VECTORS)))
        ef_search = max(ef_search, DEEP_PAGE_FACTOR * depth) * (FILTERED_FACTOR if filtered else 1)
    return min(max(ef_search, depth), EF_SEARCH_LIMIT)


_graph_sizes: dict[tuple[str, str], tuple[float, int | None]] = {}


def get_graph_size(alias: str, using: str = "default") -> int | None:
    """About how many vectors ``alias``'s live HNSW index holds; None when Postgres has no estimate.

    The index's ``pg_class.reltuples``, which ``CREATE INDEX``, ``VACUUM`` and
    ``ANALYZE`` keep (autovacuum follows inserts), read once per
    ``GRAPH_SIZE_TTL_SECONDS`` per process: :func:`get_ef_search` needs its
    order of magnitude, not an exact count, and a search no extra round trip.
    """
    key = (using, alias)
    now = time.monotonic()
    cached = _graph_sizes.get(key)
    if cached is not None and now - cached[0] < GRAPH_SIZE_TTL_SECONDS:
        return cached[1]
    index = live_index(alias, using)
    size = index.estimated_rows if index is not None else None
    _graph_sizes[key] = (now, size)
    return size


def clear_graph_sizes() -> None:
    """Forget the estimates (after a bulk load, and in tests)."""
    _graph_sizes.clear()


def entry_table() -> str:
    """The index-entry table (looked up in the app registry: models imports this module's callers)."""
    from django.apps import apps

    return apps.get_model("assetsearch", "IndexEntry")._meta.db_table


def vector_index_name(alias: str, dimensions: int) -> str:
    """The name of ``alias``'s HNSW index at ``dimensions``: readable, and within Postgres's 63 bytes."""
    slug = "".join(c if c.isalnum() else "_" for c in alias.lower())
    digest = hashlib.sha256(alias.encode()).hexdigest()[:6]
    return f"{VECTOR_INDEX_PREFIX}_{slug[:24]}_{dimensions}_{digest}"


@dataclass(frozen=True)
class LiveIndex:
    """A per-alias vector index as the database has it."""

    name: str
    alias: str
    dimensions: int
    parameters: IndexParameters
    valid: bool
    #: ``pg_class.reltuples``: the planner's estimate of its vectors; None before Postgres has one.
    estimated_rows: int | None = None


_PREDICATE_ALIAS = re.compile(r"'((?:[^']|'')*)'")
_DIMENSIONS = re.compile(r"halfvec\((\d+)\)")


def live_indexes(using: str = "default") -> dict[str, LiveIndex]:
    """``{index name: LiveIndex}`` of the per-alias vector indexes on the entry table (read from the catalog)."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.reloptions, pg_get_expr(i.indpred, i.indrelid), pg_get_indexdef(c.oid), i.indisvalid, c.reltuples "
            "FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
            "WHERE i.indrelid = %s::regclass AND c.relname LIKE %s",
            [entry_table(), VECTOR_INDEX_PREFIX + "%"],
        )
        rows = cursor.fetchall()
    found = {}
    for name, reloptions, predicate, definition, valid, reltuples in rows:
        alias = _PREDICATE_ALIAS.search(predicate or "")
        dimensions = _DIMENSIONS.search(definition or "")
        if alias is None or dimensions is None:
            continue  # not one of ours (a prefix taken by hand)
        options = dict(PGVECTOR_DEFAULTS)
        for option in reloptions or []:
            key, _, value = option.partition("=")
            if key in options:
                options[key] = int(value)
        estimated_rows = int(reltuples) if reltuples is not None and reltuples >= 0 else None  # -1: never counted
        found[name] = LiveIndex(
            name, alias.group(1).replace("''", "'"), int(dimensions.group(1)), IndexParameters(**options), bool(valid), estimated_rows
        )
    return found


def existing_vector_indexes(using: str = "default") -> set[str]:
    """The names of the per-alias vector indexes on the entry table (valid or not)."""
    return set(live_indexes(using))


def live_index_parameters(using: str = "default") -> dict[str, IndexParameters]:
    """``{alias: parameters}`` its valid live index was built with (one index per alias; the first by name)."""
    found: dict[str, IndexParameters] = {}
    for name, index in sorted(live_indexes(using).items()):
        if index.valid and not name.endswith(REBUILD_SUFFIX):
            found.setdefault(index.alias, index.parameters)
    return found


def live_index(alias: str | None = None, using: str = "default") -> LiveIndex | None:
    """``alias``'s (default ``SEARCH_ENCODER``) valid live index, None when it has none."""
    alias = alias or app_settings.SEARCH_ENCODER
    candidates = [
        index for name, index in sorted(live_indexes(using).items())
        if index.alias == alias and index.valid and not name.endswith(REBUILD_SUFFIX)
    ]
    return candidates[0] if candidates else None


def live_parameters(alias: str | None = None, using: str = "default") -> IndexParameters | None:
    """The parameters ``alias``'s (default ``SEARCH_ENCODER``) live index was built with; None without a valid one."""
    index = live_index(alias, using)
    return index.parameters if index else None


def index_name(alias: str | None = None) -> str:
    """The name of ``alias``'s (default ``SEARCH_ENCODER``) index: the live one, else the one its encoder needs."""
    alias = alias or app_settings.SEARCH_ENCODER
    index = live_index(alias)
    if index is not None:
        return index.name
    from .encoders import get_encoder

    return vector_index_name(alias, get_encoder(alias).dimensions)


def index_size_bytes(alias: str | None = None, using: str = "default") -> int:
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_relation_size(%s::regclass)", [index_name(alias)])
        return int(cursor.fetchone()[0])


def create_index_sql(
    parameters: IndexParameters, *, alias: str, dimensions: int, name: str | None = None, concurrently: bool = False,
) -> str:
    """The ``CREATE INDEX`` statement of ``alias``'s partial HNSW index over ``vector::halfvec(dimensions)``.

    The opclass matches the cosine distance the queries use. The alias is a
    settings key, quoted as a string literal all the same.
    """
    quote = connection.ops.quote_name
    literal = "'" + alias.replace("'", "''") + "'"
    return (
        f"CREATE INDEX {'CONCURRENTLY ' if concurrently else ''}IF NOT EXISTS "
        f"{quote(name or vector_index_name(alias, dimensions))} ON {quote(entry_table())} "
        f"USING hnsw ((vector::halfvec({int(dimensions)})) halfvec_cosine_ops) "
        f"WITH (m = {int(parameters.m)}, ef_construction = {int(parameters.ef_construction)}) "
        f"WHERE encoder = {literal}"
    )


def create_vector_index(alias: str, dimensions: int, *, concurrently: bool = False, parameters: IndexParameters | None = None) -> str:
    """Create ``alias``'s index (if missing) with ``parameters`` (default: the settings'); returns its name.

    ``concurrently`` builds without locking writes (outside a transaction only).
    """
    with connection.cursor() as cursor:
        cursor.execute(create_index_sql(parameters or configured_parameters(), alias=alias, dimensions=dimensions, concurrently=concurrently))
    clear_graph_sizes()
    return vector_index_name(alias, dimensions)


def drop_vector_index(name: str, *, concurrently: bool = False) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX {'CONCURRENTLY ' if concurrently else ''}IF EXISTS {connection.ops.quote_name(name)}")
    clear_graph_sizes()


@dataclass
class IndexPlan:
    wanted: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (alias, dimensions)
    existing: set[str] = field(default_factory=set)

    @property
    def missing(self) -> dict[str, tuple[str, int]]:
        return {name: spec for name, spec in self.wanted.items() if name not in self.existing}

    @property
    def obsolete(self) -> list[str]:
        return sorted(name for name in self.existing - set(self.wanted) if not name.endswith(REBUILD_SUFFIX))


def plan_vector_indexes() -> IndexPlan:
    """The indexes the configured encoders need (reads each model's dimension), and those that exist."""
    from .encoders import get_encoder

    wanted = {}
    for alias in app_settings.get_indexed_encoders():
        dimensions = get_encoder(alias).dimensions
        wanted[vector_index_name(alias, dimensions)] = (alias, dimensions)
    return IndexPlan(wanted, existing_vector_indexes())


def sync_vector_indexes(*, prune: bool = False, concurrently: bool = False) -> tuple[list[str], list[str]]:
    """Create the missing indexes (and drop obsolete ones with ``prune``); returns (created, dropped)."""
    plan = plan_vector_indexes()
    created = [create_vector_index(alias, dims, concurrently=concurrently) for alias, dims in plan.missing.values()]
    dropped = []
    if prune:
        for name in plan.obsolete:
            drop_vector_index(name, concurrently=concurrently)
            dropped.append(name)
    return created, dropped


Progress = Callable[[str, int, int], None]  # (phase, done, total)


def rebuild_index(
    parameters: IndexParameters, *, alias: str | None = None, maintenance_work_mem: str | None = None,
    progress: Progress | None = None,
) -> None:
    """Build ``alias``'s (default ``SEARCH_ENCODER``) index anew with ``parameters`` beside the old one, then swap them.

    ``CREATE INDEX CONCURRENTLY`` takes no lock that blocks reads or
    writes; the old index serves searches until ``DROP INDEX CONCURRENTLY``
    removes it, and the new one is renamed into its place. A run
    interrupted midway leaves at most an extra ``*_rebuild`` index, which
    the next run drops (or, if the old index is already gone, renames).
    Runs outside any transaction (autocommit), as CONCURRENTLY requires.
    """
    parameters.validate()
    alias = alias or app_settings.SEARCH_ENCODER
    name = index_name(alias)
    current = live_index(alias)
    if current is not None:
        dimensions = current.dimensions
    else:
        from .encoders import get_encoder

        dimensions = get_encoder(alias).dimensions
    temporary = name[: 63 - len(REBUILD_SUFFIX)] + REBUILD_SUFFIX
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if maintenance_work_mem:
            # The graph is built in memory: one that does not fit is built far more slowly.
            cursor.execute("SELECT set_config('maintenance_work_mem', %s, false)", [maintenance_work_mem])
        if current is None and _exists(cursor, temporary, valid=True):
            cursor.execute(f"ALTER INDEX {quote(temporary)} RENAME TO {quote(name)}")  # an interrupted swap
            return
        cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote(temporary)}")
        watcher = _ProgressWatcher(progress) if progress else None
        try:
            cursor.execute(create_index_sql(parameters, alias=alias, dimensions=dimensions, name=temporary, concurrently=True))
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
