"""The bundled demo CLIP model: loads offline through open_clip and knows its world."""

from __future__ import annotations

import random
import socket
from dataclasses import replace

import numpy as np
import pytest

from assetsearch.demo_model import CHECKPOINT_PATH, MODEL_NAME
from assetsearch.demo_model.evaluate import (
    confusion,
    embed_images,
    embed_texts,
    evaluate,
    evaluate_independent,
    evaluate_queries,
    image_triples,
    load_model,
    make_heldout,
)
from assetsearch.demo_model.independent import CONDITIONS, make_catalogue
from assetsearch.demo_model.train import variant_groups
from assetsearch.demo_model.synthetic import (
    COLOURS,
    SCATTER_REGIONS,
    SHAPES,
    Augmentation,
    Scene,
    describe,
    describe_one_attribute,
    describe_varied,
    random_scene,
)


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
    assert encoder.weights_key.startswith(MODEL_NAME + ":") and len(encoder.weights_key) == len(MODEL_NAME) + 13
    assert encoder.key == f"{encoder.weights_key};fit=tiles+1;pool=20x0.5"  # the fit it reads best, which is not open_clip's centre crop
    assert encoder.dimensions == 512 and encoder.context_length == 32


def test_independent_renderer_is_seeded_and_records_its_conditions():
    first, again = make_catalogue(6, seed=11), make_catalogue(6, seed=11)
    assert [np.asarray(a.image).tobytes() == np.asarray(b.image).tobytes() for a, b in zip(first, again)] == [True] * 6
    for item in first:
        assert set(CONDITIONS) <= set(item.conditions)
        width, height = item.image.size
        assert (width == height) is (item.conditions["aspect"] == "square")
        assert 1 <= item.count <= 3


def test_confusion_counts_every_reading_under_its_true_label():
    table = confusion(["cross", "cross", "star", "heart"], ["star", "cross", "star", "hexagon"], ("star", "cross", "heart", "hexagon"))
    assert table["cross"] == {"star": 1, "cross": 1, "heart": 0, "hexagon": 0}
    assert table["heart"]["hexagon"] == 1 and table["star"]["star"] == 1
    assert sum(sum(row.values()) for row in table.values()) == 4
    assert confusion([2, 3], [1, 3], (1, 2, 3))["2"] == {"1": 1, "2": 0, "3": 0}
    with pytest.raises(ValueError):
        confusion(["star"], [], ("star",))


def test_independent_figures_regression_guard(demo):
    """The bundled model on 200 independent images (seed 3), per fit: guards, not the issue's targets.

    Measured (2026-12-07, stage 8): centre-crop colour 0.705, shape 0.68,
    count 0.735, R@5 0.84 (README phrasing) and 0.84 (free); tiles (the
    bundled model's default) colour 0.99, shape 0.875, count 0.845, R@5
    0.99 and 0.98; objects at the ends of 2:1-3:1 images 0.08 colour under
    centre-crop, 1.00 under letterbox and 0.98 under tiles (0.98 for
    objects in the middle; under the earlier tile pooling, the distinct tile
    alone, 1.00 and 0.86, and colour 0.96, shape 0.855, count 0.825).
    Stage 6 read tiles at colour 0.98, shape 0.84, count 0.85;
    stage 5 alone read shape under tiles at 0.815, under the
    tile guard, stage 4 alone at 0.805, stage 3 alone at 0.755, stage 2
    alone (2,500 steps) at 0.675, and the one before that count at 0.63 and
    R@5 at 0.87 / 0.855.
    """
    model, preprocess, tokenizer = demo
    items = make_catalogue(200, seed=3)
    cropped, boxed, tiled = (
        evaluate_independent(model, tokenizer, preprocess, items, fit=fit, seed=3) for fit in ("centre-crop", "letterbox", "tiles")
    )
    guards = {"colour": 0.60, "shape": 0.45, "count": 0.65, "readme_R@5": 0.75, "free_R@5": 0.75}
    assert all(cropped["overall"][name] >= value for name, value in guards.items()), cropped["overall"]
    tile_guards = {**guards, "colour": 0.90, "shape": 0.82, "count": 0.75, "readme_R@5": 0.88, "free_R@5": 0.88}
    assert all(tiled["overall"][name] >= value for name, value in tile_guards.items()), tiled["overall"]
    for attribute in ("shape", "count"):  # the confusion tables' diagonals are the accuracies
        table = tiled["confusion"][attribute]
        assert sum(table[label][label] for label in table) / len(items) == pytest.approx(tiled["overall"][attribute])
    # Square images are fitted alike; at the ends only letterbox and tiles let the model see the object,
    # and tiles read it as well as one in the middle, and one in the middle as well as one at an end.
    square = ("colour", "shape", "count")
    assert [cropped["by_condition"]["aspect"]["square"][m] for m in square] == [boxed["by_condition"]["aspect"]["square"][m] for m in square]
    assert [cropped["by_condition"]["aspect"]["square"][m] for m in square] == [tiled["by_condition"]["aspect"]["square"][m] for m in square]
    assert cropped["ends"]["colour_end"] <= 0.15 < 0.25 <= boxed["ends"]["colour_end"], (cropped["ends"], boxed["ends"])
    assert tiled["ends"]["colour_end"] >= max(0.75, tiled["ends"]["colour_middle"] - 0.05), tiled["ends"]
    assert tiled["ends"]["colour_middle"] >= tiled["ends"]["colour_end"] - 0.05, tiled["ends"]


