"""Filter backends of the API's list endpoints (DRF's ``BaseFilterBackend``).

They filter the list action only, with the parameters a serializer has
validated, so a bad value is a 400 in the API's error shape. The views
name them explicitly: the host's ``DEFAULT_FILTER_BACKENDS`` do not apply.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.filters import BaseFilterBackend
from rest_framework.request import Request
from rest_framework.serializers import Serializer

from ..search import Filters
from .serializers import AssetFilterSerializer, FlagFilterSerializer


class ListFilterBackend(BaseFilterBackend):
    """Base: validate the query string with ``serializer_class`` on the list action, then :meth:`filter`."""

    serializer_class: type[Serializer]

    def filter_queryset(self, request: Request, queryset: QuerySet, view: Any) -> QuerySet:
        if getattr(view, "action", None) != "list":
            return queryset
        return self.filter(queryset, view.validated(self.serializer_class, request.query_params).validated_data)

    def filter(self, queryset: QuerySet, data: dict[str, Any]) -> QuerySet:
        """Apply the validated parameters ``data`` to ``queryset``."""
        raise NotImplementedError


class AssetFilterBackend(ListFilterBackend):
    """Tags, dates, MIME types, uploader and embedding status (:class:`~assetsearch.search.Filters`)."""

    serializer_class = AssetFilterSerializer

    def filter(self, queryset: QuerySet, data: dict[str, Any]) -> QuerySet:
        return Filters.from_data(data).apply(queryset)


class FlagFilterBackend(ListFilterBackend):
    """Review status and concept of moderation flags."""

    serializer_class = FlagFilterSerializer

    def filter(self, queryset: QuerySet, data: dict[str, Any]) -> QuerySet:
        if data.get("status"):
            queryset = queryset.filter(status=data["status"])
        if "concept" in data:
            queryset = queryset.filter(concept_id=data["concept"])
        return queryset
