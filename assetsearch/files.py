"""The app's stored files: names the server chooses, and the one way they are served.

Names. An original is stored as ``assetsearch/<year>/<month>/<random token><ext>``,
the extension taken from the format Pillow detected (a PNG is ``.png``
whatever the client called it), so no upload can choose how a web server
or a browser treats its bytes. The client's name is kept as metadata
(``Asset.original_filename``), for display and for the download name.
Thumbnails are named after a digest of the original's stored name
(:func:`get_file_token`): random like it, and not computable from the bytes.

Serving. Every file the app sends, originals and thumbnails, from the API
or the admin, goes out through :func:`serve_file` once a view has checked
that the user may see the asset. The response carries the true content
type, ``X-Content-Type-Options: nosniff``, a ``Content-Security-Policy``
that allows nothing (an image needs no script, style or frame), a
``Content-Disposition`` with a safe file name, and ``Cache-Control:
private``. How the bytes travel is the ``FILE_SERVING`` setting's backend:
streamed by Django (the default), handed to the web server
(``X-Accel-Redirect`` for nginx, ``X-Sendfile`` for Apache's mod_xsendfile
or lighttpd), or a redirect to a signed, expiring URL of an object storage.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.core.files.storage import Storage
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.utils.cache import get_conditional_response, patch_cache_control
from django.urls import NoReverseMatch
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.module_loading import import_string

from .conf import app_settings
from .constants import MAX_FILE_NAME
from .urlreverse import reverse_pk

# Folder of the originals in the assets' storage (thumbnails: THUMBNAIL_PREFIX).
ORIGINALS_PREFIX = "assetsearch"

# The stored extension of each MIME type assetsearch detects (assetsearch.images.MIME_TYPES);
# a file that is not a readable image is stored as opaque bytes.
EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/bmp": ".bmp",
    "image/tiff": ".tif",
}
UNKNOWN_TYPE = "application/octet-stream"
MISSING_FILE_MESSAGE = "The image file is missing from storage."
UNKNOWN_EXTENSION = ".bin"
SERVER_NAME = re.compile(rf"{ORIGINALS_PREFIX}/\d{{4}}/\d{{2}}/[0-9a-f]{{32}}\.[a-z]+")

# Headers of every file response: the browser must take the bytes for what the
# Content-Type says (no sniffing) and may run nothing from them, even when a
# navigation opens them as a document.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}
# How long browsers may keep a served file (private: never a shared cache, as
# visibility is per user and may change).
FILE_MAX_AGE = 86400

# Naming -------------------------------------------------------------------


def get_extension(mime_type: str) -> str:
    """The extension a file of ``mime_type`` is stored and offered under."""
    return EXTENSIONS.get(mime_type, UNKNOWN_EXTENSION)


def new_original_name(mime_type: str) -> str:
    """A fresh storage name for an original of ``mime_type``: random, never the client's."""
    return f"{ORIGINALS_PREFIX}/{timezone.now():%Y/%m}/{secrets.token_hex(16)}{get_extension(mime_type)}"


def is_server_name(name: str) -> bool:
    """Whether ``name`` is one :func:`new_original_name` made (files stored by earlier releases kept the client's name)."""
    return bool(SERVER_NAME.fullmatch(name))


def get_file_token(stored_name: str) -> str:
    """A key for the files derived from a stored original (its thumbnails).

    A digest of the original's random storage name: unique per stored file,
    so a replaced file never reuses a thumbnail, and not computable by anyone
    who holds the bytes.
    """
    return hashlib.sha256(stored_name.encode()).hexdigest()[:32]


def clean_client_name(name: str) -> str:
    """The client's file name, fit to show: base name only, no control characters, at most ``MAX_FILE_NAME``."""
    base = os.path.basename(name.replace("\\", "/"))
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    if len(base) <= MAX_FILE_NAME:
        return base
    stem, ext = os.path.splitext(base)
    ext = ext[:10]
    return stem[: MAX_FILE_NAME - len(ext)] + ext


def download_name(asset: Any, mime_type: str) -> str:
    """The name a browser saves ``asset``'s file of ``mime_type`` under: the client's stem with the true extension.

    So ``x.html`` holding a PNG downloads as ``x.png``, and opening the saved
    file never runs it as a page.
    """
    stem = os.path.splitext(clean_client_name(asset.original_filename))[0] or f"asset-{asset.pk}"
    return stem + get_extension(mime_type)


# Serving ------------------------------------------------------------------


@dataclass(frozen=True)
class ServedFile:
    """A stored file about to be sent: where it is and what it is."""

    storage: Storage
    name: str
    content_type: str
    filename: str  # the download name, shown by browsers
    etag: str


class BaseFileServingBackend:
    """How the bytes of a permitted file reach the client (the ``FILE_SERVING`` setting).

    ``options`` are the setting's other keys. :func:`serve_file` adds the
    content type, the security and caching headers to whatever
    :meth:`respond` returns.
    """

    #: Whether browsers may keep the response (with an ETag, for FILE_MAX_AGE).
    cacheable = True

    def __init__(self, **options: Any) -> None:
        self.options = options

    def respond(self, request: HttpRequest, file: ServedFile) -> HttpResponseBase:
        """A response that delivers ``file``; ``FileNotFoundError`` when it is missing from storage."""
        raise NotImplementedError