def test_training_augmentations_are_seeded_square_and_vary_the_pictures():
    rng = random.Random(4)
    scenes = [random_scene(rng) for _ in range(24)]
    augment = Augmentation()
    images = [s.render(500 + i, size=128, augment=augment) for i, s in enumerate(scenes)]
    again = [s.render(500 + i, size=128, augment=augment) for i, s in enumerate(scenes)]
    assert all(image.size == (128, 128) and image.mode == "RGB" for image in images)
    assert [a.tobytes() for a in images] == [b.tobytes() for b in again]
    plain = [s.render(500 + i, size=128) for i, s in enumerate(scenes)]
    assert sum(a.tobytes() != b.tobytes() for a, b in zip(images, plain)) == len(scenes)
    # Some are letterboxed: rows or columns of the padding colour at the border.
    pad = tuple(round(c * 255) for c in augment.pad_mean)
    assert sum(image.getpixel((0, 0)) == pad or image.getpixel((127, 127)) == pad for image in images) >= 4


def test_scattered_groups_keep_their_count_and_the_side_their_position_names():
    # Only the scatter and the small scale on, on a white square canvas, so the red pixels are the objects.
    still = Augmentation(rotate=0, aspect=0, border_cut=0, colour_jitter=0, outline=0, aliased=0, jpeg=0, noise=0, blur=0)
    scattered = replace(still, scatter=1.0, small_scale=0.5)
    red = np.array(COLOURS["red"])
    for position, (x0, y0, x1, y1) in SCATTER_REGIONS.items():
        for seed in range(5):
            scene = Scene("circle", "red", "plain", "white", "small", 3, position)
            image = np.asarray(scene.render(seed, size=128, augment=scattered)).astype(int)
            objects = np.abs(image - red).sum(axis=2) < 60
            ys, xs = np.nonzero(objects)
            assert xs.min() >= x0 * 128 - 2 and xs.max() <= x1 * 128 + 1, (position, seed, xs.min(), xs.max())
            assert ys.min() >= y0 * 128 - 2 and ys.max() <= y1 * 128 + 1, (position, seed, ys.min(), ys.max())
            assert image.tobytes() != np.asarray(scene.render(seed, size=128, augment=still)).astype(int).tobytes()
            # Placed untouching: the three objects stay three separate blobs.
            assert _blobs(objects) == 3, (position, seed)


