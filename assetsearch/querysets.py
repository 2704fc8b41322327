"""Every query of assetsearch: the QuerySets of its models, and the session settings of index scans.

Nothing outside this module (migrations and system checks aside) runs SQL
of its own: views, tasks and the core call these methods. pgvector
distances are ORM expressions (``CosineDistance``) whose vectors travel as
parameters, never as string-built literals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from django.contrib.postgres.search import SearchVector
from django.db import connection, connections, models
from django.utils import timezone
from pgvector import HalfVector
from pgvector.django import CosineDistance

from .conf import app_settings
from .constants import MODERATE_PERMISSION, VECTOR_DIMENSIONS, ConceptAction, EmbeddingStatus, FlagStatus
from .index import get_ef_search

# The most candidates pgvector's HNSW scan keeps per query (hnsw.ef_search's upper bound).


def pgvector_version(using: str = "default") -> str | None:
    """The version of the ``vector`` extension in the database; None when it is not created."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    return row[0] if row else None


def configure_index_scan(depth: int, filtered: bool = False) -> None:
    """Set the HNSW knobs for the current transaction (``SET LOCAL``), for ``depth`` results.

    Iterative scans in strict order keep walking the graph until ``depth``
    rows pass the filters, so a filter cannot shorten a page; ``filtered``
    scans keep a longer candidate list (:func:`assetsearch.index.get_ef_search`).
    """
    ef_search = get_ef_search(depth, filtered=filtered)
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(ef_search)])
        cursor.execute("SELECT set_config('hnsw.iterative_scan', 'strict_order', true)")


@dataclass
class EmbeddingReport:
    """Where a set of assets stands in the pipeline (the admin's status page)."""

    states: list[tuple[str, str, int]]  # (value, label, count) per EmbeddingStatus
    total: int
    models: list[dict[str, Any]]  # model_key, vectors, latest
    missing: int  # no vector from the current model
    stale: int  # a vector made from older bytes
    stuck: int  # pending for longer than the sweep waits
    failures: list[Any]
    requeue_count: int  # pending or failed: what a re-enqueue sends


