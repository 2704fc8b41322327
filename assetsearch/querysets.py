"""Every query of assetsearch: the QuerySets of its models, and the session settings of index scans.

Nothing outside this module (migrations and system checks aside) runs SQL
of its own: views, tasks and the core call these methods. pgvector
distances are ORM expressions (``CosineDistance``) whose vectors travel as
parameters, never as string-built literals.
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.apps import apps
from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.core.exceptions import EmptyResultSet
from django.db import connection, connections, models
from django.db.models.functions import Cast, Greatest, Ln
from django.utils import timezone
from pgvector import HalfVector
from pgvector.django import CosineDistance, HalfVectorField

from .conf import app_settings
from .constants import KEYWORD_MIN_SHARE, MAX_KEYWORD_TERMS, MODERATE_PERMISSION, ConceptAction, EmbeddingStatus, FlagStatus
from .index import get_ef_search, get_graph_size

def pgvector_version(using: str = "default") -> str | None:
    """The version of the ``vector`` extension in the database; None when it is not created."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    return row[0] if row else None


# The HNSW knobs of one query, as SQL expressions (the parameter: ef_search).
# is_local=true is SET LOCAL: they end with the transaction that set them, so a
# pooled or persistent connection never carries one query's ef_search into the next.
INDEX_SCAN_SETTINGS = (
    "set_config('hnsw.ef_search', %s, true)",
    "set_config('hnsw.iterative_scan', 'strict_order', true)",
)


