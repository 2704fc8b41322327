"""Look-alikes: what a moderation concept without counter-prompts is weighed against.

A concept scored against neutral prompts ("a photo") flags whatever is like
it in part: a red square is more like "a red triangle" than like "a photo".
On the bundled model even the ranking by similarity to the prompt alone puts
only half of the right assets above the rest (R-precision 0.50 for colour +
shape concepts on 1,000 independent images), so no threshold and no
calibration against the catalogue can separate them; what separates them is
a competitor that is like the concept in all but one respect. Those are the
look-alikes a reviewer writes as counter-prompts, and an encoder whose model
declares the phrases it tells apart (its ``LABELS``, the bundled model's
every colour and shape) supplies them: the labels nearest the concept's
prompts.

A label that holds every word of a prompt is a narrower case of it ("a blue
star" of "blue"), not a look-alike: weighed against it, the concept would
lose its own assets. Such labels are skipped, the prompt itself among them.
The words are compared after dropping articles, so the rule reads the way a
person phrases a label; a label vocabulary whose narrower cases share no word
with the broader term (breeds of "a dog") needs counter-prompts written out.

This module is the arithmetic alone (no database, no settings), so the demo
model's evaluation computes exactly what the product does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

# Words that say nothing about what a phrase depicts.
FUNCTION_WORDS = frozenset({"a", "an", "the", "of"})


def content_words(phrase: str) -> frozenset[str]:
    """The lower-cased words of ``phrase``, articles dropped."""
    return frozenset(re.findall(r"\w+", phrase.lower())) - FUNCTION_WORDS


def narrower(label: str, prompt: str) -> bool:
    """Whether ``label`` holds every word of ``prompt``: the same thing or a narrower case of it."""
    return content_words(prompt) <= content_words(label)


def lookalike_labels(
    prompts: Sequence[str], prompt_vectors: np.ndarray, labels: Sequence[str], label_vectors: np.ndarray, limit: int,
) -> list[str]:
    """The ``limit`` labels most like any of ``prompts`` (by cosine), narrower cases of a prompt skipped; nearest first."""
    if not len(labels) or limit <= 0:
        return []
    likeness = (np.asarray(label_vectors) @ np.asarray(prompt_vectors).T).max(axis=1)
    chosen: list[str] = []
    for index in np.argsort(-likeness, kind="stable"):
        label = labels[index]
        if label in chosen or any(narrower(label, prompt) for prompt in prompts):
            continue
        chosen.append(label)
        if len(chosen) == limit:
            break
    return chosen