class AssetQuerySet(models.QuerySet["Asset"]):
    def pending(self) -> AssetQuerySet:
        return self.filter(embedding_status=EmbeddingStatus.PENDING)

    def failed(self) -> AssetQuerySet:
        return self.filter(embedding_status=EmbeddingStatus.FAILED)

    def ready(self) -> AssetQuerySet:
        return self.filter(embedding_status=EmbeddingStatus.READY)

    def unfinished(self) -> AssetQuerySet:
        """Pending or failed: what a re-enqueue sends to the workers."""
        return self.filter(embedding_status__in=[EmbeddingStatus.PENDING, EmbeddingStatus.FAILED])

    def pending_since(self, cutoff: datetime) -> AssetQuerySet:
        """Pending, and unchanged since ``cutoff`` (their message may be lost)."""
        return self.pending().filter(embedding_status_changed_at__lte=cutoff)

    def visible_to(self, user: Any | None) -> AssetQuerySet:
        """The assets ``user`` may see; everything only with the moderation permission.

        Others never see an asset an enabled hide-concept flagged, nor, while
        such a concept exists and ``HIDE_UNMODERATED`` is on, an asset that is
        not ``ready`` yet (not embedded, so not scored), unless they uploaded it:
        a pending upload cannot be shown before moderation had its say.
        """
        if user is not None and getattr(user, "has_perm", None) and user.has_perm(MODERATE_PERMISSION):
            return self
        flags = self.model._meta.get_field("flags").related_model._default_manager
        visible = self.exclude(pk__in=flags.hiding().values("asset_id"))
        if app_settings.HIDE_UNMODERATED:
            concepts = flags.model._meta.get_field("concept").related_model._default_manager
            # One query: the EXISTS is evaluated once (an InitPlan), when the queryset runs.
            moderated = models.Q(embedding_status=EmbeddingStatus.READY) | ~models.Exists(concepts.hiding())
            if user is not None and getattr(user, "is_authenticated", False):
                moderated |= models.Q(uploaded_by_id=user.pk)
            visible = visible.filter(moderated)
        return visible

    def missing_embedding(self, model_key: str) -> AssetQuerySet:
        """Assets with no vector from ``model_key`` (new, failed or stale)."""
        return self.exclude(embeddings__model_key=model_key)

    def stale_embedding(self, model_key: str) -> AssetQuerySet:
        """Assets whose file changed since their ``model_key`` vector was made."""
        return self.filter(embeddings__model_key=model_key).exclude(
            embeddings__content_hash=models.F("content_hash")
        )

    def tag_vocabulary(self) -> set[str]:
        """The distinct tags of these assets."""
        tag = models.Func(models.F("tags"), function="unnest", output_field=models.CharField())
        return {t for t in self.order_by().annotate(tag=tag).values_list("tag", flat=True).distinct() if t}

    def update_search_documents(self) -> int:
        """Recompute the full-text documents (after bulk edits that bypass save())."""
        config = app_settings.FULL_TEXT_CONFIG
        tags = models.Func(models.F("tags"), models.Value(" "), function="array_to_string", output_field=models.TextField())
        return self.update(
            search_document=SearchVector("title", weight="A", config=config)
            + SearchVector(tags, weight="B", config=config)
            + SearchVector("description", weight="C", config=config)
        )

    def set_status(self, status: str, error: str = "") -> int:
        return self.update(embedding_status=status, embedding_error=error, embedding_status_changed_at=timezone.now())

    def embedding_report(self, model_key: str, stuck_after: datetime, *, failures: int = 20) -> EmbeddingReport:
        """Counts per state and per model, what the current model lacks, recent failures."""
        assets = self.order_by()
        counts = dict(assets.values_list("embedding_status").annotate(n=models.Count("pk")).values_list("embedding_status", "n"))
        embeddings = self.model._meta.get_field("embeddings").related_model._default_manager
        per_model = list(
            embeddings.filter(asset__in=assets.values("pk"))
            .values("model_key")
            .annotate(vectors=models.Count("pk"), latest=models.Max("created_at"))
            .order_by("model_key")
        )
        return EmbeddingReport(
            states=[(value, label, counts.get(value, 0)) for value, label in EmbeddingStatus.choices],
            total=sum(counts.values()),
            models=per_model,
            missing=assets.missing_embedding(model_key).count(),
            stale=assets.stale_embedding(model_key).count(),
            stuck=assets.pending_since(stuck_after).count(),
            failures=list(assets.failed().order_by("-embedding_status_changed_at", "-pk")[:failures]),
            requeue_count=counts.get(EmbeddingStatus.PENDING, 0) + counts.get(EmbeddingStatus.FAILED, 0),
        )


def _similarity(vector: np.ndarray) -> models.Expression:
    """Cosine similarity of the stored ``vector`` column to ``vector``, as an expression."""
    return models.Value(1.0) - CosineDistance("vector", HalfVector(np.asarray(vector, dtype=np.float32)))


