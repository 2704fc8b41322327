"""Reading image files: validation, decoding as a person sees them, content hashes.

Decoding is where an upload costs memory and where pixels go wrong, so it
follows three rules:

- **Never larger than needed.** CLIP only needs its input size (224 pixels a
  side for ViT-B-32, 128 for the demo model). JPEGs are decoded downscaled
  by the decoder itself (``draft()``: 1/2, 1/4 or 1/8). PNGs of 1, 2 or 4
  bits per pixel, the decompression bombs' favourite (a 7 KB 1-bit PNG of
  6300x6300 decodes to 40 MB in Pillow's one-byte-per-pixel modes), are
  decoded packed, as they are stored, and unpacked a strip at a time. Any
  other frame is converted and box-reduced a strip at a time, so no
  full-size converted copy ever exists. At most ``MAX_CONCURRENT_DECODES``
  decodes run at once per process.
- **As a viewer shows them.** The EXIF orientation is applied (here and in
  the reported width/height); 16-bit and 32-bit integer and float greyscale
  are scaled to 8 bits by their range (Pillow's ``convert("L")`` clips them,
  which turns a 16-bit PNG white); transparency is composited on white;
  CMYK, palette and greyscale become RGB.
- **Never silently wrong.** A frame with detail that converts to a single
  flat colour is a conversion bug, reported as :class:`InvalidImage` rather
  than embedded as a blank.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from .conf import app_settings

# Pillow formats we accept, with their MIME types.
MIME_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}

# EXIF orientation -> the transposition that makes the image upright (as ImageOps.exif_transpose).
ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Orientations that swap width and height.
SIDEWAYS_ORIENTATIONS = frozenset({5, 6, 7, 8})

# Modes whose values are numbers wider than 8 bits, scaled by their range.
WIDE_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
# Modes with an alpha band (last), composited on white.
ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
# PNG raw modes packed below 8 bits per pixel: (mode of the unpacked pixels, bits per pixel).
PACKED_PNG_RAWMODES = {"1": ("1", 1), "L;2": ("L", 2), "L;4": ("L", 4), "P;1": ("P", 1), "P;2": ("P", 2), "P;4": ("P", 4)}
# Pixels converted per strip of a large frame: ~4 MB of RGBA.
STRIP_PIXELS = 1 << 20


class InvalidImage(ValueError):
    """The file is not an image we can read; retrying will not help."""


@dataclass(frozen=True)
class ImageInfo:
    """An image's format and size as displayed (after its EXIF orientation)."""

    width: int
    height: int
    mime_type: str


def get_orientation(image: Image.Image) -> int:
    """The EXIF orientation (1 = upright) without decoding pixels.

    A PNG keeps its ``eXIf`` chunk before the image data; Pillow's
    ``getexif()`` would decode the whole image to look after it.
    """
    if image.format == "PNG" and "exif" not in image.info:
        return 1
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    except (OSError, SyntaxError, ValueError, TypeError):
        return 1  # unreadable EXIF: show the pixels as stored
    return orientation if orientation in ORIENTATION_TRANSPOSE else 1


def load_decoders() -> None:
    """Import every Pillow format plugin now (tens of ms), not on the first upload a process reads.

    Pillow imports its plugins on the first ``Image.open``; workers and web
    processes call this as they start (:func:`assetsearch.tasks.warm_up_worker`,
    the example site's gunicorn hook).
    """
    Image.init()


def inspect_image(file: IO[bytes]) -> ImageInfo:
    """Read the header only: format and displayed size, checked against the limits.

    Raises :class:`InvalidImage` for non-images, unsupported formats and
    images over ``MAX_IMAGE_PIXELS``. Leaves the file at position 0.
    """
    file.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                width, height, fmt = image.width, image.height, image.format
                if get_orientation(image) in SIDEWAYS_ORIENTATIONS:
                    width, height = height, width
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        file.seek(0)
        if isinstance(exc, UnidentifiedImageError):
            raise InvalidImage("The file is not an image (or its format is not supported).") from exc
        raise InvalidImage("The image has too many pixels.") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        file.seek(0)
        raise InvalidImage(f"The image header could not be read: {exc}") from exc
    file.seek(0)
    if fmt not in MIME_TYPES:
        raise InvalidImage(f"Unsupported image format {fmt}; use one of {', '.join(sorted(MIME_TYPES))}.")
    limit = app_settings.MAX_IMAGE_PIXELS
    if width * height > limit:
        raise InvalidImage(f"The image is {width}x{height} = {width * height:,} pixels; the limit is {limit:,}.")
    return ImageInfo(width=width, height=height, mime_type=MIME_TYPES[fmt])


# --- concurrency -----------------------------------------------------------

_slots_lock = threading.Lock()
_slots: tuple[int, threading.BoundedSemaphore] | None = None


