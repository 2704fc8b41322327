"""Moderation: concepts described in words, scored over the stored vectors.

Scoring
-------
A concept has prompts (what it looks like) and counter-prompts (what it is
not). When it has none, :func:`default_counter_prompts` stands in: the
``MODERATION_LOOKALIKES`` labels of the encoder nearest its prompts (its
look-alikes, :mod:`assetsearch.lookalikes`), or the
``MODERATION_NEUTRAL_PROMPTS`` where the encoder declares no labels. An asset's score
is the softmax probability mass of the concept's prompts among all of them,
at the model's own temperature (its learned logit scale ``s``)::

    score = sum_p exp(s * cos(x, p)) / (sum_p exp(s * cos(x, p)) + sum_c exp(s * cos(x, c)) + sum_p exp(s * b_p))

Unlike a raw cosine against a magic number, this is in [0, 1], compares the
concept with its look-alikes (so a red square scores low for "a red
triangle" even though the two cosines are close), and is what CLIP's
zero-shot classifier computes; thresholds are then calibrated from reviews
(:func:`calibrate`).

``b_p`` is "none of these", measured against the catalogue: its typical
similarity to prompt ``p`` plus ``MODERATION_BACKGROUND_SPREADS`` (1)
standard deviations of it (:func:`assetsearch.catalogue.background_logits`).
Without it a softmax over a few prompts is closed-world: an asset that
matches none of them well still gives nearly all its mass to the least bad
one (a green triangle scores 0.99 for "a green star" against "a green
circle", "a blue star" and "a red star", as high as the green star). With
it an asset must also stand out from the catalogue. Catalogues under
``CATALOGUE_MIN_VECTORS`` vectors have no background term.

Everything is computed in SQL over the stored vectors (``<=>`` against each
prompt vector, :meth:`EmbeddingQuerySet.with_concept_score`), so a new or
changed concept re-scores the catalogue without re-embedding a single image,
in id-range batches that report progress.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from .catalogue import background_logits
from .conf import app_settings
from .encoders import BaseEncoder, embed_texts, get_encoder
from .exceptions import EmptyQuery
from .lookalikes import lookalike_labels
from .models import FlagStatus, IndexEntry, ModerationConcept, ModerationFlag
from .querysets import IndexEntryQuerySet
from .search import Query, Target, catalogue_stats, check_page, get_targets, load_objects


def default_counter_prompts(prompts: Sequence[str], encoder: BaseEncoder | None = None) -> list[str]:
    """What a concept with these prompts and no counter-prompts is weighed against.

    The ``MODERATION_LOOKALIKES`` labels of the encoder (its ``LABELS``)
    nearest the prompts, narrower cases of a prompt skipped; the
    ``MODERATION_NEUTRAL_PROMPTS`` where there are none.
    """
    encoder = encoder or get_encoder()
    limit = app_settings.MODERATION_LOOKALIKES or 0
    if encoder.labels and limit > 0 and prompts:
        vectors = np.stack([t.vector for t in embed_texts([*prompts, *encoder.labels], encoder)])
        lookalikes = lookalike_labels(prompts, vectors[: len(prompts)], encoder.labels, vectors[len(prompts) :], limit)
        if lookalikes:
            return lookalikes
    return list(app_settings.MODERATION_NEUTRAL_PROMPTS)


def scored_embeddings(prompts: Sequence[str], counter_prompts: Sequence[str]) -> IndexEntryQuerySet:
    """The search alias's entries (every registered model) with a vector, annotated ``score``: their concept probability."""
    if not prompts:
        raise EmptyQuery("A moderation concept needs at least one prompt.")
    encoder = get_encoder()
    counter = list(counter_prompts) or default_counter_prompts(prompts, encoder)
    vectors = [t.vector for t in embed_texts([*prompts, *counter], encoder)]
    background = background_logits(
        vectors[: len(prompts)], catalogue_stats(encoder), encoder.logit_scale, app_settings.MODERATION_BACKGROUND_SPREADS
    )
    return IndexEntry.objects.for_encoder(encoder.alias).with_concept_score(
        vectors[: len(prompts)], vectors[len(prompts) :], encoder.logit_scale, background=background
    )


@dataclass
class FlagCounts:
    flagged: int
    cleared: int


def flag_entries(concept: ModerationConcept, *, entry_ids: Sequence[int] | None = None) -> FlagCounts:
    """Score entries for ``concept`` in one statement; flag those at or over its threshold.

    Existing flags keep their review status (their score is refreshed); open
    flags now under the threshold are removed.
    """
    scores = scored_embeddings(concept.prompts, concept.counter_prompts)
    if entry_ids is not None:
        scores = scores.filter(pk__in=list(entry_ids))
    return FlagCounts(*ModerationFlag.objects.upsert_scores(concept.pk, concept.threshold, scores))


