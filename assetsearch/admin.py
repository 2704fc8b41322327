"""Django admin: assets searched by meaning, similar assets, tag suggestions,
a visual search page, an embedding status panel, and moderation review.

Pages and who may use them (the same permissions as the REST API):

- Asset change list (``view_asset``): the search box runs a hybrid semantic
  search (CLIP vectors fused with Postgres full text), blended with the
  admin's own keyword search, and orders the rows by relevance.
- Asset change page: similar assets and suggested tags; accepting a tag
  (POST) needs ``change_asset``.
- ``asset/visual-search/`` (``view_asset``): text, image and/or asset,
  negative text, weights, metadata filters, hybrid mode.
- ``asset/status/`` (``view_asset``; the re-enqueue button ``change_asset``).
- Moderation concepts, the flag review queue and ``moderationflag/query/``
  (ad-hoc concept scoring) need ``moderate_asset``.

Assets hidden by moderation never appear to users without ``moderate_asset``:
every asset listing here starts from :func:`~assetsearch.moderation.visible_assets`.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ORDER_VAR, SEARCH_VAR
from django.core.exceptions import PermissionDenied
from django.core.validators import MaxValueValidator
from django.db.models import Case, Count, FloatField, IntegerField, Max, Q, QuerySet, Value, When
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext, gettext_lazy as _, ngettext
from django.views.decorators.http import require_POST

from .conf import app_settings
from .encoders import get_encoder
from .images import InvalidImage
from .models import (
    Asset,
    AssetEmbedding,
    EmbeddingStatus,
    FlagStatus,
    ModerationConcept,
    ModerationFlag,
)
from .moderation import MODERATE_PERMISSION, ModerationHit, calibrate, moderation_query, request_rescore, score_new_assets, visible_assets
from .pipeline import enqueue_embedding
from .search import MAX_QUERY_CHARS, Filters, Query, SearchError, SearchHit, SearchResults, search, similar_assets
from .suggestions import TagSuggestion, suggest_tags
from .thumbnails import get_thumbnail_url, render_thumbnail

TAG_MAX_LENGTH = 64  # Asset.tags' item length


def split_terms(value: str) -> list[str]:
    """Comma- or newline-separated phrases, trimmed, empty ones dropped."""
    return [term.strip() for term in value.replace("\n", ",").split(",") if term.strip()]


def thumbnail_html(asset: Asset, size: int = 128, css_class: str = "assetsearch-thumb") -> str:
    # A cached JPEG thumbnail rather than the original, which may be megabytes.
    return format_html('<img src="{}" alt="" loading="lazy" class="{}">', get_thumbnail_url(asset, size), css_class)


def broker_reachable() -> bool:
    """Whether the Celery broker answers right now (one quick connection attempt)."""
    from celery import current_app

    try:
        with current_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, timeout=2)
    except Exception:  # kombu raises many kinds; all mean "not reachable"
        return False
    return True


# Forms ----------------------------------------------------------------------


def set_max(field: forms.IntegerField, limit: int) -> None:
    """A maximum known only at request time (it is a setting)."""
    field.max_value = limit
    field.validators.append(MaxValueValidator(limit))
    field.widget.attrs["max"] = limit


class VisualSearchForm(forms.Form):
    """The visual search page's query: any mix of text, an image and an asset."""

    text = forms.CharField(
        label=_("Text"), required=False, max_length=MAX_QUERY_CHARS,
        widget=forms.TextInput(attrs={"size": 48, "placeholder": _("e.g. a red circle on a white background")}),
    )
    image = forms.FileField(label=_("Image"), required=False, help_text=_("Find assets that look like this picture."))
    asset = forms.IntegerField(
        label=_("Similar to asset"), required=False, min_value=1,
        widget=forms.NumberInput(attrs={"style": "width: 8em"}), help_text=_("An asset's id: more like this one."),
    )
    negative = forms.CharField(
        label=_("Not like"), required=False, max_length=MAX_QUERY_CHARS,
        widget=forms.TextInput(attrs={"size": 48}), help_text=_("Phrases to steer away from, separated by commas."),
    )
    text_weight = forms.FloatField(label=_("Text weight"), required=False, min_value=0, initial=1.0, widget=forms.NumberInput(attrs={"step": "0.1", "style": "width: 5em"}))
    image_weight = forms.FloatField(label=_("Image weight"), required=False, min_value=0, initial=1.0, widget=forms.NumberInput(attrs={"step": "0.1", "style": "width: 5em"}))
    asset_weight = forms.FloatField(label=_("Asset weight"), required=False, min_value=0, initial=1.0, widget=forms.NumberInput(attrs={"step": "0.1", "style": "width: 5em"}))
    negative_weight = forms.FloatField(label=_("Negative weight"), required=False, min_value=0, initial=0.5, widget=forms.NumberInput(attrs={"step": "0.1", "style": "width: 5em"}))
    tags = forms.CharField(label=_("Tags"), required=False, help_text=_("Only assets with all of these tags, separated by commas."))
    mime_types = forms.MultipleChoiceField(label=_("File types"), required=False, widget=forms.CheckboxSelectMultiple)
    status = forms.ChoiceField(label=_("Embedding status"), required=False, choices=[("", _("Any")), *EmbeddingStatus.choices])
    hybrid = forms.BooleanField(
        label=_("Hybrid"), required=False,
        help_text=_("Blend in keyword matches on title, tags and description (needs text)."),
    )
    rerank = forms.BooleanField(
        label=_("Rerank"), required=False,
        help_text=_("Reorder the top results with the configured reranker (a stronger model)."),
    )
    limit = forms.IntegerField(label=_("Results"), required=False, min_value=1, initial=24, widget=forms.NumberInput(attrs={"style": "width: 5em"}))

    #: Field names that, present in a GET query string, make it a search.
    query_fields = ("text", "asset", "negative", "tags", "mime_types", "status")

    @classmethod
    def with_defaults(cls, data: QueryDict) -> QueryDict:
        """``data`` (a query string) plus the initial values of the fields it leaves out.

        So a link such as ``?asset=12`` shows a complete form to refine.
        """
        data = data.copy()
        for name, field in cls.base_fields.items():
            if name not in data and field.initial is not None:
                data[name] = str(field.initial)
        return data

    # Groups of fields, for the template's fieldsets.
    @property
    def query_part_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("text", "image", "asset", "negative")]

    @property
    def weight_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("text_weight", "image_weight", "asset_weight", "negative_weight")]

    @property
    def option_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("tags", "mime_types", "status", "hybrid", "rerank", "limit")]

    def __init__(self, *args: Any, visible: QuerySet[Asset], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.visible = visible
        types = visible.exclude(mime_type="").order_by("mime_type").values_list("mime_type", flat=True).distinct()
        self.fields["mime_types"].choices = [(t, t) for t in types]
        set_max(self.fields["limit"], app_settings.MAX_PAGE_SIZE)

    def clean_image(self) -> Any:
        image = self.cleaned_data.get("image")
        if image is not None and image.size > app_settings.MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                _("The image is %(size)d bytes; the limit is %(limit)d."), params={"size": image.size, "limit": app_settings.MAX_UPLOAD_BYTES}
            )
        return image

    def clean_asset(self) -> int | None:
        pk = self.cleaned_data.get("asset")
        # An asset the user may not see cannot be the query either.
        if pk is not None and not self.visible.filter(pk=pk).exists():
            raise forms.ValidationError(_("There is no asset with id %(pk)s."), params={"pk": pk})
        return pk

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not self.errors and not ((data.get("text") or "").strip() or data.get("image") or data.get("asset")):
            raise forms.ValidationError(_("Give text, an image or an asset to search with."))
        return data

    def get_query(self) -> Query:
        """The :class:`~assetsearch.search.Query` this form describes (call after ``is_valid()``)."""
        data = self.cleaned_data

        def weight(name: str, default: float) -> float:
            value = data.get(name)
            return default if value is None else value

        image = data.get("image")
        if image is not None:
            image.seek(0)
        return Query(
            text=(data.get("text") or "").strip(),
            image=image,
            asset_id=data.get("asset"),
            negative=split_terms(data.get("negative") or ""),
            text_weight=weight("text_weight", 1.0),
            image_weight=weight("image_weight", 1.0),
            asset_weight=weight("asset_weight", 1.0),
            negative_weight=weight("negative_weight", 0.5),
            filters=Filters(
                tags=split_terms(data.get("tags") or ""),
                mime_types=list(data.get("mime_types") or ()),
                status=data.get("status") or None,
            ),
            hybrid=bool(data.get("hybrid")),
            rerank=bool(data.get("rerank")),
            limit=data.get("limit") or 24,
            visible=self.visible,
        )