class StreamingFileBackend(BaseFileServingBackend):
    """Django streams the file from storage (any storage; the default)."""

    def respond(self, request: HttpRequest, file: ServedFile) -> HttpResponseBase:
        return FileResponse(file.storage.open(file.name, "rb"), content_type=file.content_type)


class XAccelRedirectBackend(BaseFileServingBackend):
    """nginx sends the file: the response names it in ``X-Accel-Redirect``, under ``LOCATION``.

    ``LOCATION`` (default ``"/assetsearch-files/"``) must be an ``internal``
    nginx location whose ``alias`` is the storage's root (``MEDIA_ROOT``),
    so clients cannot request it themselves.
    """

    header = "X-Accel-Redirect"

    def get_header_value(self, file: ServedFile) -> str:
        location = self.options.get("LOCATION", "/assetsearch-files/")
        return location.rstrip("/") + "/" + quote(file.name)

    def respond(self, request: HttpRequest, file: ServedFile) -> HttpResponseBase:
        if not file.storage.exists(file.name):
            raise FileNotFoundError(file.name)
        response = HttpResponse(content_type=file.content_type)
        response[self.header] = self.get_header_value(file)
        return response


class XSendfileBackend(XAccelRedirectBackend):
    """Apache (mod_xsendfile) or lighttpd sends the file, named by its path on disk in ``X-Sendfile``.

    Needs a storage with local paths (``FileSystemStorage``).
    """

    header = "X-Sendfile"

    def get_header_value(self, file: ServedFile) -> str:
        return file.storage.path(file.name)


class SignedURLBackend(BaseFileServingBackend):
    """A redirect to the storage's own URL of the file: for object storage with signed, expiring URLs.

    With django-storages' S3 storage set ``querystring_auth = True`` on a
    private bucket: each redirect is then valid for ``EXPIRES`` seconds (this
    backend's option; else the storage's ``querystring_expire``) only. The
    response overrides asked of S3 here repeat the detected type and the
    download name. Never use it with a storage whose URLs are public and
    permanent (``FileSystemStorage``'s ``MEDIA_URL``): that serves the files
    to anyone, hidden or not. The redirect itself is never cached (its URL
    expires).
    """

    cacheable = False

    def respond(self, request: HttpRequest, file: ServedFile) -> HttpResponseBase:
        parameters = {
            "ResponseContentType": file.content_type,
            "ResponseContentDisposition": content_disposition_header(False, file.filename),
        }
        signing: dict[str, Any] = {"parameters": parameters}
        if self.options.get("EXPIRES"):
            signing["expire"] = int(self.options["EXPIRES"])
        try:
            url = file.storage.url(file.name, **signing)  # django-storages' S3 signature
        except TypeError:  # a storage whose url() takes no signing options
            url = file.storage.url(file.name)
        return HttpResponseRedirect(url)


def get_file_serving_backend() -> BaseFileServingBackend:
    """The ``FILE_SERVING`` backend (``TypeError`` if it is not a :class:`BaseFileServingBackend`)."""
    options = dict(app_settings.FILE_SERVING)
    backend = import_string(options.pop("BACKEND", "assetsearch.files.StreamingFileBackend"))
    if not (isinstance(backend, type) and issubclass(backend, BaseFileServingBackend)):
        raise TypeError(f"{backend!r} is not a subclass of assetsearch.files.BaseFileServingBackend.")
    return backend(**options)


def serve_file(request: HttpRequest, file: ServedFile) -> HttpResponseBase:
    """The response that sends ``file`` (or 304), with the headers every served file carries.

    Call it only after checking that the user may see the file. Raises
    ``FileNotFoundError`` when the file is missing from storage.
    """
    backend = get_file_serving_backend()
    response = get_conditional_response(request, etag=file.etag) if backend.cacheable else None
    if response is None:
        response = backend.respond(request, file)
        if not isinstance(response, HttpResponseRedirect):
            response["Content-Type"] = file.content_type
            response["Content-Disposition"] = content_disposition_header(file.content_type == UNKNOWN_TYPE, file.filename)
    for header, value in SECURITY_HEADERS.items():
        response[header] = value
    if backend.cacheable:
        response["ETag"] = file.etag
        patch_cache_control(response, private=True, max_age=FILE_MAX_AGE)
    else:
        patch_cache_control(response, private=True, no_store=True)
    return response


def original_file(asset: Any) -> ServedFile:
    """``asset``'s original, as :func:`serve_file` sends it (type as detected at upload)."""
    content_type = asset.mime_type if asset.mime_type in EXTENSIONS else UNKNOWN_TYPE
    return ServedFile(
        storage=asset.image.storage,
        name=asset.image.name,
        content_type=content_type,
        filename=download_name(asset, content_type),
        etag=f'"{asset.content_hash or get_file_token(asset.image.name)}"',
    )


def get_original_url(asset: Any) -> str:
    """The URL that serves ``asset``'s original (with the API's permissions and visibility).

    Falls back to the storage's URL when the site has not included
    ``assetsearch.urls``.
    """
    try:
        return reverse_pk("assetsearch:asset-original", asset.pk)
    except NoReverseMatch:
        return asset.image.url