def configure_index_scan(depth: int, filtered: bool = False) -> None:
    """Set the HNSW knobs for the current transaction (``SET LOCAL``), for ``depth`` results, in one statement.

    Iterative scans in strict order keep walking the graph until ``depth``
    rows pass the filters, so a filter cannot shorten a page; ``filtered``
    scans keep a longer candidate list (:func:`assetsearch.index.get_ef_search`).
    Search itself sets them inside its query's own statement
    (:meth:`IndexEntryQuerySet.ranking`); this is for other queries run in a
    transaction (``explain()`` of a :meth:`IndexEntryQuerySet.nearest` queryset).
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(INDEX_SCAN_SETTINGS), [str(get_ef_search(depth, filtered=filtered))])


class IndexScanSettings(models.Expression):
    """A condition that sets the HNSW knobs in the statement it filters, before its index scan starts.

    ``(SELECT set_config(..) || set_config(..)) IS NOT NULL`` refers to no
    row, so the planner evaluates it once, as a one-time filter of a Result
    node above the scan, before the scan's first row is asked for; pgvector
    reads ``hnsw.ef_search`` and ``hnsw.iterative_scan`` at that first row.
    Outside a transaction the statement is its own transaction, so the
    settings end with it: no round trip and no transaction of their own.
    The planner costs the scan at the session's ``ef_search`` (pgvector
    0.8 weighs it), so it keeps to the index on small tables too; exact
    scans are :func:`assetsearch.search.use_exact_scan`'s decision.
    """

    output_field = models.BooleanField()

    def __init__(self, ef_search: int) -> None:
        super().__init__()
        self.ef_search = ef_search

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        return f"(SELECT {' || '.join(INDEX_SCAN_SETTINGS)}) IS NOT NULL", [str(self.ef_search)]


class HalfVectorBinary(bytes):
    """A halfvec in pgvector's binary wire format, as a query parameter.

    On :func:`server_binding_cursor` it travels as a binary parameter that
    Postgres reads with ``halfvec_recv``: 1 KB copied, where the text literal
    is 512 decimals that Python formats (most of a millisecond) and Postgres
    parses again.
    """

    @classmethod
    def from_vector(cls, vector: np.ndarray) -> HalfVectorBinary:
        return cls(HalfVector(np.asarray(vector, dtype=np.float32)).to_binary())


@functools.cache
def _server_binding_classes() -> tuple[type, type]:
    """(cursor class, binary dumper) of :func:`server_binding_cursor`: made once, not per search (psycopg 3 only)."""
    from django.db.backends.postgresql.base import ServerBindingCursor
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    class BinaryDumper(Dumper):
        format = Format.BINARY

        def dump(self, obj: bytes) -> bytes:
            return obj

    class UnpreparedCursor(ServerBindingCursor):
        def execute(self, query: Any, params: Any = None, **options: Any) -> Any:
            return super().execute(query, params, **{"prepare": False, **options})

    return UnpreparedCursor, BinaryDumper


@contextmanager
def server_binding_cursor(using: str = "default") -> Iterator[Any]:
    """A Django cursor (logged, wrapped like any other) whose parameters are bound by the server.

    Django's psycopg cursors bind client-side, merging every parameter into
    the SQL text; this one sends :class:`HalfVectorBinary` values in binary
    (oid 0: the statement's ``::halfvec`` names the type, so no type lookup
    is needed). Statements are not prepared, so it works behind a
    transaction-pooling proxy as the rest of the ORM does.
    """
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    database = connections[using]
    if not is_psycopg3:
        with database.cursor() as cursor:
            yield cursor
        return
    cursor_class, dumper_class = _server_binding_classes()
    database.close_if_health_check_failed()
    database.ensure_connection()
    database.validate_thread_sharing()
    with database.wrap_database_errors:
        raw = cursor_class(database.connection)
    raw.adapters.register_dumper(HalfVectorBinary, dumper_class)
    cursor = database.make_debug_cursor(raw) if database.queries_logged else database.make_cursor(raw)
    with cursor:
        yield cursor


class QueryVector(models.Expression):
    """The query vector as one ``halfvec`` parameter.

    Compiled for :meth:`IndexEntryQuerySet.ranking` it is a
    :class:`HalfVectorBinary`; anywhere else (the ORM's own cursors,
    ``explain()``) pgvector's text literal, as pgvector's own expressions send it.
    """

    output_field = HalfVectorField()

    def __init__(self, vector: np.ndarray) -> None:
        super().__init__()
        self.vector = np.asarray(vector, dtype=np.float32)
        # Expressions compare by their constructor arguments; an array is unhashable.
        self._constructor_args = ((HalfVectorBinary.from_vector(self.vector),), {})

    @property
    def dimensions(self) -> int:
        return len(self.vector)

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        if getattr(compiler, BINARY_VECTORS, False):
            return "%s::halfvec", [HalfVectorBinary.from_vector(self.vector)]
        return "%s::halfvec", [_query_vector(self.vector).to_text()]


# Set on a compiler whose statement runs on server_binding_cursor().
BINARY_VECTORS = "assetsearch_binary_vectors"


@dataclass
class EmbeddingReport:
    """Where a set of entries (one model, one alias) stands in the pipeline (admin status page, assetsearch_status)."""

    states: list[tuple[str, str, int]]  # (value, label, count) per EmbeddingStatus
    total: int
    models: list[dict[str, Any]]  # model_key, vectors, latest
    missing: int  # objects with no vector from the alias's current model
    stale: int  # entries whose vector was made by another model
    stuck: int  # pending for longer than the sweep waits
    failures: list[Any]  # failed entries, latest first ((object, entry) pairs from report_of)
    requeue_count: int  # pending or failed: what a re-enqueue sends


def _content_type(model: type[models.Model] | models.Model) -> models.Subquery:
    """The model's content type id as a subquery: building a queryset never touches the
    database (a check, a schema generation or a request may build them with none reachable)."""
    from django.contrib.contenttypes.models import ContentType

    opts = model._meta
    return models.Subquery(ContentType.objects.filter(app_label=opts.app_label, model=opts.model_name).values("pk")[:1])


def vector_expression(dimensions: int) -> models.Expression:
    """``vector::halfvec(<dimensions>)``: the expression each alias's partial HNSW index is built on.

    Queries order by this same expression, or the planner cannot use the index.
    """
    return Cast("vector", HalfVectorField(dimensions=dimensions))


def _query_vector(vector: Sequence[float]) -> HalfVector:
    return HalfVector(np.asarray(vector, dtype=np.float32))


def _similarity(vector: np.ndarray) -> models.Expression:
    """Cosine similarity of the stored ``vector`` column to ``vector``, as an expression."""
    return models.Value(1.0) - CosineDistance("vector", _query_vector(vector))


class AssetQuerySet(models.QuerySet["Asset"]):
    """Assets; their pipeline state is read from their index entries (search alias)."""

    def _with_entry_status(self, *statuses: str) -> AssetQuerySet:
        entries = self.model._meta.get_field("index_entries").related_model._default_manager
        ids = entries.for_model(self.model).search_alias().filter(status__in=statuses).values("object_id")
        return self.filter(pk__in=ids)

    def pending(self) -> AssetQuerySet:
        return self._with_entry_status(EmbeddingStatus.PENDING)

    def failed(self) -> AssetQuerySet:
        return self._with_entry_status(EmbeddingStatus.FAILED)

    def ready(self) -> AssetQuerySet:
        return self._with_entry_status(EmbeddingStatus.READY)

    def unfinished(self) -> AssetQuerySet:
        """Pending or failed: what a re-enqueue sends to the workers."""
        return self._with_entry_status(EmbeddingStatus.PENDING, EmbeddingStatus.FAILED)

    def set_status(self, status: str, error: str = "") -> int:
        """Set the embedding status of these assets' search-alias entries."""
        entries = self.model._meta.get_field("index_entries").related_model._default_manager
        return entries.for_model(self.model).search_alias().filter(object_id__in=self.values("pk")).set_status(status, error)

    def with_entry(self) -> AssetQuerySet:
        """Prefetch each asset's search-alias entry (``asset.embedding_status`` and kin without a query each)."""
        entries = self.model._meta.get_field("index_entries").related_model._default_manager
        return self.prefetch_related(
            # The state, not the vector: a halfvec's 512 values parsed per asset for nothing.
            models.Prefetch("index_entries", queryset=entries.search_alias().defer("vector"), to_attr="prefetched_entries")
        )

    def visible_to(self, user: Any | None) -> AssetQuerySet:
        """The assets ``user`` may see (:func:`hide_flagged`); everything only with the moderation permission."""
        return hide_flagged(self, user, owner_field="uploaded_by")

    def tag_vocabulary(self) -> set[str]:
        """The distinct tags of these assets."""
        return tag_vocabulary(self, "tags")

    def update_search_documents(self) -> int:
        """Recompute the full-text documents (after bulk edits that bypass save())."""
        config = app_settings.FULL_TEXT_CONFIG
        tags = models.Func(models.F("tags"), models.Value(" "), function="array_to_string", output_field=models.TextField())
        return self.update(
            search_document=SearchVector("title", weight="A", config=config)
            + SearchVector(tags, weight="B", config=config)
            + SearchVector("description", weight="C", config=config)
        )