def test_shape_jitter_draws_other_proportions():
    # Only the jitter on, so the object's pixels differ from the plain drawing by its proportions alone.
    still = Augmentation(rotate=0, aspect=0, border_cut=0, colour_jitter=0, outline=0, aliased=0, jpeg=0, noise=0, blur=0)
    jittered = replace(still, shape_jitter=1.0)
    red = np.array(COLOURS["red"])
    for shape in SHAPES:
        scene = Scene(shape, "red", "plain", "white", "large", 1, "center")
        areas, changed = [], 0
        for seed in range(6):
            plain, other = (np.asarray(scene.render(seed, size=128, augment=a)).astype(int) for a in (still, jittered))
            changed += plain.tobytes() != other.tobytes()
            areas.append((np.abs(other - red).sum(axis=2) < 60).sum() / (np.abs(plain - red).sum(axis=2) < 60).sum())
        assert changed >= 5, shape  # a drawn stretch near 1 may give the plain pixels
        # A stretch keeps the area; a cross's arms and a star's points change it, within bounds.
        assert all(0.55 <= a <= 1.45 for a in areas), (shape, areas)
        if shape not in ("cross", "star"):
            assert all(0.85 <= a <= 1.15 for a in areas), (shape, areas)


def _blobs(mask: np.ndarray) -> int:
    """Connected regions (4-neighbour) of a boolean mask (scipy.ndimage.label, without scipy installed)."""
    seen = np.zeros_like(mask)
    count = 0
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        count += 1
        stack = [start]
        seen[start] = True
        while stack:
            y, x = stack.pop()
            for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
    return count


def test_hard_negative_groups_differ_in_their_one_attribute():
    groups = variant_groups(random.Random(2), 30, 4, ["shape", "colour", "count"])
    for g, group in enumerate(groups):
        attribute = ("shape", "colour", "count")[g % 3]
        assert len(group) == (3 if attribute == "count" else 4)
        assert len({getattr(scene, attribute) for scene in group}) == len(group)
        rest = [{k: v for k, v in scene.as_dict().items() if k != attribute} for scene in group]
        assert all(r == rest[0] for r in rest), group


def test_varied_captions_state_only_what_is_true_in_many_forms():
    rng = random.Random(9)
    texts = set()
    for _ in range(400):
        s = random_scene(rng)
        caption = describe_varied(s, rng)
        assert caption.matches(s) and caption.stated["shape"] == s.shape, (caption, s)
        texts.add(caption.text)
    assert any(t.endswith(("x2", "x3")) for t in texts)
    assert any(t.endswith("?") for t in texts)
    assert any(t.startswith(("i need ", "looking for ")) for t in texts)
    assert any("," in t for t in texts)


def test_one_attribute_captions_name_that_attribute_alone():
    rng = random.Random(3)
    for _ in range(200):
        scene = random_scene(rng)
        for attribute, other in (("colour", "shape"), ("shape", "colour")):
            caption = describe_one_attribute(scene, attribute, rng)
            assert caption.stated == {attribute: getattr(scene, attribute)} and caption.matches(scene)
            assert getattr(scene, attribute) in caption.text and getattr(scene, other) not in caption.text, caption
        caption = describe_one_attribute(scene, "count", rng)
        assert caption.stated == {"count": scene.count} and caption.matches(scene)
        assert scene.shape not in caption.text and scene.colour not in caption.text, caption
    with pytest.raises(ValueError):
        describe_one_attribute(scene, "fill", rng)


