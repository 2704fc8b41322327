"""Moderation: concepts described in words, scored over the stored vectors.

Scoring
-------
A concept has prompts (what it looks like) and counter-prompts (what it is
not; the ``MODERATION_NEUTRAL_PROMPTS`` when it has none). An asset's score
is the softmax probability mass of the concept's prompts among all of them,
at the model's own temperature (its learned logit scale ``s``)::

    score = sum_p exp(s * cos(x, p)) / (sum_p exp(s * cos(x, p)) + sum_c exp(s * cos(x, c)))

Unlike a raw cosine against a magic number, this is in [0, 1], compares the
concept with its look-alikes (so a red square scores low for "a red
triangle" even though the two cosines are close), and is what CLIP's
zero-shot classifier computes; thresholds are then calibrated from reviews
(:func:`calibrate`).

Everything is computed in SQL over the stored vectors (``<=>`` against each
prompt vector), so a new or changed concept re-scores the catalogue without
re-embedding a single image, in id-range batches that report progress.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from .conf import app_settings
from .encoders import get_encoder
from .models import Asset, AssetEmbedding, FlagStatus, ModerationConcept, ModerationFlag
from .search import EmptyQuery, SearchError, embed_texts

MODERATE_PERMISSION = "assetsearch.moderate_asset"


def _vector_literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.6f}" for x in vector) + "]"


def _score_sql(prompts: Sequence[str], counter_prompts: Sequence[str]) -> tuple[str, list[object]]:
    """SQL for the concept probability of ``e.vector``, and its parameters."""
    counter = list(counter_prompts) or list(app_settings.MODERATION_NEUTRAL_PROMPTS)
    if not prompts:
        raise EmptyQuery("A moderation concept needs at least one prompt.")
    encoder = get_encoder()
    vectors = [t.vector for t in embed_texts([*prompts, *counter], encoder)]
    scale = float(encoder.logit_scale)
    term = "exp(%s * (1 - (e.vector <=> %s::halfvec)))"
    positive = " + ".join([term] * len(prompts))
    negative = " + ".join([term] * len(counter))
    params: list[object] = []
    for vector in vectors[: len(prompts)]:
        params += [scale, _vector_literal(vector)]
    positive_params = list(params)
    params = []
    for vector in vectors[len(prompts) :]:
        params += [scale, _vector_literal(vector)]
    sql = f"(({positive}) / (({positive}) + ({negative})))"
    return sql, positive_params + positive_params + params


@dataclass
class FlagCounts:
    flagged: int
    cleared: int


def flag_assets(concept: ModerationConcept, *, asset_ids: Sequence[int] | None = None, id_range: tuple[int, int] | None = None) -> FlagCounts:
    """Score assets for ``concept`` in one statement; flag those at or over its threshold.

    Existing flags keep their review status (their score is refreshed); open
    flags now under the threshold are removed.
    """
    score, params = _score_sql(concept.prompts, concept.counter_prompts)
    where, where_params = ["e.model_key = %s"], [get_encoder().key]
    if asset_ids is not None:
        where.append("e.asset_id = ANY(%s)")
        where_params.append(list(asset_ids))
    if id_range is not None:
        where.append("e.asset_id BETWEEN %s AND %s")
        where_params += list(id_range)
    table = ModerationFlag._meta.db_table
    sql = f"""
        WITH scores AS (
            SELECT e.asset_id, {score} AS score
            FROM {AssetEmbedding._meta.db_table} e WHERE {" AND ".join(where)}
        ), flagged AS (
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
    all_params = params + where_params + [concept.pk, FlagStatus.OPEN, concept.threshold, concept.pk, FlagStatus.OPEN, concept.threshold]
    with connection.cursor() as cursor:
        cursor.execute(sql, all_params)
        flagged, cleared = cursor.fetchone()
    return FlagCounts(flagged, cleared)


def score_new_assets(asset_ids: Sequence[int]) -> int:
    """Score freshly embedded assets against every enabled concept; returns flags made or refreshed."""
    total = 0
    for concept in ModerationConcept.objects.filter(enabled=True):
        total += flag_assets(concept, asset_ids=asset_ids).flagged
    return total


def rescore_concept(concept_id: int, *, batch_size: int = 5000, progress: Callable[[int, int], None] | None = None) -> FlagCounts:
    """Re-score the whole catalogue for one concept, in id-range batches, recording progress."""
    concept = ModerationConcept.objects.get(pk=concept_id)
    embeddings = AssetEmbedding.objects.for_model(get_encoder().key)
    ids = list(embeddings.order_by("asset_id").values_list("asset_id", flat=True))
    ModerationConcept.objects.filter(pk=concept_id).update(rescore_total=len(ids), rescore_done=0)
    counts = FlagCounts(0, 0)
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        with transaction.atomic():
            batch = flag_assets(concept, id_range=(chunk[0], chunk[-1]))
            done = start + len(chunk)
            ModerationConcept.objects.filter(pk=concept_id).update(rescore_done=done)
        counts.flagged += batch.flagged
        counts.cleared += batch.cleared
        if progress:
            progress(done, len(ids))
    ModerationConcept.objects.filter(pk=concept_id).update(rescored_at=timezone.now())
    return counts


def request_rescore(concept: ModerationConcept) -> None:
    """Re-score the catalogue for ``concept`` in the background, after commit."""
    from .tasks import rescore_concept_task

    pk = concept.pk
    transaction.on_commit(lambda: _send_rescore(rescore_concept_task, pk))


def _send_rescore(task, pk: int) -> None:
    try:
        task.apply_async(args=[pk], retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2})
    except Exception:  # broker down: `manage.py assetsearch_moderation rescore` does it by hand
        import logging

        logging.getLogger(__name__).warning("Could not enqueue re-scoring of concept %s.", pk, exc_info=True)


