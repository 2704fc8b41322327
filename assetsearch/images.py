"""Reading image files: validation, cheap decoding, content hashes.

Decoding is the worker's hidden cost: a 12-megapixel JPEG takes ~100 ms to
decode in full, ~10 ms when Pillow's ``draft()`` lets the JPEG decoder
downscale by 1/2, 1/4 or 1/8 on the fly. CLIP only needs its input size
(224 pixels a side for ViT-B-32, 128 for the demo model), so we ask for that.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from typing import IO

from PIL import Image, UnidentifiedImageError

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


class InvalidImage(ValueError):
    """The file is not an image we can read; retrying will not help."""


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    mime_type: str


def inspect_image(file: IO[bytes]) -> ImageInfo:
    """Read the header only: format and size, checked against the limits.

    Raises :class:`InvalidImage` for non-images, unsupported formats and
    images over ``MAX_IMAGE_PIXELS``. Leaves the file at position 0.
    """
    file.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                width, height, fmt = image.width, image.height, image.format
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


def decode_for_model(file: IO[bytes], side: int | None = None) -> Image.Image:
    """Decode to a small RGB image for the encoder, never larger than needed.

    ``side`` is the smallest side to keep; by default the default encoder's
    input size. Raises :class:`InvalidImage` for anything Pillow cannot
    decode in full (truncated files included).
    """
    if side is None:
        from .encoders import get_encoder

        side = get_encoder().image_size
    inspect_image(file)
    try:
        with Image.open(file) as image:
            if image.format == "JPEG":
                image.draft("RGB", (side, side))
            image.load()
            if image.mode in ("RGBA", "LA", "P"):
                image = image.convert("RGBA")
                background = Image.new("RGBA", image.size, (255, 255, 255, 255))
                image = Image.alpha_composite(background, image)
            image = image.convert("RGB")
            if min(image.size) > side:
                image.thumbnail((side * image.width // min(image.size), side * image.height // min(image.size)))
            return image
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidImage(f"The image could not be decoded: {exc}") from exc


def content_hash(file: IO[bytes]) -> str:
    """SHA-256 of the file's bytes, read in chunks; leaves the file at position 0."""
    file.seek(0)
    digest = hashlib.sha256()
    for chunk in iter(lambda: file.read(1 << 20), b""):
        digest.update(chunk)
    file.seek(0)
    return digest.hexdigest()
