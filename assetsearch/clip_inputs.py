"""open_clip's model inputs without torch: the CLIP tokenizer and the eval preprocess.

open_clip's ``tokenizer`` module imports torch at the top (its tokenizers
return tensors), and its preprocess is torchvision. A web process that
encodes query texts with an exported text tower would import ~1 GB of torch
for them. This module reproduces both with NumPy and Pillow:

* :class:`CLIPTokenizer` is open_clip's ``SimpleTokenizer`` (OpenAI CLIP's
  BPE, ``clean="lower"``, truncation keeping the end-of-text token), reading
  the vocabulary file open_clip ships; it returns the same ids.
* :func:`preprocess_image` is open_clip's eval transform for
  ``resize_mode="shortest"`` or ``"squash"``: torchvision's resize on a PIL
  image is Pillow's resize at the size torchvision computes, then a centre
  crop, ``ToTensor`` and ``Normalize`` -- the same pixels.
* :func:`fit_views` is how a non-square image is fitted to the model's square
  input before that preprocess (an encoder's ``FIT`` option): one view
  (:func:`fit_image`), or several square tiles whose vectors
  :func:`pool_views` makes one. Both the torch encoder and the exported ones
  call them, so they see the same pixels and give the same vectors.

Both are checked against open_clip when a model is exported and again when an
exported model is loaded (:mod:`assetsearch.runtime_encoders`).
"""

from __future__ import annotations

import gzip
import html
import importlib.util
import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# Preprocess options this module reproduces exactly; others need open_clip's transform.
SUPPORTED_RESIZE_MODES = ("shortest", "squash")
PIL_INTERPOLATIONS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}

# An encoder's FIT option: how a non-square image becomes the model's square input.
# "centre-crop": the model's own preprocess (short side resized, the middle
# cropped: the ends of a wide or tall image are cut away). "letterbox": the
# whole image, its long side resized to the input and padded to a square with
# the model's mean colour (zero after normalisation), as LLaVA's expand2square.
# "tiles": overlapping square tiles across the long side (TILES_BEYOND_RATIO
# more than its ratio needs), each embedded as the model is trained to see a
# square picture, pooled into one vector (pool_views).
FIT_MODES = ("letterbox", "centre-crop", "tiles")
TILED_FIT = "tiles"
TILES_BEYOND_RATIO = 1
# pool_views: the tiles' mean (the whole picture), plus the tile that shows
# what the others do not (an object at one end), weighing
# TILE_POOL_DISTINCT_WEIGHT times as much as all of them together; which tile
# that is, softly: softmax(-TILE_POOL_SHARPNESS * cosine to the tiles' mean).
# The distinct tile alone (sharpness 4-5, the pooling until 2026-12-07) read an
# object in the middle of a wide image worse than one at an end, because the
# tiles that cut it in half were the most distinct; the mean alone loses the
# ends. Measured with the bundled model (README "Fitting non-square images").
TILE_POOL_SHARPNESS = 20.0
TILE_POOL_DISTINCT_WEIGHT = 0.5
# FIT "auto" (the default): the fit a model reads best, open_clip's centre
# crop (PREPROCESS_FIT) unless it says otherwise (encoders.MODEL_FITS). A
# vector key without ";fit=" names PREPROCESS_FIT; every other fit is in it.
AUTO_FIT = "auto"
PREPROCESS_FIT = "centre-crop"


