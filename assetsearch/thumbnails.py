"""Thumbnails: small JPEGs of indexed objects, made on first request and kept in storage.

A thumbnail is named after its original's file token and its size
(``<THUMBNAIL_PREFIX>/ab/abcdef...-256.jpg``, :func:`assetsearch.files.get_file_token`):
a replaced file gets new thumbnails without invalidating anything, the name
cannot be computed from the image's bytes, and a cached one costs a single
``exists()``. Only the sizes in ``THUMBNAIL_SIZES`` are made: a client
cannot fill the storage by asking for every size from 1 to 10,000.

Any registered object has thumbnails (given its
:class:`~assetsearch.indexes.BaseImageIndex`): a host object's are named
after its model, id and file name, kept in its image field's storage under
the app's own prefix; the host's files are never touched.

Served by the thumbnail views (:mod:`assetsearch.api.views`, with the
API's permissions) through :func:`assetsearch.files.serve_file`; the admin
links to them.
"""

from __future__ import annotations

import io
from typing import IO, Any

from django.core.files.base import ContentFile
from django.db.models import Model
from django.urls import NoReverseMatch
from PIL import Image, ImageOps

from .conf import app_settings
from .files import MISSING_FILE_MESSAGE, ServedFile, download_name, get_file_token
from .images import InvalidImage, inspect_image
from .models import Asset
from .urlreverse import reverse_pk

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


def get_thumbnail_name(obj: Model, size: int, index: Any = None) -> str:
    """The storage name of ``obj``'s thumbnail at ``size`` (made or not); ``index`` is its
    :class:`~assetsearch.indexes.BaseImageIndex` (None: an asset)."""
    return _thumbnail_name(thumbnail_source(obj, index), size)


def thumbnail_source(obj: Model, index: Any = None) -> str:
    """What ``obj``'s thumbnails are named after: an asset's stored file name; a host object's model, id and file."""
    if index is None or index.owns_files:
        return obj.image.name
    return host_thumbnail_source(index, obj.pk, index.get_source_key(obj))


def host_thumbnail_source(index: Any, pk: Any, source_key: str) -> str:
    """What the thumbnails of a host object (``index`` does not own its files) with image ``source_key`` are named after."""
    return f"{index.label}:{pk}:{source_key}"


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


def get_thumbnail(obj: Model, size: int | None = None, index: Any = None) -> str:
    """The storage name of ``obj``'s thumbnail at ``size``, made and stored if missing.

    ``obj`` is an asset, or any registered object with its ``index``. Raises
    ValueError for a size not in ``THUMBNAIL_SIZES`` and
    :class:`ThumbnailUnavailable` when the file is missing or not an image.
    """
    size = check_thumbnail_size(size)
    storage = index.get_storage(obj) if index is not None else obj.image.storage
    name = get_thumbnail_name(obj, size, index)
    if storage.exists(name):
        return name
    try:
        with (index.open_image(obj) if index is not None else obj.image.open("rb")) as file:
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


def thumbnail_file(obj: Model, size: int | None = None, index: Any = None) -> ServedFile:
    """``obj``'s thumbnail at ``size``, made if missing, as :func:`~assetsearch.files.serve_file` sends it.

    ``obj`` is an asset (``index`` None) or any registered object with its index.
    """
    name = get_thumbnail(obj, size, index)
    token = name.rsplit("/", 1)[-1].removesuffix(".jpg")
    if isinstance(obj, Asset):
        filename = download_name(obj, THUMBNAIL_TYPE)
    else:
        filename = f"{obj._meta.model_name}-{obj.pk}.jpg"
    return ServedFile(
        storage=index.get_storage(obj) if index is not None else obj.image.storage,
        name=name,
        content_type=THUMBNAIL_TYPE,
        filename=filename,
        etag=f'"{token}"',
    )


def get_thumbnail_url(asset: Asset, size: int | None = None) -> str:
    """The URL that serves ``asset``'s thumbnail (with the API's permissions).

    Falls back to the original file's URL when the site has not included
    ``assetsearch.urls``.
    """
    try:
        url = reverse_pk("assetsearch:asset-thumbnail", asset.pk)
    except NoReverseMatch:
        return asset.image.url
    if size is not None and size != app_settings.THUMBNAIL_DEFAULT_SIZE:
        url += f"?size={size}"
    return url


def get_object_thumbnail_url(index: Any, obj: Model, size: int | None = None) -> str:
    """The URL of the API's thumbnail of any registered object (the original's URL without ``assetsearch.urls``)."""
    try:
        url = reverse_pk("assetsearch:object-thumbnail", obj.pk, index.label)
    except NoReverseMatch:
        file = getattr(obj, index.image_field, None) if index.image_field else None
        return file.url if file else ""
    if size is not None and size != app_settings.THUMBNAIL_DEFAULT_SIZE:
        url += f"?size={size}"
    return url