class ModerationQueryForm(forms.Form):
    """An ad-hoc moderation query: free text scored like a concept."""

    text = forms.CharField(
        label=_("Concept"), max_length=MAX_QUERY_CHARS,
        widget=forms.TextInput(attrs={"size": 48, "placeholder": _("e.g. a violent scene")}),
        help_text=_("What to look for; several phrases separated by commas are one concept."),
    )
    counter_prompts = forms.CharField(
        label=_("Not to be confused with"), required=False, max_length=MAX_QUERY_CHARS,
        widget=forms.TextInput(attrs={"size": 48}),
        help_text=_("Look-alikes, separated by commas; empty uses the neutral prompts."),
    )
    limit = forms.IntegerField(label=_("Results"), min_value=1, initial=24, required=False, widget=forms.NumberInput(attrs={"style": "width: 5em"}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        set_max(self.fields["limit"], app_settings.MAX_PAGE_SIZE)


# Assets ---------------------------------------------------------------------


class AssetPanels:
    """The change page's side panels, computed only if the template renders them."""

    similar_limit = 8
    suggestion_limit = 8

    def __init__(self, model_admin: AssetAdmin, request: HttpRequest, asset: Asset) -> None:
        self.model_admin = model_admin
        self.request = request
        self.asset = asset
        self.can_accept = model_admin.has_change_permission(request, asset)
        self.accept_url = reverse(f"{model_admin.admin_site.name}:assetsearch_asset_accept_tag", args=[asset.pk])
        self.similar_url = model_admin.get_find_similar_url(asset)

    @cached_property
    def _similar(self) -> tuple[list[SearchHit], str]:
        try:
            return similar_assets(self.asset.pk, limit=self.similar_limit, visible=visible_assets(self.request.user)).hits, ""
        except SearchError as exc:  # e.g. not embedded yet
            return [], str(exc)

    @property
    def similar(self) -> list[SearchHit]:
        return self._similar[0]

    @property
    def similar_error(self) -> str:
        """Why there are no similar assets, if that is the case."""
        return self._similar[1]

    @cached_property
    def _suggestions(self) -> tuple[list[TagSuggestion], str]:
        try:
            return suggest_tags(self.asset.pk, limit=self.suggestion_limit), ""
        except SearchError as exc:
            return [], str(exc)

    @property
    def suggestions(self) -> list[TagSuggestion]:
        return self._suggestions[0]

    @property
    def suggestions_error(self) -> str:
        return self._suggestions[1]


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ["thumbnail", "title", "tag_list", "embedding_status", "find_similar", "created_at"]
    list_display_links = ["thumbnail", "title"]
    list_filter = ["embedding_status", "mime_type", "created_at"]
    search_fields = ["title", "description", "tags"]
    search_help_text = _("Searches by meaning (e.g. \u201ca red circle\u201d) and by words in title, tags and description.")
    readonly_fields = [
        "preview", "content_hash", "width", "height", "mime_type", "file_size",
        "embedding_status", "embedding_status_changed_at", "embedding_error", "embedding_attempts",
        "created_at", "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["image", "preview", "title", "description", "tags", "uploaded_by"]}),
        (_("File"), {"fields": ["content_hash", "width", "height", "mime_type", "file_size"]}),
        (_("Embedding"), {"fields": ["embedding_status", "embedding_status_changed_at", "embedding_error", "embedding_attempts"]}),
        (_("Dates"), {"fields": ["created_at", "updated_at"]}),
    ]
    actions = ["reembed", "run_moderation"]
    list_per_page = 50
    raw_id_fields = ["uploaded_by"]

    #: How many semantic matches the change list's search ranks (at most ``MAX_PAGE_SIZE``).
    semantic_search_limit = 100
    #: Blend semantic search with keywords (Postgres full text, fused by rank).
    semantic_search_hybrid = True

    class Media:
        css = {"all": ["assetsearch/admin.css"]}

    # Queryset and search

    def get_queryset(self, request: HttpRequest) -> QuerySet[Asset]:
        """Assets ``request.user`` may see: hidden ones only with ``moderate_asset``."""
        queryset = visible_assets(request.user)
        ordering = self.get_ordering(request)
        if ordering:
            queryset = queryset.order_by(*ordering)
        return queryset

    def is_searching(self, request: HttpRequest) -> bool:
        return bool(request.GET.get(SEARCH_VAR, "").strip())

    def get_list_display(self, request: HttpRequest) -> Sequence[str]:
        columns = list(super().get_list_display(request))
        if self.is_searching(request):
            columns.insert(columns.index("title") + 1, "similarity")
        return columns

    def get_semantic_results(self, request: HttpRequest, queryset: QuerySet[Asset], search_term: str) -> SearchResults | None:
        """The semantic search behind the search box; None (after telling the user) if it cannot run.

        Override to change how the box searches; ``queryset`` is the change
        list's, filters applied, so search stays inside it.
        """
        try:
            return search(
                Query(
                    text=search_term,
                    hybrid=self.semantic_search_hybrid,
                    visible=queryset,
                    limit=min(self.semantic_search_limit, app_settings.MAX_PAGE_SIZE),
                )
            )
        except SearchError as exc:
            self.message_user(request, gettext("Semantic search did not run: %s Showing keyword matches.") % exc, messages.WARNING)
            return None

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Asset], search_term: str) -> tuple[QuerySet[Asset], bool]:
        """Semantic matches, ranked, then the admin's keyword matches that search missed.

        Adds ``search_rank`` (1 = best; keyword-only matches come after) and
        ``search_score`` (cosine similarity, None for keyword-only matches)
        to the queryset, so one query serves the page and its count, and
        orders by relevance unless the user sorted by a column.
        """
        if not search_term.strip():
            return super().get_search_results(request, queryset, search_term)
        # Used as a subquery of ids, so its possible duplicates do not matter.
        keyword_matches, _duplicates = super().get_search_results(request, queryset, search_term)
        results = self.get_semantic_results(request, queryset, search_term)
        hits = results.hits if results else []
        ids = [hit.asset.pk for hit in hits]
        matches = queryset.filter(Q(pk__in=ids) | Q(pk__in=keyword_matches.values("pk")))
        rank_whens = [When(pk=hit.asset.pk, then=Value(position)) for position, hit in enumerate(hits, start=1)]
        # NaN: a keyword match without a vector for this model.
        score_whens = [When(pk=hit.asset.pk, then=Value(hit.score)) for hit in hits if hit.score == hit.score]
        matches = matches.annotate(
            search_rank=Case(*rank_whens, default=Value(len(hits) + 1), output_field=IntegerField()) if rank_whens else Value(1, output_field=IntegerField()),
            search_score=Case(*score_whens, default=Value(None), output_field=FloatField()) if score_whens else Value(None, output_field=FloatField()),
        )
        if request.GET.get(ORDER_VAR):
            # The user sorted by a column: keep it, relevance breaks ties.
            return matches.order_by(*queryset.query.order_by, "search_rank"), False
        return matches.order_by("search_rank", *queryset.query.order_by), False

    # Columns

    @admin.display(description=_("image"))
    def thumbnail(self, asset: Asset) -> str:
        return thumbnail_html(asset)

    @admin.display(description=_("preview"))
    def preview(self, asset: Asset) -> str:
        if not asset.pk:
            return "-"
        return format_html(
            '<a href="{}"><img src="{}" alt="" class="assetsearch-preview"></a>', asset.image.url, get_thumbnail_url(asset, 512)
        )

    @admin.display(description=_("tags"))
    def tag_list(self, asset: Asset) -> str:
        return ", ".join(asset.tags)

    @admin.display(description=_("similarity"))
    def similarity(self, asset: Asset) -> str:
        score = getattr(asset, "search_score", None)
        if score is None:
            return "\u2013"
        return format_html('<span class="assetsearch-score" title="{}">{}</span>', gettext("cosine similarity to the query"), f"{score:.3f}")

    @admin.display(description=_("similar"))
    def find_similar(self, asset: Asset) -> str:
        if asset.embedding_status != EmbeddingStatus.READY:
            return "\u2013"
        return format_html('<a href="{}" class="assetsearch-similar-link">{}</a>', self.get_find_similar_url(asset), gettext("Find similar"))

    def get_find_similar_url(self, asset: Asset) -> str:
        return reverse(f"{self.admin_site.name}:assetsearch_asset_visual_search") + "?" + urlencode({"asset": asset.pk})

    # Saving

    def save_model(self, request: HttpRequest, obj: Asset, form: Any, change: bool) -> None:
        if not change and obj.uploaded_by_id is None:
            obj.uploaded_by = request.user
        super().save_model(request, obj, form, change)

    # Actions

    def has_moderate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(MODERATE_PERMISSION)

    @admin.action(description=_("Re-embed selected assets"), permissions=["change"])
    def reembed(self, request: HttpRequest, queryset: QuerySet[Asset]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        Asset.objects.filter(pk__in=ids).set_status(EmbeddingStatus.PENDING)
        if enqueue_embedding(ids, force=True):
            self.message_user(request, ngettext("Queued %d asset for embedding.", "Queued %d assets for embedding.", len(ids)) % len(ids), messages.SUCCESS)
        else:
            self.message_user(request, _("The task broker is unreachable; the assets stay pending and the sweep will retry."), messages.WARNING)

    @admin.action(description=_("Run moderation on selected assets"), permissions=["moderate"])
    def run_moderation(self, request: HttpRequest, queryset: QuerySet[Asset]) -> None:
        concepts = ModerationConcept.objects.filter(enabled=True).count()
        if not concepts:
            self.message_user(request, _("No moderation concept is enabled; nothing was scored."), messages.WARNING)
            return
        ids = list(queryset.values_list("pk", flat=True))
        embedded = list(AssetEmbedding.objects.for_model(get_encoder().key).filter(asset_id__in=ids).values_list("asset_id", flat=True))
        flags = score_new_assets(embedded)
        self.message_user(
            request,
            gettext("Scored %(assets)d asset(s) against %(concepts)d enabled concept(s): %(flags)d flag(s) made or refreshed.")
            % {"assets": len(embedded), "concepts": concepts, "flags": flags},
            messages.SUCCESS,
        )
        if len(embedded) < len(ids):
            skipped = len(ids) - len(embedded)
            self.message_user(
                request, ngettext("%d asset has no embedding yet and was skipped.", "%d assets have no embedding yet and were skipped.", skipped) % skipped,
                messages.WARNING,
            )

    # Change page: similar assets and tag suggestions

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra_context = dict(extra_context or {})
        asset = self.get_object(request, unquote(object_id))
        if asset is not None:
            extra_context["assetsearch_panels"] = AssetPanels(self, request, asset)
        return super().change_view(request, object_id, form_url, extra_context)

    # Extra pages

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        return [
            path("visual-search/", wrap(self.visual_search_view), name="%s_%s_visual_search" % info),
            path("status/", wrap(self.status_view), name="%s_%s_status" % info),
            path("<path:object_id>/accept-tag/", wrap(require_POST(self.accept_tag_view)), name="%s_%s_accept_tag" % info),
            *super().get_urls(),
        ]

    def page_context(self, request: HttpRequest, title: str, **context: Any) -> dict[str, Any]:
        request.current_app = self.admin_site.name  # {% url 'admin:...' %} then follows this site
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "title": title,
            "has_view_permission": self.has_view_permission(request),
            "has_change_permission": self.has_change_permission(request),
            "media": self.media,
            **context,
        }

    def visual_search_view(self, request: HttpRequest) -> HttpResponse:
        """Search by any mix of text, an uploaded image and an asset; results as a grid."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        visible = self.get_queryset(request)
        if request.method == "POST":
            data, bound = request.POST, True
        else:
            bound = any(name in request.GET for name in VisualSearchForm.query_fields)
            data = VisualSearchForm.with_defaults(request.GET)
        form = VisualSearchForm(data, request.FILES, visible=visible) if bound else VisualSearchForm(visible=visible)
        results = query_asset = query_image = None
        if bound and form.is_valid():
            query = form.get_query()
            try:
                results = search(query)
            except SearchError as exc:
                form.add_error(None, str(exc))
            else:
                query_asset = visible.filter(pk=query.asset_id).first() if query.asset_id else None
                query_image = self.preview_data_uri(form.cleaned_data.get("image"))
        return TemplateResponse(
            request,
            "admin/assetsearch/asset/visual_search.html",
            self.page_context(
                request, gettext("Visual search"), form=form, results=results, query_asset=query_asset, query_image=query_image,
            ),
        )

    def preview_data_uri(self, upload: Any) -> str | None:
        """A small inline JPEG of an uploaded query image, to show what was searched with."""
        if upload is None:
            return None
        upload.seek(0)
        try:
            data = render_thumbnail(upload, 128)
        except InvalidImage:
            return None
        return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")

    def accept_tag_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Append a (suggested) tag to the asset; POST only, needs change permission."""
        asset = self.get_object(request, unquote(object_id))
        if asset is None:
            raise Http404(gettext("There is no asset with id %s.") % object_id)
        if not self.has_change_permission(request, asset):
            raise PermissionDenied
        change_url = reverse(f"{self.admin_site.name}:assetsearch_asset_change", args=[asset.pk])
        tag = " ".join(request.POST.get("tag", "").split())
        if not tag or len(tag) > TAG_MAX_LENGTH:
            self.message_user(request, gettext("A tag must be 1 to %d characters long.") % TAG_MAX_LENGTH, messages.ERROR)
            return HttpResponseRedirect(change_url)
        if tag in asset.tags:
            self.message_user(request, gettext("\u201c%s\u201d is already a tag of this asset.") % tag, messages.INFO)
            return HttpResponseRedirect(change_url)
        asset.tags = [*asset.tags, tag]
        asset.save(update_fields=["tags", "updated_at"])
        self.log_change(request, asset, [{"changed": {"fields": ["tags"]}}])
        self.message_user(request, gettext("Added the tag \u201c%s\u201d.") % tag, messages.SUCCESS)
        return HttpResponseRedirect(change_url)

    def status_view(self, request: HttpRequest) -> HttpResponse:
        """Embedding counts per state and model, recent failures; POST re-enqueues pending and failed assets."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        visible = self.get_queryset(request).order_by()
        if request.method == "POST":
            if not self.has_change_permission(request):
                raise PermissionDenied
            self.requeue(request, visible)
            return HttpResponseRedirect(request.path)
        encoder_key = get_encoder().key
        counts = dict(visible.values_list("embedding_status").annotate(n=Count("pk")).values_list("embedding_status", "n"))
        states = [(value, label, counts.get(value, 0)) for value, label in EmbeddingStatus.choices]
        models = list(
            AssetEmbedding.objects.filter(asset__in=visible.values("pk"))
            .values("model_key")
            .annotate(vectors=Count("pk"), latest=Max("created_at"))
            .order_by("model_key")
        )
        stuck_after = timezone.now() - timedelta(seconds=app_settings.SWEEP_AFTER_SECONDS)
        context = self.page_context(
            request,
            gettext("Embedding status"),
            states=states,
            total=sum(counts.values()),
            models=models,
            encoder_key=encoder_key,
            missing=visible.missing_embedding(encoder_key).count(),
            stale=visible.stale_embedding(encoder_key).count(),
            stuck=visible.pending().filter(embedding_status_changed_at__lte=stuck_after).count(),
            sweep_after=app_settings.SWEEP_AFTER_SECONDS,
            failures=visible.failed().order_by("-embedding_status_changed_at", "-pk")[:20],
            requeue_count=counts.get(EmbeddingStatus.PENDING, 0) + counts.get(EmbeddingStatus.FAILED, 0),
            broker_reachable=broker_reachable(),
            changelist_url=reverse(f"{self.admin_site.name}:assetsearch_asset_changelist"),
        )
        return TemplateResponse(request, "admin/assetsearch/asset/status.html", context)

    def requeue(self, request: HttpRequest, assets: QuerySet[Asset]) -> None:
        """Send pending and failed assets to the workers again; failed ones become pending first."""
        todo = assets.filter(embedding_status__in=[EmbeddingStatus.PENDING, EmbeddingStatus.FAILED])
        ids = list(todo.values_list("pk", flat=True))
        if not ids:
            self.message_user(request, _("No asset is pending or failed; nothing to send."), messages.INFO)
            return
        # Pending before sending: if the broker is down, the sweep picks them up later.
        failed = Asset.objects.filter(pk__in=ids).failed().set_status(EmbeddingStatus.PENDING)
        if enqueue_embedding(ids, force=True):
            self.message_user(
                request,
                gettext("Queued %(total)d asset(s) for embedding (%(failed)d of them had failed).") % {"total": len(ids), "failed": failed},
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request,
                gettext("The task broker is unreachable: %(total)d asset(s) stay pending, and the sweep sends them when it is back.") % {"total": len(ids)},
                messages.WARNING,
            )


# Moderation -----------------------------------------------------------------


class ModerationPermissionMixin:
    """Moderation pages need ``moderate_asset``; editing concepts also the model permission."""

    def has_moderate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(MODERATE_PERMISSION)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_moderate_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_moderate_permission(request)


@admin.register(ModerationConcept)
class ModerationConceptAdmin(ModerationPermissionMixin, admin.ModelAdmin):
    list_display = ["name", "enabled", "action", "threshold", "open_flags", "rescore_progress", "rescored_at"]
    list_filter = ["enabled", "action"]
    search_fields = ["name", "prompts"]
    readonly_fields = ["rescore_progress", "rescored_at", "calibration"]
    fieldsets = [
        (None, {"fields": ["name", "prompts", "counter_prompts", "threshold", "action", "enabled"]}),
        (_("Scoring"), {"fields": ["rescore_progress", "rescored_at", "calibration"]}),
    ]
    actions = ["rescore"]

    class Media:
        css = {"all": ["assetsearch/admin.css"]}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_moderate_permission(request) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_moderate_permission(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_moderate_permission(request) and super().has_delete_permission(request, obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ModerationConcept]:
        return super().get_queryset(request).annotate(open_flag_count=Count("flags", filter=Q(flags__status=FlagStatus.OPEN)))

    @admin.display(description=_("open flags"), ordering="open_flag_count")
    def open_flags(self, concept: ModerationConcept) -> str:
        count = getattr(concept, "open_flag_count", None)
        if count is None:
            count = concept.flags.filter(status=FlagStatus.OPEN).count()
        url = reverse(f"{self.admin_site.name}:assetsearch_moderationflag_changelist") + "?" + urlencode({"concept__id__exact": concept.pk, "status__exact": FlagStatus.OPEN})
        return format_html('<a href="{}">{}</a>', url, count)

    @admin.display(description=_("re-score progress"))
    def rescore_progress(self, concept: ModerationConcept) -> str:
        if not concept.rescore_total:
            return gettext("never run") if concept.pk else "\u2013"
        return format_html(
            '<progress max="{}" value="{}"></progress> {} / {}',
            concept.rescore_total, concept.rescore_done, concept.rescore_done, concept.rescore_total,
        )

    @admin.display(description=_("calibration"))
    def calibration(self, concept: ModerationConcept) -> str:
        if not concept.pk:
            return "\u2013"
        rows, suggestion = calibrate(concept)
        if not rows:
            return gettext("No reviewed flags yet: confirm or dismiss some to calibrate the threshold.")
        if suggestion is None:
            return gettext("No threshold reaches 90%% precision on the %d reviewed flag(s).") % rows[0].flagged
        return gettext("Lowest threshold with at least 90%% precision on reviewed flags: %.3f") % suggestion

    @admin.action(description=_("Re-score the catalogue for selected concepts"), permissions=["moderate"])
    def rescore(self, request: HttpRequest, queryset: QuerySet[ModerationConcept]) -> None:
        concepts = list(queryset)
        for concept in concepts:
            request_rescore(concept)
        self.message_user(
            request,
            ngettext("Re-scoring %d concept in the background.", "Re-scoring %d concepts in the background.", len(concepts)) % len(concepts),
            messages.SUCCESS,
        )


@admin.register(ModerationFlag)
class ModerationFlagAdmin(ModerationPermissionMixin, admin.ModelAdmin):
    """The review queue: open flags, best scores first, confirmed or dismissed in bulk."""

    list_display = ["thumbnail", "asset_link", "concept", "score_display", "status", "reviewer", "reviewed_at", "created_at"]
    list_display_links = ["thumbnail", "score_display"]
    list_filter = ["status", "concept", "concept__action"]
    list_select_related = ["asset", "concept", "reviewer"]
    search_fields = ["asset__title", "concept__name"]
    readonly_fields = ["thumbnail_large", "asset_link", "concept", "score", "reviewer", "reviewed_at", "created_at"]
    fields = ["thumbnail_large", "asset_link", "concept", "score", "status", "reviewer", "reviewed_at", "created_at"]
    actions = ["confirm", "dismiss", "reopen"]
    list_per_page = 50

    class Media:
        css = {"all": ["assetsearch/admin.css"]}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # flags come from scoring, never by hand

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_moderate_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_moderate_permission(request) and super().has_delete_permission(request, obj)

    @admin.display(description=_("image"))
    def thumbnail(self, flag: ModerationFlag) -> str:
        return thumbnail_html(flag.asset)

    @admin.display(description=_("image"))
    def thumbnail_large(self, flag: ModerationFlag) -> str:
        return thumbnail_html(flag.asset, 256, "assetsearch-preview")

    @admin.display(description=_("asset"), ordering="asset__title")
    def asset_link(self, flag: ModerationFlag) -> str:
        url = reverse(f"{self.admin_site.name}:assetsearch_asset_change", args=[flag.asset_id])
        return format_html('<a href="{}">{}</a>', url, flag.asset)

    @admin.display(description=_("score"), ordering="score")
    def score_display(self, flag: ModerationFlag) -> str:
        return f"{flag.score:.3f}"

    def save_model(self, request: HttpRequest, obj: ModerationFlag, form: Any, change: bool) -> None:
        if "status" in form.changed_data:
            obj.reviewer = request.user
            obj.reviewed_at = timezone.now()
        super().save_model(request, obj, form, change)

    def _review(self, request: HttpRequest, queryset: QuerySet[ModerationFlag], status: str, done: str) -> None:
        count = queryset.review(status, request.user)
        self.message_user(request, done % count, messages.SUCCESS)

    @admin.action(description=_("Confirm selected flags"), permissions=["moderate"])
    def confirm(self, request: HttpRequest, queryset: QuerySet[ModerationFlag]) -> None:
        self._review(request, queryset, FlagStatus.CONFIRMED, gettext("Confirmed %d flag(s)."))

    @admin.action(description=_("Dismiss selected flags"), permissions=["moderate"])
    def dismiss(self, request: HttpRequest, queryset: QuerySet[ModerationFlag]) -> None:
        self._review(request, queryset, FlagStatus.DISMISSED, gettext("Dismissed %d flag(s)."))

    @admin.action(description=_("Reopen selected flags"), permissions=["moderate"])
    def reopen(self, request: HttpRequest, queryset: QuerySet[ModerationFlag]) -> None:
        self._review(request, queryset, FlagStatus.OPEN, gettext("Reopened %d flag(s)."))

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path("query/", self.admin_site.admin_view(self.query_view), name="%s_%s_query" % info),
            *super().get_urls(),
        ]

    def query_view(self, request: HttpRequest) -> HttpResponse:
        """Ad-hoc moderation query: assets ranked by the concept score of free text."""
        if not self.has_moderate_permission(request):
            raise PermissionDenied
        form = ModerationQueryForm(request.GET) if "text" in request.GET else ModerationQueryForm()
        hits: list[ModerationHit] | None = None
        if form.is_bound and form.is_valid():
            try:
                hits = moderation_query(
                    split_terms(form.cleaned_data["text"]),
                    counter_prompts=split_terms(form.cleaned_data.get("counter_prompts") or ""),
                    limit=form.cleaned_data.get("limit") or 24,
                    visible=visible_assets(request.user),
                )
            except SearchError as exc:
                form.add_error(None, str(exc))
        request.current_app = self.admin_site.name
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "title": gettext("Moderation query"),
            "has_view_permission": True,
            "media": self.media,
            "form": form,
            "hits": hits,
        }
        return TemplateResponse(request, "admin/assetsearch/moderationflag/query.html", context)