def open_clip_dir() -> Path:
    """The installed open_clip package folder, found without importing it (that imports torch)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("open_clip_torch is not installed: its vocabulary and model configs are needed")
    return Path(next(iter(spec.submodule_search_locations)))


@lru_cache(maxsize=1)
def _bytes_to_unicode() -> dict[int, str]:
    # CLIP's reversible byte -> printable character table (see open_clip.tokenizer).
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes)))


class CLIPTokenizer:
    """OpenAI CLIP's BPE tokenizer as open_clip's ``SimpleTokenizer`` runs it, returning NumPy ids."""

    def __init__(self, context_length: int = 77, bpe_path: str | Path | None = None) -> None:
        import ftfy  # noqa: F401  (fail here, not on the first query, when it is missing)
        import regex

        self.context_length = context_length
        path = Path(bpe_path) if bpe_path else open_clip_dir() / "bpe_simple_vocab_16e6.txt.gz"
        merges = [tuple(line.split()) for line in gzip.open(path).read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]]
        vocab = list(_bytes_to_unicode().values())
        vocab += [token + "</w>" for token in vocab]
        vocab += ["".join(merge) for merge in merges]
        special = ["<start_of_text>", "<end_of_text>"]
        vocab += special
        self.encoder = {token: index for index, token in enumerate(vocab)}
        self.bpe_ranks = {merge: rank for rank, merge in enumerate(merges)}
        self.sot_token_id, self.eot_token_id = (self.encoder[token] for token in special)
        self._cache: dict[str, str] = {token: token for token in special}
        self._pattern = regex.compile(
            "|".join(special) + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", regex.IGNORECASE
        )

    def _bpe(self, token: str) -> str:
        if token in self._cache:
            return self._cache[token]
        word = (*token[:-1], token[-1] + "</w>")
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            merged: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        result = self._cache[token] = " ".join(word)
        return result

    @staticmethod
    def clean(text: str) -> str:
        """open_clip's ``clean="lower"``: fix mojibake, unescape HTML twice, collapse whitespace, lower-case."""
        import ftfy

        return " ".join(html.unescape(html.unescape(ftfy.fix_text(text))).split()).lower()

    def encode(self, text: str) -> list[int]:
        """The BPE ids of ``text``, without start/end tokens."""
        byte_encoder = _bytes_to_unicode()
        ids: list[int] = []
        for token in self._pattern.findall(self.clean(text)):
            token = "".join(byte_encoder[byte] for byte in token.encode("utf-8"))
            ids.extend(self.encoder[piece] for piece in self._bpe(token).split(" "))
        return ids

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """An (N, context_length) int64 array, zero-padded; too long texts end with end-of-text."""
        result = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.sot_token_id, *self.encode(text), self.eot_token_id]
            if len(ids) > self.context_length:
                ids = ids[: self.context_length]
                ids[-1] = self.eot_token_id
            result[row, : len(ids)] = ids
        return result


def check_preprocess_config(config: dict[str, Any]) -> None:
    """Raise ValueError when :func:`preprocess_image` cannot reproduce open_clip's transform for ``config``."""
    if config.get("resize_mode", "shortest") not in SUPPORTED_RESIZE_MODES:
        raise ValueError(f"resize_mode {config['resize_mode']!r} is not supported; supported: {', '.join(SUPPORTED_RESIZE_MODES)}")
    if config.get("interpolation", "bicubic") not in PIL_INTERPOLATIONS:
        raise ValueError(f"interpolation {config['interpolation']!r} is not supported; supported: {', '.join(PIL_INTERPOLATIONS)}")
    size = config.get("size", 224)
    if isinstance(size, (list, tuple)) and size[0] != size[1] and config.get("resize_mode", "shortest") != "squash":
        raise ValueError(f"non-square input size {size} is not supported")


def fit_views(image: Image.Image, fit: str, config: dict[str, Any]) -> list[Image.Image]:
    """The pictures the model sees of ``image`` for ``fit`` (:data:`FIT_MODES`): one, or its tiles.

    Their vectors become the image's one vector through :func:`pool_views`.
    """
    if fit == TILED_FIT:
        return square_tiles(image)
    return [fit_image(image, fit, config)]


def fit_all(images: Sequence[Image.Image], fit: str, config: dict[str, Any]) -> tuple[list[Image.Image], list[int]]:
    """Every picture the model sees of ``images`` (:func:`fit_views`, in order), and how many are each image's,
    for :func:`pool_views`."""
    views = [fit_views(image, fit, config) for image in images]
    return [picture for image_views in views for picture in image_views], [len(image_views) for image_views in views]


def square_tiles(image: Image.Image) -> list[Image.Image]:
    """``image`` itself when square, else ``ceil(ratio) + TILES_BEYOND_RATIO`` squares of its short side,
    evenly spaced from one end of the long side to the other (so they overlap, and an
    object cut by one tile's edge is whole in the next)."""
    width, height = image.size
    if width == height:
        return [image]
    side, long = min(width, height), max(width, height)
    count = math.ceil(long / side) + TILES_BEYOND_RATIO
    offsets = [round(i * (long - side) / (count - 1)) for i in range(count)]
    if width > height:
        return [image.crop((offset, 0, offset + side, side)) for offset in offsets]
    return [image.crop((0, offset, side, offset + side)) for offset in offsets]