def hide_flagged(queryset: models.QuerySet, user: Any | None, *, owner_field: str | None = None) -> models.QuerySet:
    """``queryset`` without what moderation hides from ``user``; everything with the moderation permission.

    Others never see an object an enabled hide-concept flagged, nor, while
    such a concept exists and ``HIDE_UNMODERATED`` is on, one whose
    search-alias entry is not ``ready`` yet (not embedded, so not scored),
    unless they own it (``owner_field``, a foreign key to the user): a
    pending upload cannot be shown before moderation had its say. Works on
    any registered model: flags and entries refer to objects generically.
    """
    if user is not None and getattr(user, "has_perm", None) and user.has_perm(MODERATE_PERMISSION):
        return queryset
    content_type = _content_type(queryset.model)
    flags = apps.get_model("assetsearch", "ModerationFlag")._default_manager
    hidden = flags.hiding().filter(entry__content_type=content_type)
    visible = queryset.exclude(pk__in=hidden.values("entry__object_id"))
    if app_settings.HIDE_UNMODERATED:
        concepts = apps.get_model("assetsearch", "ModerationConcept")._default_manager
        entries = apps.get_model("assetsearch", "IndexEntry")._default_manager
        ready = entries.filter(
            content_type=content_type, encoder=app_settings.SEARCH_ENCODER, status=EmbeddingStatus.READY,
            object_id=models.OuterRef("pk"),
        )
        # One query: the concept EXISTS is evaluated once (an InitPlan), when the queryset runs.
        moderated = models.Exists(ready) | ~models.Exists(concepts.hiding())
        if owner_field and user is not None and getattr(user, "is_authenticated", False):
            moderated |= models.Q(**{f"{owner_field}_id": user.pk})
        visible = visible.filter(moderated)
    return visible