def get_decode_slots() -> threading.BoundedSemaphore:
    """The process's semaphore of ``MAX_CONCURRENT_DECODES`` slots (made again when the setting changes)."""
    global _slots
    limit = max(1, int(app_settings.MAX_CONCURRENT_DECODES))
    with _slots_lock:
        if _slots is None or _slots[0] != limit:
            _slots = (limit, threading.BoundedSemaphore(limit))
        return _slots[1]


@contextlib.contextmanager
def decode_slot() -> Iterator[None]:
    """Hold one of the process's decode slots; waits while all are taken."""
    slots = get_decode_slots()
    with slots:
        yield


# --- decoding ----------------------------------------------------------------


def decode_search_image(file: IO[bytes], side: int) -> Image.Image:
    """:func:`decode_for_model` for a search's query image, decoded in the web process.

    JPEGs and 1/2/4-bit PNGs are decoded at reduced size whatever their pixel
    count. Every other format (truecolour PNG, WebP, TIFF, GIF, BMP) is
    decoded in full by Pillow, at up to 4 bytes a pixel, so above
    ``MAX_QUERY_IMAGE_PIXELS`` it is refused (:class:`InvalidImage`, a 400)
    before decoding: one search image then stays under ~40 MB.
    """
    return decode_for_model(file, side, max_full_decode_pixels=app_settings.MAX_QUERY_IMAGE_PIXELS)


def decode_for_model(file: IO[bytes], side: int, *, max_full_decode_pixels: int | None = None) -> Image.Image:
    """Decode to a small upright RGB image for the encoder, never larger than needed.

    ``side`` is the smallest side to keep (the encoder's input size). Raises :class:`InvalidImage` for anything Pillow cannot
    decode in full (truncated files included), for frames with detail
    that convert to one flat colour, and for images over
    ``max_full_decode_pixels`` (if given) that cannot be decoded at reduced size.
    """
    inspect_image(file)
    with decode_slot():
        try:
            with Image.open(file) as image:
                orientation = get_orientation(image)
                image = _decode_reduced(image, side, max_full_decode_pixels)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise InvalidImage(f"The image could not be decoded: {exc}") from exc
    if orientation in ORIENTATION_TRANSPOSE:
        image = image.transpose(ORIENTATION_TRANSPOSE[orientation])
    if image.mode == "RGBA":
        image = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image)
    image = image.convert("RGB")
    if min(image.size) > side:
        scale = side / min(image.size)
        image.thumbnail((max(side, round(image.width * scale)), max(side, round(image.height * scale))))
    return image


