"""Image -> text: suggest tags for an indexed object, zero-shot, from a vocabulary.

The vocabulary is the tags (its index's ``tags_field``) of the objects of
the model that the user can see, plus ``TAG_LABELS``: a tag only hidden
objects carry is never suggested to someone who may not see them (it would
tell what moderation hid). Each label is
embedded as ``TAG_PROMPT.format(label)`` (cached like any query text) and
compared with the asset's vector. ``score`` is the cosine similarity;
``probability`` is a softmax over the whole vocabulary at the model's own
temperature (its logit scale), i.e. how this label compares with the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from django.db.models import Model, QuerySet

from .conf import app_settings
from .encoders import embed_texts, get_encoder

from .models import Asset
from .registry import get_index
from .search import object_vector


@dataclass
class TagSuggestion:
    tag: str
    score: float
    probability: float


def tag_vocabulary(model: type[Model] = Asset, objects: QuerySet | None = None) -> list[str]:
    """The distinct tags of ``objects`` (default: all of ``model``) and the configured labels, sorted."""
    index = get_index(objects.model if objects is not None else model)
    return sorted(index.tag_vocabulary(objects) | {label for label in app_settings.TAG_LABELS if label})


def existing_tags(obj: Model) -> set[str]:
    """The tags ``obj`` already has (none when its index declares no tags field)."""
    index = get_index(obj)
    if not index.tags_field:
        return set()
    return index.tag_vocabulary(index.get_queryset().filter(pk=obj.pk))


def suggest_tags(
    asset_id: int | None = None, *, limit: int = 10, include_existing: bool = False, obj: Model | None = None,
    visible: QuerySet | None = None,
) -> list[TagSuggestion]:
    """The labels that best describe the image of an asset (or of ``obj``, any registered object), best first.

    ``visible`` are the objects whose tags make the vocabulary: pass the
    ones the user may see (``Asset.objects.visible_to(user)``, an index's
    ``visible_to(user, ...)``); None draws on every object of the model.
    """
    encoder = get_encoder()
    if obj is None:
        obj = Asset.objects.get(pk=asset_id)
    vector = object_vector(obj, encoder)
    vocabulary = tag_vocabulary(type(obj), visible)
    if not vocabulary:
        return []
    prompts = [app_settings.TAG_PROMPT.format(label) for label in vocabulary]
    label_vectors = np.stack([t.vector for t in embed_texts(prompts, encoder)])
    scores = label_vectors @ vector
    logits = encoder.logit_scale * (scores - scores.max())
    probabilities = np.exp(logits) / np.exp(logits).sum()
    existing = set() if include_existing else existing_tags(obj)
    order = np.argsort(-scores)
    suggestions = [
        TagSuggestion(vocabulary[i], float(scores[i]), float(probabilities[i])) for i in order if vocabulary[i] not in existing
    ]
    return suggestions[:limit]
