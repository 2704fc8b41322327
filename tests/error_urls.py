"""A URLconf with views that fail, for the error tests: the site's URLs plus three broken views."""

from __future__ import annotations

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView

from assetsearch.api.exceptions import exception_handler

SECRET = "internal-detail-hunter2"


class BrokenAPIView(APIView):
    """An API view with a bug (the API's exception handler, as every view of the app has)."""

    authentication_classes: list[type] = []
    permission_classes: list[type] = []

    def get_exception_handler(self):  # type: ignore[no-untyped-def]
        return exception_handler

    def get(self, request: HttpRequest) -> Response:
        raise RuntimeError(f"bug with {SECRET}")


def broken_plain_view(request: HttpRequest) -> HttpResponse:
    """A plain Django view under api/ (outside DRF): only the middleware can keep the envelope."""
    raise RuntimeError(f"bug with {SECRET}")


def database_down_plain_view(request: HttpRequest) -> HttpResponse:
    raise OperationalError(f"connection to server failed: {SECRET}")


urlpatterns = [
    path("api/broken/", BrokenAPIView.as_view()),
    path("api/broken-plain/", broken_plain_view),
    path("api/database-down-plain/", database_down_plain_view),
    path("", include("project.urls")),
]
