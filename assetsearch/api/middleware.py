"""Keep the API's error shape for failures outside its views.

The API's views answer every error themselves (:mod:`.exceptions`). What
they cannot catch is a failure around them: a middleware below this one
that raises (a session saved while the database is down), or an error page
the host's handlers render. For requests under the API's prefix this
middleware turns such error responses (any not made by DRF) into the API's envelope
(503 with ``Retry-After`` when the cause was the database or the broker).

Optional; install it first in ``MIDDLEWARE``::

    MIDDLEWARE = ["assetsearch.api.middleware.APIErrorMiddleware", ...]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from django.core.signals import got_request_exception
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import NoReverseMatch, reverse
from rest_framework.response import Response

from .exceptions import (
    RETRY_AFTER_SECONDS,
    SERVER_ERROR_MESSAGE,
    STATUS_CODES,
    UNAVAILABLE_MESSAGE,
    error_body,
    unavailable_errors,
)

# Where the exception that Django turned into an error page is kept on the request.
EXCEPTION_ATTRIBUTE = "_assetsearch_exception"


def get_api_prefix() -> str | None:
    """The path the API is mounted at (``/api/``), or None when the site does not include it."""
    try:
        return reverse("assetsearch:not-found", kwargs={"path": ""})
    except NoReverseMatch:
        return None


def _remember_exception(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    if request is not None:
        setattr(request, EXCEPTION_ATTRIBUTE, sys.exc_info()[1])


got_request_exception.connect(_remember_exception, dispatch_uid="assetsearch.api.middleware")


class APIErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # The API's own answers are in the envelope already (as HTML too, in the browsable API).
        if response.status_code < 400 or isinstance(response, Response) or response.get("Content-Type", "").startswith("application/json"):
            return response
        prefix = get_api_prefix()
        if prefix is None or not request.path.startswith(prefix):
            return response
        return self.error_response(request, response)

    def error_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        exception = getattr(request, EXCEPTION_ATTRIBUTE, None)
        if response.status_code >= 500 and isinstance(exception, unavailable_errors()) or response.status_code == 503:
            answer = JsonResponse(error_body("service_unavailable", UNAVAILABLE_MESSAGE), status=503)
            answer["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return answer
        status = response.status_code
        code = STATUS_CODES.get(status, "server_error" if status >= 500 else "invalid")
        message = SERVER_ERROR_MESSAGE if status >= 500 else (response.reason_phrase or "Error") + "."
        answer = JsonResponse(error_body(code, message), status=status)
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in response:
                answer[header] = response[header]
        return answer