def pool_views(vectors: np.ndarray, counts: Sequence[int]) -> np.ndarray:
    """One unit vector per image from its views' unit vectors (``counts[i]`` consecutive rows each).

    One view is kept as it is. Several (tiles) are averaged with weights
    ``1/n + TILE_POOL_DISTINCT_WEIGHT * softmax(-TILE_POOL_SHARPNESS * cos(view, mean of the views))``,
    then normalised: the mean of the tiles, and the tile that differs from
    the rest on top of it.
    """
    pooled = np.empty((len(counts), vectors.shape[1]), dtype=np.float32)
    start = 0
    for row, count in enumerate(counts):
        views = vectors[start : start + count].astype(np.float64)
        start += count
        if count == 1:
            pooled[row] = views[0]
            continue
        mean = views.mean(axis=0)
        closeness = views @ (mean / np.linalg.norm(mean))
        distinct = np.exp(-TILE_POOL_SHARPNESS * (closeness - closeness.min()))
        weights = 1 / count + TILE_POOL_DISTINCT_WEIGHT * distinct / distinct.sum()
        combined = weights @ views
        pooled[row] = combined / np.linalg.norm(combined)
    if start != len(vectors):
        raise ValueError(f"{len(vectors)} view vectors for {start} views")
    return pooled


def fit_key(fit: str) -> str:
    """``fit`` as an encoder key names it: tiles with their count and pooling, which change the vectors too."""
    if fit == TILED_FIT:
        return f"{fit}+{TILES_BEYOND_RATIO};pool={TILE_POOL_SHARPNESS:g}x{TILE_POOL_DISTINCT_WEIGHT:g}"
    return fit


def fit_image(image: Image.Image, fit: str, config: dict[str, Any]) -> Image.Image:
    """``image`` fitted to the square input of the model whose preprocess is ``config``, for a one-view ``fit``.

    A square image, and any image under ``"centre-crop"``, is returned as it
    is: the model's preprocess (:func:`preprocess_image` or open_clip's) does
    the rest. ``"letterbox"`` shrinks the long side to the input size first (the
    padding would only be resized away) and pads the short side on both ends.
    ``"tiles"`` gives several pictures: see :func:`fit_views`.
    """
    if fit not in FIT_MODES or fit == TILED_FIT:
        one_view = [mode for mode in FIT_MODES if mode != TILED_FIT]
        raise ValueError(f"FIT {fit!r} is not one of {', '.join(one_view)} (for {TILED_FIT!r}, use fit_views)")
    if fit == "centre-crop" or image.width == image.height:
        return image
    size = config["size"]
    side = max(size) if isinstance(size, (list, tuple)) else int(size)
    if max(image.size) > side:
        scale = side / max(image.size)
        target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(target, PIL_INTERPOLATIONS[config.get("interpolation", "bicubic")])
    long = max(image.size)
    fill = tuple(round(channel * 255) for channel in config["mean"])
    canvas = Image.new("RGB", (long, long), fill)
    canvas.paste(image.convert("RGB"), ((long - image.width) // 2, (long - image.height) // 2))
    return canvas


def preprocess_image(image: Image.Image, config: dict[str, Any]) -> np.ndarray:
    """A (3, size, size) float32 array: open_clip's eval transform for ``config`` (its ``preprocess_cfg``)."""
    size = config["size"]
    height, width = (size, size) if isinstance(size, int) else size
    resample = PIL_INTERPOLATIONS[config.get("interpolation", "bicubic")]
    if config.get("resize_mode", "shortest") == "squash":
        if image.size != (width, height):
            image = image.resize((width, height), resample)
    else:
        # torchvision's Resize(int): the short side becomes `height`, the long side is truncated.
        short, long = sorted(image.size)
        new_short, new_long = height, int(height * long / short)
        target = (new_short, new_long) if image.width <= image.height else (new_long, new_short)
        if image.size != target:
            image = image.resize(target, resample)
        left = int(round((image.width - width) / 2.0))
        top = int(round((image.height - height) / 2.0))
        image = image.crop((left, top, left + width, top + height))
    # Converted after resizing, as open_clip does (it matters for RGBA and palette images).
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / np.float32(255.0)
    mean = np.asarray(config["mean"], dtype=np.float32)
    std = np.asarray(config["std"], dtype=np.float32)
    return np.ascontiguousarray(((pixels - mean) / std).transpose(2, 0, 1))
