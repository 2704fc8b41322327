"""The API's one error shape, and the exception handler that produces it.

Every error response has the same body::

    {"error": {"code": "invalid_image",
               "message": "image: The file is not an image (or its format is not supported).",
               "fields": {"image": ["The file is not an image (or its format is not supported)."]}}}

``code`` is stable and meant for programs; ``message`` is meant for people;
``fields`` (validation errors only, else empty) maps each field, by its path
(``filters.tags``, ``negative.2``), to its messages.

Codes and statuses:

- 400 ``invalid`` (validation errors; the more specific ``invalid_image``,
  ``empty_query``, ``unknown_asset``, ``invalid_query`` or ``invalid_page``
  when that is what is wrong), ``parse_error`` (malformed JSON or multipart).
  An ``asset_id`` in a search body that names no (visible) asset is a 400
  ``unknown_asset``: the request is wrong, not the URL. An unknown asset in
  the URL (``/api/assets/999/similar/``) is a 404 ``not_found``.
- 401 ``not_authenticated`` / ``authentication_failed``; 403 ``permission_denied``.
- 404 ``not_found``; 405 ``method_not_allowed``; 415 ``unsupported_media_type``.
- 409 ``asset_not_embedded``: the asset exists but has no vector yet; retry
  once its ``embedding.status`` is ``ready``.
- 413 ``file_too_large``: over ``MAX_UPLOAD_BYTES``.
- 429 ``throttled``, with a ``Retry-After`` header.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import set_rollback

from ..exceptions import SearchError
from ..thumbnails import ThumbnailUnavailable

# Validation codes precise enough to replace the generic "invalid" at the top level.
SPECIFIC_CODES = ("invalid_image", "empty_query", "unknown_asset", "invalid_query", "invalid_page")

# Search errors whose status is not 400, and the request field each one is about.
SEARCH_ERROR_STATUS = {"asset_not_embedded": status.HTTP_409_CONFLICT}
SEARCH_ERROR_FIELD = {"unknown_asset": "asset_id", "invalid_image": "image"}


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The file is too large.")
    default_code = "file_too_large"


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail: Any, path: str = "") -> Iterator[tuple[str, exceptions.ErrorDetail]]:
    """``(field path, error)`` pairs of a nested ValidationError detail, in order."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            key = str(key)
            if key == api_settings.NON_FIELD_ERRORS_KEY:
                yield from _flatten(value, path)
            else:
                yield from _flatten(value, f"{path}.{key}" if path else key)
    elif isinstance(detail, list):
        for item in detail:
            yield from _flatten(item, path)
    else:
        yield path, detail


def validation_error_body(exc: exceptions.ValidationError) -> dict[str, Any]:
    errors = list(_flatten(exc.detail))
    fields: dict[str, list[str]] = {}
    for path, error in errors:
        if path:
            fields.setdefault(path, []).append(str(error))
    codes = [getattr(error, "code", None) for _, error in errors]
    code = next((c for c in codes if c in SPECIFIC_CODES), "invalid")
    message = " ".join(f"{path}: {error}" if path else str(error) for path, error in errors) or "Invalid input."
    return error_body(code, message, fields)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler: every client error in the shape above; None lets others raise (500)."""
    if isinstance(exc, SearchError):
        field = SEARCH_ERROR_FIELD.get(exc.code)
        body = error_body(exc.code, str(exc), {field: [str(exc)]} if field else None)
        return Response(body, status=SEARCH_ERROR_STATUS.get(exc.code, status.HTTP_400_BAD_REQUEST))
    if isinstance(exc, ThumbnailUnavailable):
        return Response(error_body("thumbnail_unavailable", str(exc)), status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None

    headers = {}
    if auth_header := getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = auth_header
    if wait := getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(wait))
    if isinstance(exc, exceptions.ValidationError):
        body = validation_error_body(exc)
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        body = error_body(str(code), str(exc.detail))
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)