def with_entry_status(queryset: models.QuerySet) -> models.QuerySet:
    """Annotate ``assetsearch_status``: each object's search-alias entry status (None: no entry)."""
    entries = apps.get_model("assetsearch", "IndexEntry")._default_manager
    status = entries.filter(
        content_type=_content_type(queryset.model), object_id=models.OuterRef("pk"), encoder=app_settings.SEARCH_ENCODER
    ).values("status")[:1]
    return queryset.annotate(assetsearch_status=models.Subquery(status))


def keyword_terms(text: str) -> list[SearchQuery]:
    """One tsquery per distinct word of ``text``, in the text search configuration.

    Each word is stemmed as the documents were; a stop word ("a", "of")
    becomes an empty query that matches nothing. Punctuation is dropped, so a
    query's quotes and minus signs are not operators here.
    """
    words = list(dict.fromkeys(word.lower() for word in re.findall(r"\w+", text)))[:MAX_KEYWORD_TERMS]
    return [SearchQuery(word, search_type="plain", config=app_settings.FULL_TEXT_CONFIG) for word in words]


def rank_keywords(queryset: models.QuerySet, document: str, text: str, *, depth: int) -> list[tuple[Any, float]]:
    """``[(pk, score)]`` of the rows whose full-text ``document`` matches any significant word of ``text``, best first.

    ``document`` names a tsvector column or annotation of ``queryset``. A
    title word inside a sentence ("a picture of a zebra") matches. Each row
    scores the sum, over the query words it matches, of ``ln(1 + M / m)``:
    M rows match any word, m this one, so a rare word outweighs several
    common ones (IDF within the matches) and more words score more; ties go
    to ``ts_rank_cd`` (cover density), then the pk. Only rows scoring at
    least ``KEYWORD_MIN_SHARE`` of the best are kept: rank fusion counts any
    keyword match, and one of the query's common words alone ("circle" for
    "a red circle") must not lift a blue circle above a red one that the
    vectors rank higher.
    """
    terms = keyword_terms(text)
    if not terms:
        return []
    any_term = functools.reduce(operator.or_, terms)
    matching = queryset.filter(**{document: any_term})
    matches = Cast(models.Window(models.Count("pk")), models.FloatField())
    score = sum(
        (
            models.Case(
                models.When(
                    **{document: term},
                    then=Ln(1.0 + matches / Greatest(models.Window(models.Count("pk", filter=models.Q(**{document: term}))), 1)),
                ),
                default=models.Value(0.0),
                output_field=models.FloatField(),
            )
            for term in terms
        ),
        start=models.Value(0.0),
    )
    rows = list(
        matching.annotate(
            keyword_score=score, keyword_rank=SearchRank(models.F(document), any_term, cover_density=True)
        )
        .order_by("-keyword_score", "-keyword_rank", "pk")
        .values_list("pk", "keyword_score")[:depth]
    )
    best = rows[0][1] if rows else 0.0
    return [(pk, float(value)) for pk, value in rows if value >= KEYWORD_MIN_SHARE * best]


def tag_vocabulary(queryset: models.QuerySet, field: str) -> set[str]:
    """The distinct tags of ``queryset`` in ``field``: an ArrayField, or a many-to-many/taggit manager (its ``name``)."""
    from django.contrib.postgres.fields import ArrayField

    if isinstance(queryset.model._meta.get_field(field), ArrayField):
        tag = models.Func(models.F(field), function="unnest", output_field=models.CharField())
        values = queryset.order_by().annotate(tag=tag).values_list("tag", flat=True).distinct()
    else:
        values = queryset.order_by().values_list(f"{field}__name", flat=True).distinct()
    return {t for t in values if t}


