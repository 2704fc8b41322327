"""How non-square images are fitted to the model's square input (an encoder's FIT option)."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from PIL import Image, ImageDraw

from assetsearch import demo_model, encoders
from assetsearch.clip_inputs import TILES_BEYOND_RATIO, FIT_MODES, fit_image, fit_views, pool_views, preprocess_image, square_tiles
from assetsearch.conf import DEFAULTS
from assetsearch.demo_model.evaluate import embed_images, embed_texts, load_model
from assetsearch.encoders import OpenCLIPEncoder, get_encoder


@pytest.fixture(scope="module")
def demo():
    return load_model()


def object_at_the_end(width: int = 384, height: int = 128, colour=(220, 35, 35)) -> Image.Image:
    """A gray 3:1 banner with one red circle near its left end, outside the centre square."""
    image = Image.new("RGB", (width, height), (128, 128, 128))
    radius = height // 4
    centre = (radius + 6, height // 2)
    ImageDraw.Draw(image).ellipse([centre[0] - radius, centre[1] - radius, centre[0] + radius, centre[1] + radius], fill=colour)
    return image


def red_pixels(pixels: np.ndarray, mean, std) -> int:
    rgb = pixels.transpose(1, 2, 0) * np.asarray(std) + np.asarray(mean)
    return int(((rgb[..., 0] > 0.7) & (rgb[..., 1] < 0.3) & (rgb[..., 2] < 0.3)).sum())


def test_letterbox_and_tiles_keep_an_object_at_the_end_of_a_wide_image_that_centre_crop_cuts_off(demo):
    model, preprocess, tokenizer = demo
    config = model.visual.preprocess_cfg
    for image in (object_at_the_end(), object_at_the_end().transpose(Image.Transpose.TRANSPOSE)):  # wide and tall
        cropped = preprocess(fit_image(image, "centre-crop", config)).numpy()
        boxed = preprocess(fit_image(image, "letterbox", config)).numpy()
        first_tile = preprocess(fit_views(image, "tiles", config)[0]).numpy()
        assert red_pixels(cropped, config["mean"], config["std"]) == 0
        assert red_pixels(boxed, config["mean"], config["std"]) > 100
        assert red_pixels(first_tile, config["mean"], config["std"]) > red_pixels(boxed, config["mean"], config["std"])
        # The model reads the colour only when it sees the object.
        colours = ["red", "blue", "green", "yellow", "purple", "orange", "pink", "brown"]
        texts = embed_texts(model, tokenizer, [f"a {colour} circle" for colour in colours])
        for fit, expected in (("letterbox", True), ("tiles", True), ("centre-crop", False)):
            vector = embed_images(model, preprocess, [image], fit=fit)[0]
            assert (colours[int(np.argmax(texts @ vector))] == "red") is expected, fit


def test_letterbox_pads_with_the_model_mean_and_keeps_square_images_as_they_are(demo):
    config = demo[0].visual.preprocess_cfg
    square = Image.new("RGB", (200, 200), (10, 20, 30))
    assert fit_image(square, "letterbox", config) is square
    boxed = fit_image(Image.new("RGB", (600, 200), (255, 0, 0)), "letterbox", config)
    side = config["size"][0] if isinstance(config["size"], (list, tuple)) else config["size"]
    assert boxed.size == (side, side)
    assert boxed.getpixel((side // 2, 1)) == tuple(round(c * 255) for c in config["mean"])
    assert boxed.getpixel((side // 2, side // 2)) == (255, 0, 0)
    small = fit_image(Image.new("RGB", (30, 90), (0, 0, 255)), "letterbox", config)
    assert small.size == (90, 90)  # padded, then resized by the model's preprocess
    with pytest.raises(ValueError, match="stretch"):
        fit_image(square, "stretch", config)


@pytest.mark.parametrize("fit", FIT_MODES)
@pytest.mark.parametrize("size", [(300, 100), (100, 300), (129, 128), (40, 200), (640, 480), (128, 128)])
def test_torch_and_torch_free_preprocess_give_the_same_pixels(demo, fit, size):
    _, preprocess, _ = demo
    config = demo[0].visual.preprocess_cfg
    rng = np.random.default_rng(size[0] * 7 + size[1])
    image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8), "RGB")
    for view in fit_views(image, fit, config):
        torch_pixels = preprocess(view).numpy()
        assert np.abs(preprocess_image(view, config) - torch_pixels).max() < 1e-5


def test_tiles_are_overlapping_squares_from_end_to_end_and_a_square_image_is_its_own_tile():
    wide = Image.fromarray(np.arange(300 * 100 * 3, dtype=np.uint32).reshape(100, 300, 3).astype(np.uint8), "RGB")
    tiles = square_tiles(wide)
    assert len(tiles) == 3 + TILES_BEYOND_RATIO and {tile.size for tile in tiles} == {(100, 100)}
    assert tiles[0].tobytes() == wide.crop((0, 0, 100, 100)).tobytes()
    assert tiles[-1].tobytes() == wide.crop((200, 0, 300, 100)).tobytes()
    tall = square_tiles(wide.transpose(Image.Transpose.TRANSPOSE))
    assert len(tall) == len(tiles) and tall[-1].tobytes() == tiles[-1].transpose(Image.Transpose.TRANSPOSE).tobytes()
    assert len(square_tiles(Image.new("RGB", (129, 128)))) == 2 + TILES_BEYOND_RATIO
    square = Image.new("RGB", (64, 64))
    assert square_tiles(square) == [square] and fit_views(square, "tiles", {}) == [square]
    with pytest.raises(ValueError, match="use fit_views"):
        fit_image(wide, "tiles", {})


def test_pooling_keeps_one_view_and_adds_the_tile_that_differs_to_the_tiles_mean():
    background, other, third = np.eye(4, dtype=np.float32)[:3]
    views = np.stack([background, background, other, background, third, background, background, other, other])
    pooled = pool_views(views, [4, 1, 4])
    assert pooled.dtype == np.float32 and np.allclose(np.linalg.norm(pooled, axis=1), 1)
    assert np.array_equal(pooled[1], views[4])
    # An object in one of four tiles: a plain mean would weigh it 1:3 against the background; the tiles' mean plus
    # the distinct tile at TILE_POOL_DISTINCT_WEIGHT (0.5) weighs it 0.25 + 0.5 against 0.75, as much as all of it.
    assert pooled[0] @ other == pytest.approx(pooled[0] @ background, abs=1e-4) and pooled[0] @ other > 0.7
    # Tiles alike (an object in two of four): no tile differs, and the pooling is the plain mean.
    assert pooled[2] @ other == pytest.approx(pooled[2] @ background, abs=1e-6)
    with pytest.raises(ValueError):
        pool_views(views, [2, 2])


def test_fit_is_a_validated_encoder_option_whose_default_is_the_model_s_own():
    # "auto": the fit the model declares it reads best (the bundled one: tiles); open_clip's models centre crops.
    assert DEFAULTS["ENCODERS"]["default"]["FIT"] == "auto" and get_encoder().fit == demo_model.FIT == "tiles"
    assert OpenCLIPEncoder("x", {**DEFAULTS["ENCODERS"]["default"], "MODEL": "ViT-B-32", "PRETRAINED": None}).fit == "centre-crop"
    with override_settings(ASSETSEARCH={"ENCODERS": {"default": {"FIT": "letterbox"}}}):
        assert get_encoder().fit == "letterbox"
    with mock.patch.dict(encoders.MODEL_FITS, {demo_model.MODEL_NAME: "letterbox"}):  # a checkpoint trained letterboxed
        boxed = OpenCLIPEncoder("x", DEFAULTS["ENCODERS"]["default"])
    assert boxed.fit == "letterbox" and boxed.key == f"{boxed.weights_key};fit=letterbox"
    with pytest.raises(ImproperlyConfigured, match="FIT 'stretch' of encoder 'x' is not one of 'auto', 'letterbox', 'centre-crop', 'tiles'"):
        OpenCLIPEncoder("x", {**DEFAULTS["ENCODERS"]["default"], "FIT": "stretch"})


def test_the_encoder_embeds_with_its_fit(demo):
    image = object_at_the_end()
    vectors = {}
    for fit in FIT_MODES:
        with override_settings(ASSETSEARCH={"ENCODERS": {"default": {"FIT": fit}}}):
            vectors[fit] = get_encoder().embed_images([image])[0]
        np.testing.assert_allclose(vectors[fit], embed_images(demo[0], demo[1], [image], fit=fit)[0], atol=2e-3)
    assert float(vectors["letterbox"] @ vectors["centre-crop"]) < 0.99


def test_another_fit_is_another_encoder_key_over_the_same_export():
    from assetsearch.runtime_encoders import ONNXRuntimeEncoder

    default = {**DEFAULTS["ENCODERS"]["default"]}
    cropped, boxed, auto = (OpenCLIPEncoder("x", {**default, "FIT": fit}) for fit in ("centre-crop", "letterbox", "auto"))
    # open_clip's centre crop adds nothing to the key (vectors stored before FIT existed stay current); any other fit
    # makes them stale, the bundled model's "auto" (tiles) too: its vectors were centre-cropped before.
    assert cropped.key == cropped.weights_key and boxed.key == f"{cropped.weights_key};fit=letterbox"
    assert auto.key == f"{cropped.weights_key};fit=tiles+1;pool=20x0.5"  # how tiles are pooled is part of it
    vit = {**default, "MODEL": "ViT-B-32", "PRETRAINED": None}
    assert OpenCLIPEncoder("x", vit).vector_key("w") == "w" and OpenCLIPEncoder("x", {**vit, "FIT": "letterbox"}).vector_key("w") == "w;fit=letterbox"
    onnx_cropped, onnx_boxed = (ONNXRuntimeEncoder("x", {**default, "FIT": fit}) for fit in ("centre-crop", "letterbox"))
    assert (onnx_cropped.key, onnx_boxed.key) == (cropped.key, boxed.key)
    assert onnx_cropped.folder == onnx_boxed.folder  # one export serves both fits
