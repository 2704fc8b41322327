"""The bundled demo CLIP model: loads offline through open_clip and knows its world."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from assetsearch.demo_model import CHECKPOINT_PATH, MODEL_NAME
from assetsearch.demo_model.evaluate import (
    embed_images,
    embed_texts,
    evaluate,
    image_triples,
    load_model,
    make_heldout,
)
from assetsearch.demo_model.synthetic import Scene, describe


@pytest.fixture(scope="module")
def demo(no_network_module):
    return load_model()


@pytest.fixture(scope="module")
def no_network_module():
    """Fail loudly if anything tries to open a network connection while loading."""
    original = socket.socket.connect

    def refuse(self, address):
        if isinstance(address, tuple):  # AF_INET/AF_INET6; unix sockets are local
            raise AssertionError(f"network access attempted: {address}")
        return original(self, address)

    socket.socket.connect = refuse
    yield
    socket.socket.connect = original


def scene(**changes) -> Scene:
    base = dict(shape="circle", colour="red", fill="plain", background="white", size="large", count=1, position="center")
    return Scene(**{**base, **changes})


def test_checkpoint_is_small_package_data():
    assert CHECKPOINT_PATH.is_file()
    assert CHECKPOINT_PATH.stat().st_size <= 30 * 1024 * 1024


def test_a_red_circle_ranks_the_red_circle_first(demo):
    model, preprocess, tokenizer = demo
    candidates = [
        scene(colour="blue"),
        scene(shape="square"),
        scene(colour="red", shape="triangle"),
        scene(colour="green", shape="star"),
        scene(),  # the red circle
        scene(colour="pink"),
        scene(colour="orange"),
    ]
    images = embed_images(model, preprocess, [s.render(7 + i) for i, s in enumerate(candidates)])
    for query, expected in [("a red circle", 4), ("a blue circle", 0), ("a red square", 1), ("a green star", 3)]:
        scores = images @ embed_texts(model, tokenizer, [query])[0]
        assert int(np.argmax(scores)) == expected, (query, scores.round(3))


def test_zero_shot_and_retrieval_meet_targets_on_a_small_heldout_set(demo):
    model, preprocess, tokenizer = demo
    metrics = evaluate(model, preprocess, tokenizer, make_heldout(200, seed=3), seed=3)
    assert metrics["colour_accuracy"] >= 0.95, metrics
    assert metrics["shape_accuracy"] >= 0.90, metrics
    assert metrics["text_image_R@5"] >= 0.80, metrics


def test_two_renderings_of_a_scene_are_nearer_than_a_changed_scene(demo):
    model, preprocess, _ = demo
    assert image_triples(model, preprocess, count=200, seed=0) >= 0.95


def test_captions_are_varied_and_state_what_they_say():
    import random

    rng = random.Random(1)
    s = scene(count=2, size="small", position="top", colour="blue", shape="star")
    captions = {describe(s, rng).text for _ in range(60)}
    assert len(captions) > 20
    caption = describe(s, rng, stated=("colour", "size", "position"))
    assert caption.stated == {"shape": "star", "count": 2, "colour": "blue", "size": "small", "position": "top"}
    assert caption.matches(s) and not caption.matches(scene(shape="star", colour="blue"))


def test_vit_b_32_builds_through_the_same_loader_with_512_d_unit_vectors(no_network_module):
    from assetsearch.encoders import OpenCLIPEncoder

    encoder = OpenCLIPEncoder("vit", {"MODEL": "ViT-B-32", "PRETRAINED": None, "DEVICE": "cpu", "BATCH_SIZE": 2})
    assert encoder.key == "ViT-B-32:random"
    images = encoder.embed_images([scene().render(1), scene(colour="blue").render(2)])
    texts = encoder.embed_texts(["a red circle"])
    assert images.shape == (2, 512) and texts.shape == (1, 512)
    assert images.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, rtol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, rtol=1e-4)


def test_bundled_encoder_uses_the_shipped_checkpoint():
    from assetsearch.encoders import OpenCLIPEncoder

    encoder = OpenCLIPEncoder("demo", {"MODEL": MODEL_NAME, "PRETRAINED": "bundled", "BATCH_SIZE": 8})
    assert encoder.checkpoint == str(CHECKPOINT_PATH)
    assert encoder.key.startswith(MODEL_NAME + ":") and len(encoder.key) == len(MODEL_NAME) + 13
    assert encoder.dimensions == 512 and encoder.context_length == 32
