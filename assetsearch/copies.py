"""Whether one picture is a copy of another: re-encoded, resized or lightly cropped.

Vectors find candidate near-duplicates (``DUPLICATE_THRESHOLD``), but an
embedding says what a picture shows, not which picture it is: two photos of
the same red car, or two drawings of one blue heart in different places,
can sit as close as a copy does. A candidate pair is therefore confirmed on
pixels (``DUPLICATE_PIXEL_TOLERANCE``):

1. Both pictures are reduced to at most :data:`WORK_SIDE` pixels a side.
2. The crop that maps one onto the other is found: a coarse search over
   crops of up to :data:`MAX_CROP` of each side on :data:`COARSE_SIDE` px
   thumbnails (the aspect ratios must then agree), refined by coordinate
   descent at :data:`REFINE_SIDE` px. Both directions are tried, since
   either picture may be the cropped one.
3. The aligned pictures are smoothed (JPEG ringing, noise, resampling) and
   each pixel is compared with the other picture's neighbourhood within
   :data:`NEIGHBOURHOOD` px, with slack in proportion to that neighbourhood's
   own range, so an edge that moved by a pixel or blurred still matches.
4. The difference is the largest residual that holds over a 2x2 block
   (single-pixel artefacts do not count), divided by the square root of the
   pictures' contrast: a faint object missing from a flat canvas is a real
   difference, ringing along a black-and-yellow edge is not.

Tuned on the independent renderer's catalogues (:mod:`assetsearch.demo_model.evaluate`,
``--queries``): copies stay under 0.17 and distinct scenes that the demo
model puts above 0.65 start at 0.22, so the default tolerance is 0.19.
A copy with visible edits (a watermark, a caption, a colour grade) is a
different picture by this test.
"""

from __future__ import annotations

import itertools
import logging
import math
from typing import IO, Protocol

import numpy as np
from django.db.models import Model
from PIL import Image, ImageFilter

from .images import InvalidImage, decode_for_model

logger = logging.getLogger(__name__)

WORK_SIDE = 192  # pixels a side at which pictures are compared
COARSE_SIDE = 32  # thumbnails the crop search runs on
REFINE_SIDE = 64  # ... and the refinement
MAX_CROP = 0.1  # the most a light crop takes from each side
CROP_STEP = 0.025  # the coarse search's step, as a share of a side
ASPECT_SLACK = 0.06  # log aspect ratios a crop must bring within this of each other
COARSE_LIMIT = 0.08  # mean difference at the best coarse crop above which it is no copy
NEIGHBOURHOOD = 2  # pixels an edge may have moved
RANGE_SLACK = 0.25  # extra slack, as a share of the neighbourhood's range
BLUR_RADIUS = 1.0  # Gaussian smoothing before comparing
MIN_CONTRAST = 0.05  # a flat picture's contrast is taken as at least this

_SHARES = np.arange(0, MAX_CROP + 1e-9, CROP_STEP)
# Crops as (left, top, right, bottom) shares, and how much each changes the log aspect ratio.
_CROPS = np.array(list(itertools.product(_SHARES, repeat=4)), dtype=np.float32)
_ASPECT_CHANGE = np.log((1 - _CROPS[:, 0] - _CROPS[:, 2]) / (1 - _CROPS[:, 1] - _CROPS[:, 3]))


def _array(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) / 255


def _resized(image: Image.Image, size: tuple[int, int], crop: np.ndarray | tuple[float, ...] = (0, 0, 0, 0)) -> Image.Image:
    """``image`` less ``crop`` (shares of each side), resized to ``size``."""
    left, top, right, bottom = (float(share) for share in crop)
    width, height = image.size
    box = (left * width, top * height, width * (1 - right), height * (1 - bottom))
    return image.resize(size, Image.Resampling.BILINEAR, box=box)


class Picture:
    """An image prepared once for any number of comparisons (see :func:`copy_difference`)."""

    def __init__(self, image: Image.Image) -> None:
        image = image.convert("RGB")
        width, height = image.size
        self.log_aspect = math.log(width / height)
        scale = min(1.0, WORK_SIDE / max(width, height))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        self.image = image.resize(size, Image.Resampling.BOX) if scale < 1 else image
        self.coarse = self.image.resize((COARSE_SIDE, COARSE_SIDE), Image.Resampling.BOX)
        self.refine = self.image.resize((REFINE_SIDE, REFINE_SIDE), Image.Resampling.BOX)


class ImageOpener(Protocol):
    """What :func:`get_picture` needs of a :class:`~assetsearch.indexes.BaseImageIndex`."""

    def open_image(self, obj: Model) -> IO[bytes]: ...


