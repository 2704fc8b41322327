"""Look-alikes: the labels a moderation concept without counter-prompts is weighed against."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured

from assetsearch import demo_model
from assetsearch.conf import DEFAULTS
from assetsearch.constants import MAX_QUERY_CHARS
from assetsearch.encoders import OpenCLIPEncoder
from assetsearch.lookalikes import content_words, lookalike_labels, narrower

DEMO = DEFAULTS["ENCODERS"]["default"]


def test_a_label_holding_every_word_of_a_prompt_is_a_narrower_case_of_it():
    assert content_words("An Orange  triangle, of course") == {"orange", "triangle", "course"}
    assert narrower("a blue star", "blue") and narrower("a blue star", "a star") and narrower("A red triangle", "a red triangle")
    assert not narrower("a brown triangle", "a red triangle") and not narrower("a red square", "a red triangle")
    assert not narrower("blue", "a blue star")  # broader, not narrower: a look-alike like any other


def test_the_nearest_labels_come_first_and_narrower_cases_are_skipped():
    labels = ["a red triangle", "a red square", "a blue triangle", "a blue square", "a red circle"]
    # Unit vectors in the plane at these angles (degrees) from the prompt's.
    angles = np.radians([0, 20, 30, 60, 40])
    label_vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    prompt = np.array([[1.0, 0.0]])
    assert lookalike_labels(["a red triangle"], prompt, labels, label_vectors, 3) == ["a red square", "a blue triangle", "a red circle"]
    assert lookalike_labels(["a red triangle"], prompt, labels, label_vectors, 10) == ["a red square", "a blue triangle", "a red circle", "a blue square"]
    # "red" skips every red label; with two prompts a label is as near as its nearer prompt.
    assert lookalike_labels(["red"], prompt, labels, label_vectors, 10) == ["a blue triangle", "a blue square"]
    both = np.stack([prompt[0], label_vectors[3]])
    assert lookalike_labels(["a red triangle", "a shape"], both, labels, label_vectors, 2) == ["a blue square", "a red square"]
    assert lookalike_labels(["a red triangle"], prompt, [], np.zeros((0, 2)), 3) == []
    assert lookalike_labels(["a red triangle"], prompt, labels, label_vectors, 0) == []


def test_labels_are_a_validated_encoder_option_whose_default_is_the_model_s_own():
    bundled = OpenCLIPEncoder("x", DEMO)
    assert DEMO["LABELS"] == "auto" and bundled.labels == demo_model.labels()
    assert len(bundled.labels) == 64 and {"a red triangle", "a orange heart", "a brown cross"} <= set(bundled.labels)
    assert OpenCLIPEncoder("x", {**DEMO, "MODEL": "ViT-B-32", "PRETRAINED": None}).labels == []
    assert OpenCLIPEncoder("x", {**DEMO, "LABELS": None}).labels == []
    assert OpenCLIPEncoder("x", {**DEMO, "LABELS": ("a cat", "a dog")}).labels == ["a cat", "a dog"]
    for wrong in ("a cat", ["a cat", ""], ["a cat", 3], ["a cat", "x" * (MAX_QUERY_CHARS + 1)]):
        with pytest.raises(ImproperlyConfigured, match="LABELS of encoder 'x' must be"):
            OpenCLIPEncoder("x", {**DEMO, "LABELS": wrong})
