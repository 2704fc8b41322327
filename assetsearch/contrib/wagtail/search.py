"""Wagtail's image search boxes, ranked by meaning and blended with Wagtail's own keyword matches."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db.models import Case, IntegerField, Model, QuerySet, Value, When

from assetsearch.conf import app_settings
from assetsearch.exceptions import SearchError
from assetsearch.querysets import hide_flagged
from assetsearch.search import Query, fuse_rankings, search

logger = logging.getLogger(__name__)


def blended_search(
    candidates: QuerySet, text: str, keyword_matches: Iterable[Model], *, user: Any, order_by_relevance: bool = True,
) -> QuerySet:
    """The images of ``candidates`` that match ``text`` by meaning or by Wagtail's keyword search, as a queryset.

    ``candidates`` is the view's queryset (permissions and filters applied,
    not moderation, which is applied here for ``user``);
    ``keyword_matches`` is what Wagtail's search backend found in it. Both
    rankings (the vector search's and Wagtail's) are fused by reciprocal rank, so an exact title still comes first while "a round red
    shape" finds the red circle. A queryset, not search results, so Wagtail's
    pagination, bulk actions and templates work unchanged; ordered by
    relevance unless the user picked an ordering. When semantic search
    cannot run (no vectors yet, a bad query), Wagtail's matches stand alone.
    """
    # As many from each ranking as hybrid search fuses (HYBRID_CANDIDATES), within a page's bounds.
    limit = min(app_settings.HYBRID_CANDIDATES, app_settings.MAX_PAGE_SIZE)
    keyword_ids = [obj.pk for obj in _first(keyword_matches, limit)]
    try:
        hits = search(
            Query(text=text, models=[candidates.model], visible=candidates, user=user, limit=limit)
        ).hits
    except SearchError as exc:
        logger.info("Semantic image search did not run (%s); keyword matches only.", exc)
        hits = []
    fused = fuse_rankings({"semantic": [hit.object.pk for hit in hits], "keyword": keyword_ids})
    ids = [pk for pk, _score, _ranks in fused]
    matches = hide_flagged(candidates, user).filter(pk__in=ids)  # Wagtail's matches include hidden images
    if not order_by_relevance or not ids:
        return matches
    rank = Case(*[When(pk=pk, then=Value(position)) for position, pk in enumerate(ids)], output_field=IntegerField())
    return matches.annotate(assetsearch_rank=rank).order_by("assetsearch_rank")


def _first(results: Iterable[Model], count: int) -> list[Model]:
    """The first ``count`` of Wagtail's search results (a queryset or a backend's lazy results)."""
    try:
        return list(results[:count])  # type: ignore[index]
    except TypeError:
        return list(results)[:count]
