"""Image -> text: suggest tags for an asset, zero-shot, from a vocabulary.

The vocabulary is the tags of the assets the user can see plus ``TAG_LABELS``:
a tag only hidden assets carry is never suggested to someone who may not
see them (it would tell what moderation hid). Each label is
embedded as ``TAG_PROMPT.format(label)`` (cached like any query text) and
compared with the asset's vector. ``score`` is the cosine similarity;
``probability`` is a softmax over the whole vocabulary at the model's own
temperature (its logit scale), i.e. how this label compares with the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from django.db.models import QuerySet

from .conf import app_settings
from .encoders import embed_texts, get_encoder
from .models import Asset
from .search import asset_vector


@dataclass
class TagSuggestion:
    tag: str
    score: float
    probability: float


def tag_vocabulary(visible: QuerySet[Asset] | None = None) -> list[str]:
    """The distinct tags of ``visible`` (default: every asset) and the configured labels, sorted."""
    assets = Asset.objects.all() if visible is None else visible
    return sorted(assets.tag_vocabulary() | {label for label in app_settings.TAG_LABELS if label})


def suggest_tags(
    asset_id: int, *, limit: int = 10, include_existing: bool = False, visible: QuerySet[Asset] | None = None
) -> list[TagSuggestion]:
    """The labels that best describe the asset's image, best first, from the tags of ``visible``.

    Pass ``Asset.objects.visible_to(user)`` when a user asks; None draws on every asset.
    """
    encoder = get_encoder()
    vector = asset_vector(asset_id, encoder)
    vocabulary = tag_vocabulary(visible)
    if not vocabulary:
        return []
    prompts = [app_settings.TAG_PROMPT.format(label) for label in vocabulary]
    label_vectors = np.stack([t.vector for t in embed_texts(prompts, encoder)])
    scores = label_vectors @ vector
    logits = encoder.logit_scale * (scores - scores.max())
    probabilities = np.exp(logits) / np.exp(logits).sum()
    existing = set() if include_existing else set(Asset.objects.values_list("tags", flat=True).get(pk=asset_id))
    order = np.argsort(-scores)
    suggestions = [
        TagSuggestion(vocabulary[i], float(scores[i]), float(probabilities[i])) for i in order if vocabulary[i] not in existing
    ]
    return suggestions[:limit]