def get_picture(obj: Model, index: ImageOpener) -> Picture | None:
    """``obj``'s image (read through its ``index``), prepared; None (logged) when its file is missing or undecodable."""
    try:
        with index.open_image(obj) as file:
            return Picture(decode_for_model(file, WORK_SIDE))
    except (OSError, InvalidImage) as exc:  # FileNotFoundError is an OSError
        logger.warning("Cannot compare the pixels of %s #%s: %s", type(obj).__name__, obj.pk, exc)
        return None


def copy_difference(a: Picture, b: Picture) -> float:
    """How far ``b`` is from being a re-encoded, resized or lightly cropped copy of ``a``
    (or ``a`` of ``b``): about 0.1 or less for copies; ``inf`` when no crop aligns them."""
    return min(_difference(a, b), _difference(b, a))


def is_copy(a: Picture, b: Picture, tolerance: float) -> bool:
    return copy_difference(a, b) <= tolerance


def _difference(original: Picture, copy: Picture) -> float:
    """The difference when ``copy`` is ``original`` cropped (by up to MAX_CROP a side) and resized."""
    candidates = np.flatnonzero(np.abs(original.log_aspect + _ASPECT_CHANGE - copy.log_aspect) <= ASPECT_SLACK)
    if not len(candidates):
        return math.inf
    target = _array(copy.coarse)
    size = (COARSE_SIDE, COARSE_SIDE)
    costs = [float(np.abs(_array(_resized(original.coarse, size, _CROPS[i])) - target).mean()) for i in candidates]
    best = int(np.argmin(costs))
    if costs[best] > COARSE_LIMIT:
        return math.inf
    crop = _refine(original, copy, _CROPS[candidates[best]])
    aligned = _array(_resized(original.image, copy.image.size, crop).filter(ImageFilter.GaussianBlur(BLUR_RADIUS)))
    target = _array(copy.image.filter(ImageFilter.GaussianBlur(BLUR_RADIUS)))
    residual = max(_persistent_max(_outside_neighbourhood(aligned, target)), _persistent_max(_outside_neighbourhood(target, aligned)))
    return residual / math.sqrt(max(_contrast(aligned), _contrast(target), MIN_CONTRAST))


def _refine(original: Picture, copy: Picture, crop: np.ndarray) -> np.ndarray:
    """``crop`` adjusted by coordinate descent at REFINE_SIDE px, in ever smaller steps."""
    size = (REFINE_SIDE, REFINE_SIDE)
    target = _array(copy.refine)
    source = original.image if max(original.image.size) <= 2 * REFINE_SIDE else original.image.resize((2 * REFINE_SIDE,) * 2, Image.Resampling.BOX)

    def cost(candidate: np.ndarray) -> float:
        return float(np.abs(_array(_resized(source, size, candidate)) - target).mean())

    crop, best = crop.copy(), cost(crop)
    for step in (CROP_STEP / 2, CROP_STEP / 4, CROP_STEP / 8):
        improved = True
        while improved:
            improved = False
            for side, change in itertools.product(range(4), (-step, step)):
                candidate = crop.copy()
                candidate[side] = min(max(candidate[side] + change, 0.0), MAX_CROP + CROP_STEP / 2)
                value = cost(candidate)
                if value < best - 1e-6:
                    crop, best, improved = candidate, value, True
    return crop


def _outside_neighbourhood(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pixel of ``a``: how far it falls outside the range of ``b``'s values around it
    (NEIGHBOURHOOD px), widened by RANGE_SLACK of that range; the largest over channels."""
    height, width, _ = a.shape
    r = NEIGHBOURHOOD
    padded = np.pad(b, ((r, r), (r, r), (0, 0)), mode="edge")
    low, high = b.copy(), b.copy()
    for dy, dx in itertools.product(range(2 * r + 1), repeat=2):
        shifted = padded[dy:dy + height, dx:dx + width]
        np.minimum(low, shifted, out=low)
        np.maximum(high, shifted, out=high)
    slack = RANGE_SLACK * (high - low)
    return np.maximum(np.maximum(a - high - slack, low - slack - a), 0).max(axis=2)


def _persistent_max(residual: np.ndarray) -> float:
    """The largest residual that holds over a whole 2x2 block."""
    if min(residual.shape) < 2:
        return float(residual.max())
    blocks = np.minimum(np.minimum(residual[:-1, :-1], residual[1:, :-1]), np.minimum(residual[:-1, 1:], residual[1:, 1:]))
    return float(blocks.max())


def _contrast(picture: np.ndarray) -> float:
    """The spread of the picture's values (0.5th to 99.5th percentile), on its widest channel."""
    low, high = np.quantile(picture.reshape(-1, 3), [0.005, 0.995], axis=0)
    return float((high - low).max())
