"""``SemanticSearchAdminMixin``: semantic search for a host's own ``ModelAdmin``.

For any registered model (:mod:`assetsearch.indexes`)::

    from assetsearch.admin import SemanticSearchAdminMixin

    @admin.register(Photo)
    class PhotoAdmin(SemanticSearchAdminMixin, admin.ModelAdmin):
        search_fields = ["caption"]
        list_display = ["caption", "embedding_state", "find_similar"]

The change list's search box then ranks by meaning (fused with the admin's
own keyword matches, which still match), a "similarity" column appears
while searching, ``embedding_state`` shows each object's index entry,
``find_similar`` links to a page of similar objects, and objects hidden by a
moderation concept are left out for users without ``moderate_asset``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ORDER_VAR, SEARCH_VAR
from django.core.exceptions import PermissionDenied
from django.db.models import Case, FloatField, IntegerField, Q, QuerySet, Value, When
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext, gettext_lazy as _

from ..conf import app_settings
from ..constants import ADMIN_RESULTS, EmbeddingStatus
from ..exceptions import SEARCH_FAILURES
from ..querysets import hide_flagged, with_entry_status
from ..registry import get_index
from ..search import Query, SearchResults, search
from .base import AdminPageMixin


class SemanticSearchAdminMixin(AdminPageMixin):
    """Mix into a ``ModelAdmin`` of a registered model (before ``admin.ModelAdmin``)."""

    #: How many semantic matches the change list's search ranks (at most ``MAX_PAGE_SIZE``).
    semantic_search_limit = 100
    #: Blend semantic search with keywords (Postgres full text over the index's text fields, fused by rank).
    semantic_search_hybrid = True

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """The admin's queryset, without what moderation hides from the user (:func:`~assetsearch.querysets.hide_flagged`)."""
        queryset = super().get_queryset(request)  # type: ignore[misc]
        owner_field = get_index(queryset.model).owner_field
        return with_entry_status(hide_flagged(queryset, request.user, owner_field=owner_field))

    def is_searching(self, request: HttpRequest) -> bool:
        return bool(request.GET.get(SEARCH_VAR, "").strip())

    def get_list_display(self, request: HttpRequest) -> Sequence[str]:
        columns = list(super().get_list_display(request))  # type: ignore[misc]
        if self.is_searching(request) and "similarity" not in columns:
            columns.insert(min(2, len(columns)), "similarity")
        return columns

    def get_semantic_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> SearchResults | None:
        """The semantic search behind the search box; None (after telling the user) if it cannot run.

        ``queryset`` is the change list's, filters applied, so search stays inside it.
        """
        try:
            return search(
                Query(
                    text=search_term,
                    hybrid=self.semantic_search_hybrid,
                    models=[queryset.model],
                    visible=queryset,
                    limit=min(self.semantic_search_limit, app_settings.MAX_PAGE_SIZE),
                )
            )
        except SEARCH_FAILURES as exc:
            self.message_user(request, gettext("Semantic search did not run: %s Showing keyword matches.") % exc, messages.WARNING)  # type: ignore[attr-defined]
            return None

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        """Semantic matches, ranked, then the admin's keyword matches that search missed.

        Adds ``search_rank`` (1 = best; keyword-only matches come after) and
        ``search_score`` (cosine similarity, None for keyword-only matches)
        to the queryset, so one query serves the page and its count, and
        orders by relevance unless the user sorted by a column.
        """
        if not search_term.strip():
            return super().get_search_results(request, queryset, search_term)  # type: ignore[misc]
        # Used as a subquery of ids, so its possible duplicates do not matter.
        keyword_matches, _duplicates = super().get_search_results(request, queryset, search_term)  # type: ignore[misc]
        results = self.get_semantic_results(request, queryset, search_term)
        hits = results.hits if results else []
        ids = [hit.object.pk for hit in hits]
        matches = queryset.filter(Q(pk__in=ids) | Q(pk__in=keyword_matches.values("pk")))
        rank_whens = [When(pk=hit.object.pk, then=Value(position)) for position, hit in enumerate(hits, start=1)]
        # NaN: a keyword match without a vector for this model.
        score_whens = [When(pk=hit.object.pk, then=Value(hit.score)) for hit in hits if hit.score == hit.score]
        matches = matches.annotate(
            search_rank=Case(*rank_whens, default=Value(len(hits) + 1), output_field=IntegerField()) if rank_whens else Value(1, output_field=IntegerField()),
            search_score=Case(*score_whens, default=Value(None), output_field=FloatField()) if score_whens else Value(None, output_field=FloatField()),
        )
        if request.GET.get(ORDER_VAR):
            # The user sorted by a column: keep it, relevance breaks ties.
            return matches.order_by(*queryset.query.order_by, "search_rank"), False
        return matches.order_by("search_rank", *queryset.query.order_by), False

    # Columns

    def similarity(self, obj: Any) -> str:
        score = getattr(obj, "search_score", None)
        if score is None:
            return "\u2013"
        return format_html('<span class="assetsearch-score" title="{}">{}</span>', gettext("cosine similarity to the query"), f"{score:.3f}")

    similarity.short_description = _("similarity")  # type: ignore[attr-defined]

    def embedding_state(self, obj: Any) -> str:
        """The object's index entry: pending, ready or failed ("–": not indexed, e.g. no image)."""
        return dict(EmbeddingStatus.choices).get(getattr(obj, "assetsearch_status", None), "\u2013")

    embedding_state.short_description = _("embedding")  # type: ignore[attr-defined]

    def find_similar(self, obj: Any) -> str:
        if getattr(obj, "assetsearch_status", None) != EmbeddingStatus.READY:
            return "\u2013"
        return format_html('<a href="{}" class="assetsearch-similar-link">{}</a>', self.get_find_similar_url(obj), gettext("Find similar"))

    find_similar.short_description = _("similar")  # type: ignore[attr-defined]

    def get_find_similar_url(self, obj: Any) -> str:
        opts = self.opts  # type: ignore[attr-defined]
        return reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_similar", args=[obj.pk])  # type: ignore[attr-defined]

    # The similar-objects page

    def get_urls(self) -> list[URLPattern]:
        opts = self.opts  # type: ignore[attr-defined]
        name = f"{opts.app_label}_{opts.model_name}_similar"
        return [
            path("<path:object_id>/similar/", self.admin_site.admin_view(self.similar_view), name=name),  # type: ignore[attr-defined]
            *super().get_urls(),  # type: ignore[misc]
        ]

    def similar_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The objects most like one object, as a grid."""
        if not self.has_view_permission(request):  # type: ignore[attr-defined]
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))  # type: ignore[attr-defined]
        if obj is None:
            raise Http404(gettext("No such object."))
        visible = self.get_queryset(request)
        results, error = None, ""
        try:
            results = search(Query(like=obj, models=[obj._meta.model], visible=visible, limit=ADMIN_RESULTS))
        except SEARCH_FAILURES as exc:
            error = str(exc)
        context = self.page_context(request, gettext("Similar to %s") % obj, original=obj, results=results, error=error)
        return TemplateResponse(request, "admin/assetsearch/similar.html", context)
