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
  when that is what is wrong), ``parse_error`` (malformed JSON or multipart,
  or a body Django refuses: too many fields, too large).
  An ``asset_id`` in a search body that names no (visible) asset is a 400
  ``unknown_asset``: the request is wrong, not the URL. An unknown asset in
  the URL (``/api/assets/999/similar/``) is a 404 ``not_found``.
- 401 ``not_authenticated`` / ``authentication_failed``; 403 ``permission_denied``.
- 404 ``not_found``; 405 ``method_not_allowed``; 415 ``unsupported_media_type``.
- 409 ``asset_not_embedded``: the asset exists but has no vector yet; retry
  once its ``embedding.status`` is ``ready``. 409 ``conflict``: the request is
  valid but names something that must be unique and is taken (a concept's
  ``name``); ``fields`` says which.
- 413 ``file_too_large``: over ``MAX_UPLOAD_BYTES``.
- 429 ``throttled``, with a ``Retry-After`` header.
- 500 ``server_error``: a bug; the message says nothing of the internals
  (the traceback goes to the ``assetsearch.api`` logger).
- 503 ``service_unavailable``, with a ``Retry-After`` header: the database
  or the broker cannot be reached, every database connection is busy, or
  the model cannot be loaded (the message says which and why).

Unknown routes under ``api/`` are a 404 ``not_found`` in this shape too
(:class:`NotFoundView`, the API URLconf's last route), and
:class:`~assetsearch.api.middleware.APIErrorMiddleware` keeps the shape
for errors raised outside the API's views.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import BadRequest, SuspiciousOperation
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView, set_rollback

from ..exceptions import ModelUnavailable, SearchError
from ..thumbnails import ThumbnailUnavailable

# Validation codes precise enough to replace the generic "invalid" at the top level.
SPECIFIC_CODES = ("invalid_image", "empty_query", "unknown_asset", "invalid_query", "invalid_page")

# Search errors whose status is not 400, and the request field each one is about.
SEARCH_ERROR_STATUS = {"asset_not_embedded": status.HTTP_409_CONFLICT}
SEARCH_ERROR_FIELD = {"unknown_asset": "asset_id", "invalid_image": "image"}

# Seconds a client is told to wait when a service is unavailable (503).
RETRY_AFTER_SECONDS = 5
# What each error status is called when no more precise code is known.
STATUS_CODES = {
    status.HTTP_400_BAD_REQUEST: "invalid",
    status.HTTP_403_FORBIDDEN: "permission_denied",
    status.HTTP_404_NOT_FOUND: "not_found",
    status.HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
    status.HTTP_413_REQUEST_ENTITY_TOO_LARGE: "file_too_large",
    status.HTTP_500_INTERNAL_SERVER_ERROR: "server_error",
    status.HTTP_503_SERVICE_UNAVAILABLE: "service_unavailable",
}
SERVER_ERROR_MESSAGE = "The server failed to answer this request; the error was logged."
UNAVAILABLE_MESSAGE = "The service is temporarily unavailable; retry in a few seconds."

logger = logging.getLogger("assetsearch.api")


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The file is too large.")
    default_code = "file_too_large"


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def unavailable_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean a service is down or saturated, not that the request is wrong.

    The database's (unreachable, restarting, no free connection in the pool:
    Django wraps psycopg's ``PoolTimeout`` as ``OperationalError``) and the
    broker's, when a view talks to it directly.
    """
    errors: list[type[BaseException]] = [OperationalError, InterfaceError]
    try:
        from kombu.exceptions import OperationalError as BrokerError
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover - celery[redis] is a dependency
        pass
    else:
        errors += [BrokerError, RedisConnectionError, RedisTimeoutError]
    return tuple(errors)


def unavailable_response(message: str = UNAVAILABLE_MESSAGE) -> Response:
    return Response(
        error_body("service_unavailable", message),
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def server_error_response() -> Response:
    return Response(error_body("server_error", SERVER_ERROR_MESSAGE), status=status.HTTP_500_INTERNAL_SERVER_ERROR)


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


def is_conflict(exc: exceptions.ValidationError) -> bool:
    """Whether the only thing wrong is a taken unique value (DRF's ``unique`` code): a 409, not a 400.

    The schema cannot state uniqueness across resources, so a request it calls
    valid may still collide with stored data; that is a conflict.
    """
    codes = [getattr(error, "code", None) for _, error in _flatten(exc.detail)]
    return bool(codes) and all(code == "unique" for code in codes)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF exception handler: every error in the shape above, a JSON 500 for bugs."""
    if isinstance(exc, SearchError):
        field = SEARCH_ERROR_FIELD.get(exc.code)
        body = error_body(exc.code, str(exc), {field: [str(exc)]} if field else None)
        return Response(body, status=SEARCH_ERROR_STATUS.get(exc.code, status.HTTP_400_BAD_REQUEST))
    if isinstance(exc, ModelUnavailable):
        logger.warning("Model unavailable answering %s: %s", getattr(context.get("request"), "path", "?"), exc)
        return unavailable_response(str(exc))
    if isinstance(exc, ThumbnailUnavailable):
        return Response(error_body("thumbnail_unavailable", str(exc)), status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, SuspiciousOperation):
        # As Django answers them (too many fields, a body over DATA_UPLOAD_MAX_MEMORY_SIZE, ...), logged as it does.
        logging.getLogger(f"django.security.{type(exc).__name__}").error(str(exc))
        exc = exceptions.ParseError(str(exc))
    elif isinstance(exc, BadRequest):
        exc = exceptions.ParseError(str(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        set_rollback()
        request = context.get("request")
        path = getattr(request, "path", "?")
        if isinstance(exc, unavailable_errors()):
            logger.warning("Service unavailable answering %s: %s: %s", path, type(exc).__name__, exc)
            return unavailable_response()
        logger.error("Internal error answering %s", path, exc_info=exc)
        return server_error_response()

    headers = {}
    if auth_header := getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = auth_header
    if wait := getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(wait))
    if isinstance(exc, exceptions.ValidationError):
        body = validation_error_body(exc)
        if is_conflict(exc):
            body["error"]["code"] = "conflict"
            set_rollback()
            return Response(body, status=status.HTTP_409_CONFLICT, headers=headers)
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        body = error_body(str(code), str(exc.detail))
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)


@extend_schema(exclude=True)
class NotFoundView(APIView):
    """The API URLconf's last route: any other path under ``api/`` is a JSON 404.

    A path without its trailing slash is redirected to the slashed one when
    that names a route and ``APPEND_SLASH`` is on, as ``CommonMiddleware``
    would do if this route did not match everything.
    """

    authentication_classes: list[type] = []
    permission_classes: list[type] = []
    throttle_classes: list[type] = []
    renderer_classes = [JSONRenderer]
    # drf-spectacular's own class whatever the host's DEFAULT_SCHEMA_CLASS: its
    # generator walks the host's whole URLconf and asserts that class before it
    # asks ``exclude``; ``schema = None`` would be replaced by DRF's by the decorator.
    schema = AutoSchema()

    def get_exception_handler(self) -> Any:
        return exception_handler

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        from django.conf import settings
        from django.http import HttpResponsePermanentRedirect
        from django.urls import Resolver404, resolve

        if settings.APPEND_SLASH and not request.path_info.endswith("/") and request.method in ("GET", "HEAD"):
            try:
                match = resolve(request.path_info + "/")
            except Resolver404:
                match = None
            if match is not None and getattr(match.func, "view_class", None) is not NotFoundView:
                return HttpResponsePermanentRedirect(request.get_full_path(force_append_slash=True))
        return super().dispatch(request, *args, **kwargs)

    def handle(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise exceptions.NotFound(f"No API endpoint at {request.path}.")

    get = post = put = patch = delete = head = options = handle