class EmbeddingQuerySet(models.QuerySet["AssetEmbedding"]):
    def for_model(self, model_key: str) -> EmbeddingQuerySet:
        return self.filter(model_key=model_key)

    def vectors(self, asset_ids: Sequence[int]) -> dict[int, np.ndarray]:
        """``{asset_id: vector}`` of these assets (of this queryset's model)."""
        rows = self.filter(asset_id__in=list(asset_ids)).values_list("asset_id", "vector")
        return {asset_id: np.asarray(vector, dtype=np.float32) for asset_id, vector in rows}

    def sample_vectors(self, model_key: str, size: int) -> np.ndarray:
        """About ``size`` of ``model_key``'s vectors, drawn at random, as an (n, d) array.

        ``TABLESAMPLE SYSTEM`` reads a random share of the table's pages, so
        a sample of a million rows costs what it costs on a thousand (ORDER
        BY random() would read and sort them all). Only for statistics: rows
        on one page come together.
        """
        table = self.model._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
            estimated_rows = cursor.fetchone()[0]
        # Twice what is needed, as other models' rows share the pages; all
        # of a small or never-analysed table (reltuples < 0).
        percent = 100.0 if estimated_rows <= 0 else min(100.0, 200.0 * size / estimated_rows)
        rows = self.raw(
            f'SELECT id, vector FROM "{table}" TABLESAMPLE SYSTEM (%s) WHERE model_key = %s LIMIT %s',
            [percent, model_key, size],
        )
        vectors = [np.asarray(row.vector, dtype=np.float32) for row in rows]
        return np.stack(vectors) if vectors else np.empty((0, VECTOR_DIMENSIONS), dtype=np.float32)

    def nearest(self, vector: Sequence[float], model_key: str, *, exact: bool = False) -> EmbeddingQuerySet:
        """This model's vectors ordered by cosine distance to ``vector``, annotated ``distance``.

        Slice it (``[:k]``) so the HNSW index can serve the ORDER BY ... LIMIT.
        ``exact`` orders by an expression the index cannot serve (``distance
        + 0``): an exact scan, which may still use the other indexes, e.g. to
        reach a few filtered rows.
        """
        query = HalfVector(np.asarray(vector, dtype=np.float32))
        distance = CosineDistance("vector", query)
        if exact:
            distance = distance + models.Value(0.0)
        return self.for_model(model_key).annotate(distance=distance).order_by("distance", "asset_id")

    def with_concept_score(
        self, prompts: Sequence[np.ndarray], counter_prompts: Sequence[np.ndarray], scale: float
    ) -> EmbeddingQuerySet:
        """Annotate ``score``: the softmax mass of ``prompts`` among all prompt vectors.

        ``sum_p exp(s * cos(x, p)) / (sum_p exp(s * cos(x, p)) + sum_c exp(s * cos(x, c)))``
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
        return self.annotate(score=models.ExpressionWrapper(positive / (positive + mass(counter_prompts)), output_field=models.FloatField()))


class ConceptQuerySet(models.QuerySet["ModerationConcept"]):
    def enabled(self) -> ConceptQuerySet:
        return self.filter(enabled=True)

    def hiding(self) -> ConceptQuerySet:
        """Enabled concepts whose flags hide their assets."""
        return self.enabled().filter(action=ConceptAction.HIDE)


class FlagQuerySet(models.QuerySet["ModerationFlag"]):
    def hiding(self) -> FlagQuerySet:
        """Flags that hide their asset: not dismissed, of an enabled hide-concept."""
        concepts = self.model._meta.get_field("concept").related_model._default_manager
        return self.exclude(status=FlagStatus.DISMISSED).filter(concept__in=concepts.hiding())

    def review(self, status: str, reviewer: Any) -> int:
        return self.update(status=status, reviewer=reviewer, reviewed_at=timezone.now())

    def upsert_scores(self, concept_id: int, threshold: float, scores: EmbeddingQuerySet) -> tuple[int, int]:
        """Flag the assets of ``scores`` (annotated ``score``) at or over ``threshold``, in one statement.

        Existing flags keep their review status (their score is refreshed);
        open flags now under the threshold are removed. Returns (flagged, cleared).
        """
        scores_sql, scores_params = scores.order_by().values("asset_id", "score").query.sql_with_params()
        table = self.model._meta.db_table
        sql = f"""
            WITH scores AS ({scores_sql}), flagged AS (
                INSERT INTO {table} (asset_id, concept_id, score, status, created_at)
                SELECT asset_id, %s, score, %s, now() FROM scores WHERE score >= %s
                ON CONFLICT (asset_id, concept_id) DO UPDATE SET score = EXCLUDED.score
                RETURNING 1
            ), cleared AS (
                DELETE FROM {table} f USING scores s
                WHERE f.asset_id = s.asset_id AND f.concept_id = %s AND f.status = %s AND s.score < %s
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM flagged), (SELECT count(*) FROM cleared)
        """
        params = [*scores_params, concept_id, FlagStatus.OPEN, threshold, concept_id, FlagStatus.OPEN, threshold]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            flagged, cleared = cursor.fetchone()
        return flagged, cleared
