"""The pixel check of near-duplicates (assetsearch.copies): copies pass, look-alikes do not.

Pure pixels, no database: the images come from the independent evaluation
renderer, whose scenes the demo model reads as near-duplicates of each
other when they share a colour and a shape.
"""

from __future__ import annotations

import itertools
import logging
import math

import pytest
from PIL import Image, ImageDraw

from assetsearch.conf import DEFAULTS
from assetsearch.copies import Picture, copy_difference, get_picture, is_copy
from assetsearch.demo_model import independent
from assetsearch.models import Asset
from assetsearch.registry import get_index

TOLERANCE = DEFAULTS["DUPLICATE_PIXEL_TOLERANCE"]


@pytest.fixture(scope="module")
def items() -> list[independent.Item]:
    return independent.make_catalogue(300, seed=11)


@pytest.mark.parametrize("edit", sorted(independent.COPY_EDITS))
def test_every_copy_of_the_independent_scenes_passes(items, edit):
    differences = [copy_difference(Picture(item.image), Picture(independent.COPY_EDITS[edit](item.image))) for item in items[:60]]
    assert max(differences) <= TOLERANCE, sorted(differences)[-3:]


def test_distinct_scenes_of_one_colour_and_shape_do_not(items):
    # The hardest pairs: the same colour and shape (the demo model's near-duplicates) on canvases of nearly one shape.
    pictures = [Picture(item.image) for item in items]
    pairs = [
        (pictures[i], pictures[j]) for i, j in itertools.combinations(range(len(items)), 2)
        if (items[i].colour, items[i].shape) == (items[j].colour, items[j].shape) and abs(pictures[i].log_aspect - pictures[j].log_aspect) <= 0.25
    ]
    differences = [copy_difference(a, b) for a, b in pairs]
    aligned = [d for d in differences if math.isfinite(d)]  # a crop brought them together
    assert len(aligned) >= 20 and min(differences) > TOLERANCE, sorted(aligned)[:3]


def canvas(*dots: tuple[int, int], colour=(120, 120, 120), size=(300, 200)) -> Image.Image:
    """A flat grey canvas with faint 8 px dots (contrast 0.12): what a small object on a plain background is."""
    image = Image.new("RGB", size, (100, 100, 100))
    draw = ImageDraw.Draw(image)
    for x, y in dots:
        draw.ellipse((x, y, x + 8, y + 8), fill=colour)
    return image


def test_a_faint_small_object_that_moved_is_a_difference():
    original = canvas((60, 50))
    assert is_copy(Picture(original), Picture(original.resize((150, 100))), TOLERANCE)
    assert not is_copy(Picture(original), Picture(canvas((200, 120))), TOLERANCE)
    assert not is_copy(Picture(original), Picture(canvas((60, 50), (200, 120))), TOLERANCE)  # one object more


def test_a_crop_beyond_a_light_one_or_another_aspect_is_no_copy():
    original = canvas((60, 50), (200, 120))
    assert math.isinf(copy_difference(Picture(original), Picture(original.resize((200, 200)))))
    assert is_copy(Picture(original), Picture(original.crop((15, 10, 285, 190))), TOLERANCE)  # 5% a side
    assert not is_copy(Picture(original), Picture(original.crop((0, 0, 150, 100))), TOLERANCE)  # a quarter


@pytest.mark.django_db
def test_a_missing_file_is_logged_and_compares_as_nothing(caplog):
    asset = Asset(pk=123456, title="gone")
    asset.image.name = "assets/does-not-exist.png"
    with caplog.at_level(logging.WARNING, logger="assetsearch.copies"):
        assert get_picture(asset, get_index(Asset)) is None
    assert "Cannot compare the pixels of Asset #123456" in caplog.text
