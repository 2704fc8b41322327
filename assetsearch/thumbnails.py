"""Thumbnails: small JPEGs of assets, made on first request and kept in storage.

A thumbnail is named after its original's file token and its size
(``<THUMBNAIL_PREFIX>/ab/abcdef...-256.jpg``, :func:`assetsearch.files.get_file_token`):
a replaced file gets new thumbnails without invalidating anything, the name
cannot be computed from the image's bytes, and a cached one costs a single
``exists()``. Only the sizes in ``THUMBNAIL_SIZES`` are made: a client
cannot fill the storage by asking for every size from 1 to 10,000.

Served by the thumbnail view (:mod:`assetsearch.api.views`, with the
API's permissions) through :func:`assetsearch.files.serve_file`; the admin
links to it.
"""

from __future__ import annotations

import io
from typing import IO

from django.core.files.base import ContentFile
from django.urls import NoReverseMatch, reverse
from PIL import Image, ImageOps

from .conf import app_settings
from .files import MISSING_FILE_MESSAGE, ServedFile, download_name, get_file_token
from .images import InvalidImage, inspect_image
from .models import Asset

THUMBNAIL_TYPE = "image/jpeg"


class ThumbnailUnavailable(Exception):
    """The asset's file is missing or cannot be decoded; the message says which."""


def get_thumbnail_sizes() -> list[int]:
    return sorted(int(size) for size in app_settings.THUMBNAIL_SIZES)


def check_thumbnail_size(size: int | None) -> int:
    """``size``, or the default size when None; ValueError for a size not offered."""
    if size is None:
        return int(app_settings.THUMBNAIL_DEFAULT_SIZE)
    if size not in get_thumbnail_sizes():
        sizes = ", ".join(str(s) for s in get_thumbnail_sizes())
        raise ValueError(f"Thumbnail size {size} is not offered; use one of {sizes}.")
    return size


def get_thumbnail_name(asset: Asset, size: int) -> str:
    """The storage name of ``asset``'s thumbnail at ``size`` (made or not)."""
    return _thumbnail_name(asset.image.name, size)


def get_thumbnail_names(stored_name: str) -> list[str]:
    """The storage names of the thumbnails, in every offered size, of the original stored as ``stored_name``."""
    return [_thumbnail_name(stored_name, size) for size in get_thumbnail_sizes()]


def _thumbnail_name(stored_name: str, size: int) -> str:
    token = get_file_token(stored_name)
    return f"{app_settings.THUMBNAIL_PREFIX.rstrip('/')}/{token[:2]}/{token}-{size}.jpg"


def render_thumbnail(file: IO[bytes], size: int) -> bytes:
    """JPEG bytes of the image in ``file`` scaled to fit ``size`` x ``size``.

    Transparent areas become white and the EXIF orientation is applied.
    Raises :class:`InvalidImage` for files that cannot be decoded, and for
    images over ``MAX_IMAGE_PIXELS`` before decoding them.
    """
    inspect_image(file)
    try:
        with Image.open(file) as image:
            if image.format == "JPEG":
                # Let the JPEG decoder downscale while decoding: a fraction of the work.
                image.draft("RGB", (size, size))
            image.thumbnail((size, size), Image.Resampling.LANCZOS)
            image = ImageOps.exif_transpose(image)
            if image.mode in ("RGBA", "LA", "P", "PA"):
                image = image.convert("RGBA")
                background = Image.new("RGBA", image.size, (255, 255, 255, 255))
                image = Image.alpha_composite(background, image)
            image = image.convert("RGB")
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=int(app_settings.THUMBNAIL_QUALITY), optimize=True)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidImage(f"The image could not be decoded: {exc}") from exc
    return buffer.getvalue()


def get_thumbnail(asset: Asset, size: int | None = None) -> str:
    """The storage name of ``asset``'s thumbnail at ``size``, made and stored if missing.

    Raises ValueError for a size not in ``THUMBNAIL_SIZES`` and
    :class:`ThumbnailUnavailable` when the file is missing or not an image.
    """
    size = check_thumbnail_size(size)
    storage = asset.image.storage
    name = get_thumbnail_name(asset, size)
    if storage.exists(name):
        return name
    try:
        with asset.image.open("rb") as file:
            data = render_thumbnail(file, size)
    except FileNotFoundError:
        raise ThumbnailUnavailable(MISSING_FILE_MESSAGE) from None
    except InvalidImage as exc:
        raise ThumbnailUnavailable(str(exc)) from exc
    saved = storage.save(name, ContentFile(data))
    if saved != name:
        # Another request made it meanwhile and the storage picked a new name: keep one copy.
        storage.delete(saved)
    return name


def thumbnail_file(asset: Asset, size: int | None = None) -> ServedFile:
    """``asset``'s thumbnail at ``size``, made if missing, as :func:`~assetsearch.files.serve_file` sends it."""
    name = get_thumbnail(asset, size)
    token = name.rsplit("/", 1)[-1].removesuffix(".jpg")
    return ServedFile(
        storage=asset.image.storage,
        name=name,
        content_type=THUMBNAIL_TYPE,
        filename=download_name(asset, THUMBNAIL_TYPE),
        etag=f'"{token}"',
    )


def get_thumbnail_url(asset: Asset, size: int | None = None) -> str:
    """The URL that serves ``asset``'s thumbnail (with the API's permissions).

    Falls back to the original file's URL when the site has not included
    ``assetsearch.urls``.
    """
    try:
        url = reverse("assetsearch:asset-thumbnail", args=[asset.pk])
    except NoReverseMatch:
        return asset.image.url
    if size is not None and size != app_settings.THUMBNAIL_DEFAULT_SIZE:
        url += f"?size={size}"
    return url