class IndexEntryQuerySet(models.QuerySet["IndexEntry"]):
    # Selection -------------------------------------------------------------

    def for_model(self, model: type[models.Model]) -> IndexEntryQuerySet:
        return self.filter(content_type=_content_type(model))

    def for_objects(self, model: type[models.Model], object_ids: Sequence[Any]) -> IndexEntryQuerySet:
        return self.for_model(model).filter(object_id__in=list(object_ids))

    def for_encoder(self, alias: str) -> IndexEntryQuerySet:
        return self.filter(encoder=alias)

    def search_alias(self) -> IndexEntryQuerySet:
        """The entries of ``SEARCH_ENCODER``: the ones search, moderation and the status shown use."""
        return self.for_encoder(app_settings.SEARCH_ENCODER)

    def pending(self) -> IndexEntryQuerySet:
        return self.filter(status=EmbeddingStatus.PENDING)

    def failed(self) -> IndexEntryQuerySet:
        return self.filter(status=EmbeddingStatus.FAILED)

    def ready(self) -> IndexEntryQuerySet:
        return self.filter(status=EmbeddingStatus.READY)

    def unfinished(self) -> IndexEntryQuerySet:
        return self.filter(status__in=[EmbeddingStatus.PENDING, EmbeddingStatus.FAILED])

    def pending_since(self, cutoff: datetime) -> IndexEntryQuerySet:
        """Pending, and unchanged since ``cutoff`` (their message may be lost)."""
        return self.pending().filter(status_changed_at__lte=cutoff)

    def count_and_oldest(self) -> tuple[int, datetime | None]:
        """How many entries, and the earliest status change among them (None when there are none)."""
        row = self.aggregate(count=models.Count("pk"), oldest=models.Min("status_changed_at"))
        return row["count"], row["oldest"]

    def with_vector(self, model_key: str | None = None) -> IndexEntryQuerySet:
        """Entries holding a vector (of ``model_key``, when given)."""
        entries = self.filter(vector__isnull=False)
        return entries.filter(model_key=model_key) if model_key is not None else entries

    def stale(self, model_key: str) -> IndexEntryQuerySet:
        """Entries whose vector is out of date: another model made it, or the image changed since (pending)."""
        with_vector = self.filter(vector__isnull=False)
        return with_vector.filter(~models.Q(model_key=model_key) | models.Q(status=EmbeddingStatus.PENDING))

    def object_ids(self) -> list[int]:
        return list(self.values_list("object_id", flat=True))

    # State -----------------------------------------------------------------

    def set_status(self, status: str, error: str = "") -> int:
        return self.update(status=status, error=error, status_changed_at=timezone.now())

    def set_state(self, **fields: Any) -> int:
        """Set some of status, error, attempts and status_changed_at (a changed status restarts the clock)."""
        if "status" in fields:
            fields.setdefault("status_changed_at", timezone.now())
        return self.update(**fields)

    def mark_pending(self, content_type_id: int, encoder: str, sources: dict[int, str]) -> int:
        """Entries of these objects back to ``pending`` for ``encoder``, created where missing, in one statement.

        ``sources`` maps object ids to the file (name) each was marked for.
        The attempts restart; the old vector stays searchable until the new one is stored.
        """
        if not sources:
            return 0
        table = self.model._meta.db_table
        values = ", ".join(["(%s::bigint, %s)"] * len(sources))
        params: list[Any] = [p for item in sources.items() for p in item]
        sql = f"""
            INSERT INTO {table} (content_type_id, object_id, encoder, model_key, source_key, content_hash,
                                 status, status_changed_at, error, attempts)
            SELECT %s, v.object_id, %s, '', v.source_key, '', %s, now(), '', 0
            FROM (VALUES {values}) AS v(object_id, source_key)
            ON CONFLICT (content_type_id, object_id, encoder) DO UPDATE
            SET source_key = EXCLUDED.source_key, status = EXCLUDED.status,
                status_changed_at = EXCLUDED.status_changed_at, error = '', attempts = 0
        """
        with connection.cursor() as cursor:
            cursor.execute(sql, [content_type_id, encoder, EmbeddingStatus.PENDING, *params])
            return cursor.rowcount

    def store_vectors(self, rows: Sequence[tuple[int, str, np.ndarray, str]], model_key: str) -> int:
        """Store ``(entry id, source key, vector, content hash)`` rows as ready, in one statement.

        A row whose entry was marked for another file meanwhile (the image
        was replaced while the worker embedded the old one) is left alone:
        its own task is on its way.
        """
        if not rows:
            return 0
        table = self.model._meta.db_table
        values = ", ".join(["(%s::bigint, %s, %s::halfvec, %s)"] * len(rows))
        params: list[Any] = []
        for pk, source_key, vector, content_hash_ in rows:
            params += [pk, source_key, _query_vector(vector).to_text(), content_hash_]
        sql = f"""
            UPDATE {table} AS e SET vector = v.vector, content_hash = v.content_hash, model_key = %s,
                status = %s, status_changed_at = now(), error = '', embedded_at = now()
            FROM (VALUES {values}) AS v(id, source_key, vector, content_hash)
            WHERE e.id = v.id AND e.source_key = v.source_key
        """
        with connection.cursor() as cursor:
            cursor.execute(sql, [model_key, EmbeddingStatus.READY, *params])
            return cursor.rowcount

    # Vectors ---------------------------------------------------------------

    def vectors(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], np.ndarray]:
        """``{(content type id, object id): vector}`` of these objects (of this queryset's alias)."""
        if not keys:
            return {}
        condition = models.Q()
        by_type: dict[int, list[int]] = {}
        for content_type_id, object_id in keys:
            by_type.setdefault(content_type_id, []).append(object_id)
        for content_type_id, ids in by_type.items():
            condition |= models.Q(content_type_id=content_type_id, object_id__in=ids)
        rows = self.filter(condition).with_vector().values_list("content_type_id", "object_id", "vector")
        return {(ct, oid): np.asarray(vector, dtype=np.float32) for ct, oid, vector in rows}

    def sample_vectors(self, alias: str, size: int, dimensions: int) -> np.ndarray:
        """About ``size`` of ``alias``'s vectors, drawn at random, as an (n, dimensions) array.

        ``TABLESAMPLE SYSTEM`` reads a random share of the table's pages, so
        a sample of a million rows costs what it costs on a thousand (ORDER
        BY random() would read and sort them all). Only for statistics: rows
        on one page come together.
        """
        table = self.model._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
            estimated_rows = cursor.fetchone()[0]
        # Twice what is needed, as other aliases' rows share the pages; all
        # of a small or never-analysed table (reltuples < 0).
        percent = 100.0 if estimated_rows <= 0 else min(100.0, 200.0 * size / estimated_rows)
        rows = self.raw(
            f'SELECT id, vector FROM "{table}" TABLESAMPLE SYSTEM (%s) WHERE encoder = %s AND vector IS NOT NULL LIMIT %s',
            [percent, alias, size],
        )
        vectors = [np.asarray(row.vector, dtype=np.float32) for row in rows]
        vectors = [v for v in vectors if len(v) == dimensions]
        return np.stack(vectors) if vectors else np.empty((0, dimensions), dtype=np.float32)

    def nearest(self, vector: Sequence[float], alias: str, *, exact: bool = False) -> IndexEntryQuerySet:
        """``alias``'s vectors ordered by cosine distance to ``vector``, annotated ``distance``.

        Orders by ``vector::halfvec(d)`` (d = ``len(vector)``), the expression
        of the alias's partial HNSW index, so the index can serve ``ORDER BY
        ... LIMIT`` once sliced (``[:k]``). ``exact`` orders by an expression
        the index cannot serve (``distance + 0``): an exact scan, which may
        still use the other indexes, e.g. to reach a few filtered rows.
        Run the ranking itself with :meth:`ranking`.
        """
        query = QueryVector(vector)
        distance = CosineDistance(vector_expression(query.dimensions), query)
        if exact:
            distance = distance + models.Value(0.0)
        return (
            self.for_encoder(alias)
            .filter(vector__isnull=False)
            .annotate(distance=distance)
            .order_by("distance", "content_type_id", "object_id")
        )

    def ranking(self, depth: int, *, filtered: bool = False, alias: str | None = None) -> list[tuple[int, int, float]]:
        """``(content type id, object id, distance)`` of the ``depth`` nearest rows of a :meth:`nearest` queryset.

        One statement, one round trip: the HNSW knobs for ``depth`` are set
        inside it (:class:`IndexScanSettings`), so no transaction is opened
        for them, and the query vector is a binary parameter
        (:func:`server_binding_cursor`). ``filtered``: the rows are narrowed
        by filters, so the index walks a longer list. ``alias``: the encoder
        alias of :meth:`nearest`, whose graph's size scales the list
        (:func:`assetsearch.index.get_ef_search`).
        """
        statement = self._ranking_statement(depth, filtered, alias)
        if statement is None:
            return []
        with server_binding_cursor(self.db) as cursor:
            cursor.execute(*statement)
            return [(ct, oid, float(distance)) for ct, oid, distance in cursor.fetchall()]

    def explain_ranking(self, depth: int, *, filtered: bool = False, analyze: bool = False, alias: str | None = None) -> str:
        """The query plan of the statement :meth:`ranking` sends (``EXPLAIN``; ``analyze`` runs it)."""
        statement = self._ranking_statement(depth, filtered, alias)
        if statement is None:
            return ""
        sql, params = statement
        with server_binding_cursor(self.db) as cursor:
            cursor.execute(f"EXPLAIN ({'ANALYZE, ' if analyze else ''}COSTS OFF) {sql}", params)
            return "\n".join(row[0] for row in cursor.fetchall())

    def _ranking_statement(self, depth: int, filtered: bool, alias: str | None) -> tuple[str, tuple[Any, ...]] | None:
        """SQL and parameters of :meth:`ranking` (None: no row can match)."""
        vectors = get_graph_size(alias, self.db) if alias is not None else None
        queryset = self.filter(IndexScanSettings(get_ef_search(depth, filtered=filtered, vectors=vectors)))
        queryset = queryset.values_list("content_type_id", "object_id", "distance")[:depth]
        compiler = queryset.query.get_compiler(self.db)
        setattr(compiler, BINARY_VECTORS, True)
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:
            return None
        return sql, tuple(params)

    def with_concept_score(
        self, prompts: Sequence[np.ndarray], counter_prompts: Sequence[np.ndarray], scale: float, *,
        background: Sequence[float] = (),
    ) -> IndexEntryQuerySet:
        """Annotate ``score``: the softmax mass of ``prompts`` among all prompt vectors and the ``background`` logits.

        ``sum_p exp(s * cos(x, p)) / (sum_p exp(s * cos(x, p)) + sum_c exp(s * cos(x, c)) + sum_b exp(b))``
        at temperature ``scale`` (see :mod:`assetsearch.moderation`).
        """

        def mass(vectors: Sequence[np.ndarray]) -> models.Expression:
            terms = [
                models.Func(models.Value(float(scale)) * _similarity(v), function="exp", output_field=models.FloatField())
                for v in vectors
            ]
            total = terms[0]
            for term in terms[1:]:
                total = total + term
            return total

        positive = mass(prompts)
        rest = mass(counter_prompts)
        if background:  # constants: the same for every row
            rest = rest + models.Value(sum(math.exp(b) for b in background), output_field=models.FloatField())
        scored = self.filter(vector__isnull=False)
        return scored.annotate(score=models.ExpressionWrapper(positive / (positive + rest), output_field=models.FloatField()))

    # Reports ---------------------------------------------------------------

    def report(self, model_key: str, stuck_after: datetime, *, failures: int = 20) -> EmbeddingReport:
        """Counts per state and per model of these entries (one alias), stale ones, recent failures."""
        entries = self.order_by()
        counts = dict(entries.values_list("status").annotate(n=models.Count("pk")).values_list("status", "n"))
        per_model = list(
            entries.with_vector()
            .values("model_key")
            .annotate(vectors=models.Count("pk"), latest=models.Max("embedded_at"))
            .order_by("model_key")
        )
        total = sum(counts.values())
        return EmbeddingReport(
            states=[(value, label, counts.get(value, 0)) for value, label in EmbeddingStatus.choices],
            total=total,
            models=per_model,
            missing=total - entries.with_vector(model_key).count(),
            stale=entries.stale(model_key).count(),
            stuck=entries.pending_since(stuck_after).count(),
            failures=list(entries.failed().order_by("-status_changed_at", "-pk")[:failures]),
            requeue_count=counts.get(EmbeddingStatus.PENDING, 0) + counts.get(EmbeddingStatus.FAILED, 0),
        )

    def report_of(
        self, objects: models.QuerySet, model_key: str, stuck_after: datetime | None = None, *, failures: int = 20,
    ) -> EmbeddingReport:
        """:meth:`report` of these entries (one alias) of ``objects`` (one model's queryset), for a status page.

        ``missing`` also counts the objects without an entry; ``failures`` are
        ``(object, entry)`` pairs of objects in ``objects``; ``stuck_after``
        defaults to ``SWEEP_AFTER_SECONDS`` ago (when the sweep sends them again).
        """
        if stuck_after is None:
            stuck_after = timezone.now() - timedelta(seconds=app_settings.SWEEP_AFTER_SECONDS)
        objects = objects.order_by()
        entries = self.for_model(objects.model).filter(object_id__in=objects.values("pk"))
        report = entries.report(model_key, stuck_after, failures=failures)
        report.missing += objects.exclude(pk__in=entries.values("object_id")).count()
        failed = objects.in_bulk([entry.object_id for entry in report.failures])
        report.failures = [(failed[entry.object_id], entry) for entry in report.failures if entry.object_id in failed]
        return report