def test_query_mode_figures_are_measured_on_the_independent_renderer(demo):
    model, preprocess, tokenizer = demo
    figures = evaluate_queries(model, tokenizer, preprocess, make_catalogue(80, seed=5), cases=5, seed=5, concept_images=2)
    shares = [k for k in figures if k.endswith(("R@1", "precision", "recall", "share"))]
    assert len(shares) == 20 and all(0.0 <= figures[k] <= 1.0 or figures[k] != figures[k] for k in shares), figures
    # Near-duplicates as the product finds them (candidates by vector, confirmed on pixels): every copy, and
    # none of the distinct pairs that the vectors alone put above the threshold. At the earlier threshold of
    # 0.85, stage 8 missed 3 of these 80 cropped copies (similarity 0.82-0.85; README "The model").
    copies = [figures[f"duplicate_{kind}_copies_found_share"] for kind in ("reencoded", "resized", "cropped")]
    assert copies == [1.0, 1.0, 1.0], figures
    assert figures["duplicate_candidate_pairs_of_distinct_images"] >= 10 and figures["duplicate_pairs_of_distinct_images"] == 0, figures
    # Look-alike counter-prompts ("a red square", "a blue triangle") flag no more than the neutral ones, and only
    # red triangles (on these 80 images: all 3 and nothing else with the look-alikes, all 3 and one look-alike with
    # the neutral ones, with stage 8; 2 of the 3 and one look-alike with the neutral ones with stage 5; stage 4 flagged
    # all 3 and two look-alikes with the neutral ones, the stage-2 checkpoints 2 of the 3 under both, and before them
    # the neutral ones flagged more than the look-alikes).
    assert figures["moderation_neutral_flagged"] >= figures["moderation_look_alikes_flagged"] > 0, figures
    assert figures["moderation_look_alikes_precision"] == 1.0, figures
    # Over every colour and shape with 2 images or more (22 here), look-alikes are the better counter-prompts
    # (here mean precision 0.93 against 0.62; on 1,000 images 0.93 against 0.47, README "Moderation").
    assert figures["moderation_neutral_all_concepts"] == figures["moderation_look_alikes_all_concepts"] == 22, figures
    assert figures["moderation_look_alikes_mean_precision"] >= figures["moderation_neutral_mean_precision"] + 0.15, figures
    # A concept without counter-prompts is weighed against the 16 labels nearest it (assetsearch.lookalikes), and
    # does as well as the look-alikes written out (with stage 8 here: all 3 red triangles and nothing else, mean
    # precision 0.93 and recall 0.79 either way, neutral 0.62 and 0.64; on 1,000 images 1.00 / 1.00 for "a red
    # triangle", README "Moderation").
    assert figures["moderation_default_flagged"] == 3, figures
    assert figures["moderation_default_precision"] == figures["moderation_default_recall"] == 1.0, figures
    assert figures["moderation_default_mean_precision"] >= figures["moderation_neutral_mean_precision"] + 0.15, figures
    assert figures["moderation_default_mean_recall"] >= figures["moderation_look_alikes_mean_recall"] - 0.05, figures


def test_training_precision_is_bf16_only_where_the_hardware_has_it():
    import torch

    from assetsearch.demo_model.train import training_precision

    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    # An AVX2-only CPU emulates bf16 (minutes a step): auto trains it in fp32.
    assert training_precision("auto", torch.device("cpu")) == ("bf16" if native else "fp32")
    assert training_precision("auto", torch.device("cuda")) == "bf16"
    assert [training_precision(p, torch.device("cpu")) for p in ("fp32", "bf16")] == ["fp32", "bf16"]


def test_image_contrast_pulls_same_colour_and_shape_together_and_skips_lone_anchors():
    import torch

    from assetsearch.demo_model.train import same_object_loss

    # Two red stars laid out differently and two blue circles: low when each pair is close, high when crossed.
    apart = torch.tensor([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [0.1, 0.99]])
    labels = [("red", "star"), ("red", "star"), ("blue", "circle"), ("blue", "circle")]
    assert same_object_loss(apart, labels) < 0.01
    assert same_object_loss(apart, [labels[0], labels[2], labels[0], labels[2]]) > 5
    # A picture with no other of its colour and shape in the batch is no anchor: adding one changes nothing.
    lone = torch.cat([apart, torch.tensor([[0.7, 0.7]])])
    with_lone = same_object_loss(lone, [*labels, ("green", "heart")])
    assert with_lone > same_object_loss(apart, labels)  # it is a negative for the others
    assert torch.isclose(same_object_loss(torch.randn(3, 4), [("a", 1), ("b", 2), ("c", 3)]), torch.tensor(0.0))