@dataclass
class ModerationHit:
    asset: Asset
    score: float
    rank: int


def moderation_query(
    text: str | Sequence[str], *, counter_prompts: Sequence[str] = (), limit: int = 20, offset: int = 0,
    visible: QuerySet[Asset] | None = None,
) -> list[ModerationHit]:
    """Ad-hoc: assets ranked by the concept score of free text ("violent scene")."""
    prompts = [text] if isinstance(text, str) else list(text)
    prompts = [p for p in prompts if p and p.strip()]
    if not prompts:
        raise EmptyQuery("The moderation query is empty.")
    if not 1 <= limit <= app_settings.MAX_PAGE_SIZE or offset < 0:
        raise SearchError(f"limit must be between 1 and {app_settings.MAX_PAGE_SIZE}, offset >= 0.")
    score, params = _score_sql(prompts, counter_prompts)
    queryset = AssetEmbedding.objects.for_model(get_encoder().key)
    if visible is not None:
        queryset = queryset.filter(asset__in=visible.values("pk"))
    inner_sql, inner_params = queryset.values("asset_id").query.sql_with_params()
    sql = f"""
        SELECT e.asset_id, {score} AS score FROM {AssetEmbedding._meta.db_table} e
        WHERE e.model_key = %s AND e.asset_id IN ({inner_sql})
        ORDER BY score DESC, e.asset_id LIMIT %s OFFSET %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, get_encoder().key, *inner_params, limit, offset])
        rows = cursor.fetchall()
    assets = Asset.objects.in_bulk([pk for pk, _ in rows])
    return [ModerationHit(assets[pk], float(s), offset + i + 1) for i, (pk, s) in enumerate(rows)]


def visible_assets(user: object | None) -> QuerySet[Asset]:
    """The assets ``user`` may see: hidden ones only with the moderation permission."""
    assets = Asset.objects.all()
    if user is not None and getattr(user, "has_perm", None) and user.has_perm(MODERATE_PERMISSION):
        return assets
    return assets.exclude(pk__in=ModerationFlag.objects.hiding().values("asset_id"))


@dataclass
class CalibrationRow:
    threshold: float
    precision: float
    recall: float
    flagged: int


def calibrate(concept: ModerationConcept, *, target_precision: float = 0.9) -> tuple[list[CalibrationRow], float | None]:
    """Precision/recall of reviewed flags at each candidate threshold, and the
    lowest threshold reaching ``target_precision`` (None if none does).

    Confirmed flags are positives, dismissed ones negatives. Only reviewed
    flags count, so recall is relative to the confirmed flags: to learn
    whether a lower threshold finds more, lower it for a while and review.
    """
    reviewed = list(
        concept.flags.filter(status__in=[FlagStatus.CONFIRMED, FlagStatus.DISMISSED]).values_list("score", "status")
    )
    positives = sum(1 for _, status in reviewed if status == FlagStatus.CONFIRMED)
    rows = []
    # Rounded down: a threshold rounded up past the highest score would flag nothing.
    for threshold in sorted({math.floor(score * 1000) / 1000 for score, _ in reviewed}):
        above = [status for score, status in reviewed if score >= threshold]
        true = sum(1 for status in above if status == FlagStatus.CONFIRMED)
        rows.append(CalibrationRow(threshold, true / len(above), true / positives if positives else 0.0, len(above)))
    suggestion = next((row.threshold for row in rows if row.precision >= target_precision), None)
    return rows, suggestion