class ConceptQuerySet(models.QuerySet["ModerationConcept"]):
    def enabled(self) -> ConceptQuerySet:
        return self.filter(enabled=True)

    def hiding(self) -> ConceptQuerySet:
        """Enabled concepts whose flags hide their objects."""
        return self.enabled().filter(action=ConceptAction.HIDE)

    def with_open_flag_count(self) -> ConceptQuerySet:
        """Annotate ``open_flag_count``: each concept's flags waiting for review."""
        return self.annotate(open_flag_count=models.Count("flags", filter=models.Q(flags__status=FlagStatus.OPEN)))


class FlagQuerySet(models.QuerySet["ModerationFlag"]):
    def hiding(self) -> FlagQuerySet:
        """Flags that hide their object: not dismissed, of an enabled hide-concept."""
        concepts = self.model._meta.get_field("concept").related_model._default_manager
        return self.exclude(status=FlagStatus.DISMISSED).filter(concept__in=concepts.hiding())

    def review(self, status: str, reviewer: Any) -> int:
        return self.update(status=status, reviewer=reviewer, reviewed_at=timezone.now())

    def upsert_scores(self, concept_id: int, threshold: float, scores: IndexEntryQuerySet) -> tuple[int, int]:
        """Flag the entries of ``scores`` (annotated ``score``) at or over ``threshold``, in one statement.

        Existing flags keep their review status (their score is refreshed);
        open flags now under the threshold are removed. Returns (flagged, cleared).
        """
        scores_sql, scores_params = scores.order_by().values("pk", "score").query.sql_with_params()
        table = self.model._meta.db_table
        sql = f"""
            WITH scores (entry_id, score) AS ({scores_sql}), flagged AS (
                INSERT INTO {table} (entry_id, concept_id, score, status, created_at)
                SELECT entry_id, %s, score, %s, now() FROM scores WHERE score >= %s
                ON CONFLICT (entry_id, concept_id) DO UPDATE SET score = EXCLUDED.score
                RETURNING 1
            ), cleared AS (
                DELETE FROM {table} f USING scores s
                WHERE f.entry_id = s.entry_id AND f.concept_id = %s AND f.status = %s AND s.score < %s
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM flagged), (SELECT count(*) FROM cleared)
        """
        params = [*scores_params, concept_id, FlagStatus.OPEN, threshold, concept_id, FlagStatus.OPEN, threshold]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            flagged, cleared = cursor.fetchone()
        return flagged, cleared