def flag_assets(concept: ModerationConcept, *, asset_ids: Sequence[int] | None = None) -> FlagCounts:
    """Score every embedded object (or only these assets) for ``concept``; :func:`flag_entries` by object."""
    entry_ids = None
    if asset_ids is not None:
        from .models import Asset

        entry_ids = list(IndexEntry.objects.for_objects(Asset, asset_ids).values_list("pk", flat=True))
    return flag_entries(concept, entry_ids=entry_ids)


def score_new_entries(entry_ids: Sequence[int]) -> int:
    """Score freshly embedded entries against every enabled concept; returns flags made or refreshed."""
    total = 0
    for concept in ModerationConcept.objects.enabled():
        total += flag_entries(concept, entry_ids=entry_ids).flagged
    return total


@dataclass
class Scoring:
    concepts: int  # enabled concepts
    scored: list[int]  # the objects that have a vector of the search alias
    flags: int  # made or refreshed


def score_objects(model: Any, object_ids: Sequence[int]) -> Scoring:
    """Score existing objects of ``model`` against every enabled concept (nothing when none is enabled)."""
    concepts = ModerationConcept.objects.enabled().count()
    if not concepts:
        return Scoring(0, [], 0)
    entries = IndexEntry.objects.for_objects(model, object_ids).search_alias().with_vector()
    rows = list(entries.values_list("pk", "object_id"))
    return Scoring(concepts, [oid for _, oid in rows], score_new_entries([pk for pk, _ in rows]))


def score_assets(asset_ids: Sequence[int]) -> Scoring:
    """Score existing assets against every enabled concept (nothing when none is enabled)."""
    from .models import Asset

    return score_objects(Asset, asset_ids)


def rescore_concept(concept_id: int, *, batch_size: int = 5000, progress: Callable[[int, int], None] | None = None) -> FlagCounts:
    """Re-score the whole catalogue (every registered model) for one concept, in id-range batches, recording progress."""
    concept = ModerationConcept.objects.get(pk=concept_id)
    embeddings = IndexEntry.objects.search_alias().with_vector()
    ids = list(embeddings.order_by("pk").values_list("pk", flat=True))
    ModerationConcept.objects.filter(pk=concept_id).update(rescore_total=len(ids), rescore_done=0)
    counts = FlagCounts(0, 0)
    # The prompts are embedded and the catalogue statistics read once, so every batch is scored alike.
    scores = scored_embeddings(concept.prompts, concept.counter_prompts)
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        with transaction.atomic():
            batch = FlagCounts(*ModerationFlag.objects.upsert_scores(
                concept.pk, concept.threshold, scores.filter(pk__gte=chunk[0], pk__lte=chunk[-1])
            ))
            done = start + len(chunk)
            ModerationConcept.objects.filter(pk=concept_id).update(rescore_done=done)
        counts.flagged += batch.flagged
        counts.cleared += batch.cleared
        if progress:
            progress(done, len(ids))
    ModerationConcept.objects.filter(pk=concept_id).update(rescored_at=timezone.now())
    return counts


@dataclass
class ModerationHit:
    object: Model
    score: float
    rank: int

    @property
    def asset(self) -> Model:
        """The object (the name of earlier releases)."""
        return self.object


def moderation_query(
    text: str | Sequence[str], *, counter_prompts: Sequence[str] = (), limit: int = 20, offset: int = 0,
    visible: QuerySet | None = None, models: Sequence[Any] | None = None, user: Any = None,
) -> list[ModerationHit]:
    """Ad-hoc: objects ranked by the concept score of free text ("violent scene").

    ``models``, ``user`` and ``visible`` choose the objects as in :class:`~assetsearch.search.Query`.
    """
    prompts = [text] if isinstance(text, str) else list(text)
    prompts = [p for p in prompts if p and p.strip()]
    if not prompts:
        raise EmptyQuery("The moderation query is empty.")
    check_page(limit, offset)
    targets: list[Target] = get_targets(Query(text="-", models=models, user=user, visible=visible).clean())
    if not targets:
        return []
    condition = Q()
    for target in targets:
        condition |= target.entry_condition()
    scores = scored_embeddings(prompts, counter_prompts).filter(condition)
    rows = list(
        scores.order_by("-score", "content_type_id", "object_id").values_list("content_type_id", "object_id", "score")[offset : offset + limit]
    )
    objects = load_objects([(ct, oid) for ct, oid, _ in rows], targets)
    return [
        ModerationHit(objects[ct, oid], float(s), offset + i + 1) for i, (ct, oid, s) in enumerate(rows) if (ct, oid) in objects
    ]


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