def _decode_reduced(image: Image.Image, side: int, max_full_decode_pixels: int | None = None) -> Image.Image:
    """Decode ``image`` to RGB or RGBA, box-reduced to about ``2 * side`` on its short side."""
    rows = _packed_png_rows(image)
    if rows is None:
        if image.format == "JPEG":
            image.draft(None, (side, side))  # the decoder downscales by 1/2, 1/4 or 1/8
        elif max_full_decode_pixels is not None and image.width * image.height > max_full_decode_pixels:
            raise InvalidImage(
                f"The image is {image.width}x{image.height} = {image.width * image.height:,} pixels; a {image.format} search "
                f"image is decoded in full, so the limit is {max_full_decode_pixels:,} pixels (send a JPEG, or a smaller image)."
            )
        image.load()
        rows = _frame_rows(image)
    width, height = image.size
    # Box-reduce to no less than twice the target; thumbnail() then resamples properly.
    factor = max(1, min(width, height) // (2 * side))
    convert = _colour_converter(image)
    check_flat = image.mode not in ("P", "PA")  # palette indices say nothing about colours

    rows_per_strip = max(factor, STRIP_PIXELS // max(width, 1) // factor * factor)
    reduced: Image.Image | None = None
    source_detail = converted_detail = False
    for top in range(0, height, rows_per_strip):
        strip = rows(top, min(height, top + rows_per_strip))
        colour = convert(strip)
        if check_flat and not source_detail:
            source_detail = _has_detail(strip)
        if not converted_detail:
            converted_detail = _has_detail(colour, bands=3)
        if factor > 1:
            colour = colour.reduce(factor)
        if reduced is None:
            if top + rows_per_strip >= height:
                reduced = colour  # the whole frame in one strip
                break
            reduced = Image.new(colour.mode, (colour.width, -(-height // factor)))
        reduced.paste(colour, (0, top // factor))
    assert reduced is not None
    if source_detail and not converted_detail:
        raise InvalidImage(f"The {image.mode} image has detail but decoded to one flat colour; it cannot be embedded faithfully.")
    return reduced


def _frame_rows(image: Image.Image) -> Callable[[int, int], Image.Image]:
    """Rows ``top..bottom`` of a decoded frame."""
    def rows(top: int, bottom: int) -> Image.Image:
        if top == 0 and bottom == image.height:
            return image
        return image.crop((0, top, image.width, bottom))

    return rows


def _packed_png_rows(image: Image.Image) -> Callable[[int, int], Image.Image] | None:
    """Decode a 1/2/4-bit PNG packed (one byte holds 8/4/2 pixels); None for other images.

    PNG filters work on bytes, and for these depths on single bytes as for
    8-bit greyscale, so the stored rows decode exactly as an 8-bit "L" image
    ``ceil(width * bits / 8)`` wide. The returned function unpacks rows
    into an image of the PNG's own mode (with its palette and transparency).
    """
    if image.format != "PNG" or image.info.get("interlace") or len(image.tile) != 1:
        return None
    tile = image.tile[0]
    packed = PACKED_PNG_RAWMODES.get(tile.args if isinstance(tile.args, str) else "")
    if tile.codec_name != "zip" or packed is None:
        return None
    mode, bits = packed
    width, height = image.size
    row_bytes = -(-width * bits // 8)
    # The palette as read from the header (getpalette() would decode the image).
    palette = (image.palette.palette, image.palette.rawmode or image.palette.mode) if mode == "P" and image.palette else None
    info = {k: v for k, v in image.info.items() if k == "transparency"}
    # Pillow has no public way to decode a PNG at another raw mode; these are
    # the attributes Image.open() itself fills in.
    image._size = (row_bytes, height)
    image._mode = "L"
    image.tile = [tile._replace(extents=(0, 0, row_bytes, height), args="L")]
    image.load()
    data = np.asarray(image)
    image._size = (width, height)  # the caller reads the real size; the pixels are in `data`
    image._mode = mode
    # Levels of the unpacked values on 0..255, for greyscale.
    scale = 255 // ((1 << bits) - 1)

    def rows(top: int, bottom: int) -> Image.Image:
        unpacked = np.unpackbits(data[top:bottom], axis=1)
        if bits > 1:
            groups = unpacked.reshape(unpacked.shape[0], -1, bits)
            unpacked = np.zeros(groups.shape[:2], dtype=np.uint8)
            for bit in range(bits):
                unpacked = (unpacked << 1) | groups[:, :, bit]
        values = np.ascontiguousarray(unpacked[:, :width], dtype=np.uint8)
        if mode == "P":
            strip = Image.frombytes("P", (values.shape[1], values.shape[0]), values.tobytes())
            if palette:
                strip.putpalette(*palette)
        else:
            strip = Image.fromarray(values * scale, "L")
        strip.info.update(info)
        return strip

    return rows


def _colour_converter(image: Image.Image) -> Callable[[Image.Image], Image.Image]:
    """A function that converts strips of ``image`` to RGB, or RGBA when it has transparency.

    Wide modes are scaled by a range that is the same for every strip:
    16 bits for the 16-bit modes, and for 32-bit integers and floats the
    common ranges (0..255, 0..65535 integers; 0..1, 0..255 floats), else the
    frame's own minimum to maximum.
    """
    mode = image.mode
    if mode in WIDE_MODES:
        low, high = _wide_range(image)
        scale = 255.0 / (high - low) if high > low else 1.0
        offset = -low * scale + (0.5 if mode != "F" else 0.0)

        def wide(strip: Image.Image) -> Image.Image:
            if strip.mode != "I" and strip.mode != "F":
                strip = strip.convert("I")
            return strip.point(lambda v: v * scale + offset).convert("L").convert("RGB")

        return wide
    if mode in ALPHA_MODES or "transparency" in image.info:
        return lambda strip: strip.convert("RGBA")
    if mode == "RGB":
        return lambda strip: strip
    return lambda strip: strip.convert("RGB")


def _wide_range(image: Image.Image) -> tuple[float, float]:
    if image.mode.startswith("I;16"):
        return 0.0, 65535.0
    low, high = image.getextrema()
    if image.mode == "F":
        for top in (1.0, 255.0):
            if low >= 0 and high <= top:
                return 0.0, top
        return float(low), float(high)
    for top in (255, 65535):
        if low >= 0 and high <= top:
            return 0.0, float(top)
    return float(low), float(high)


def _has_detail(image: Image.Image, bands: int | None = None) -> bool:
    """Whether any of the first ``bands`` bands (default: all but alpha) has two different values."""
    extrema = image.getextrema()
    if not isinstance(extrema[0], tuple):
        extrema = (extrema,)
    if bands is None:
        bands = len(extrema) - (1 if image.mode in ALPHA_MODES else 0)
    return any(low != high for low, high in extrema[:bands])


def content_hash(file: IO[bytes]) -> str:
    """SHA-256 of the file's bytes, read in chunks; leaves the file at position 0."""
    file.seek(0)
    digest = hashlib.sha256()
    for chunk in iter(lambda: file.read(1 << 20), b""):
        digest.update(chunk)
    file.seek(0)
    return digest.hexdigest()
