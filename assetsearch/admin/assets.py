"""Admin of assets: the change list searched by meaning, the change page's
similar assets and tag suggestions, the visual search page and the
embedding status page."""

from __future__ import annotations

import base64
from collections.abc import Callable
from functools import cached_property
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import ImageField, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.text import format_lazy
from django.utils.translation import gettext, gettext_lazy as _, ngettext
from django.views.decorators.http import require_POST

from ..conf import app_settings
from ..constants import EXAMPLE_QUERY, MAX_TAG_LENGTH
from ..encoders import get_encoder
from ..exceptions import SEARCH_FAILURES
from ..files import get_original_url
from ..images import InvalidImage
from ..models import Asset, EmbeddingStatus, IndexEntry
from ..moderation import score_assets
from ..search import SearchHit, search, similar_assets
from ..suggestions import TagSuggestion, suggest_tags
from ..tasks import broker_reachable, requeue_embedding
from ..thumbnails import get_thumbnail_url, render_thumbnail
from .base import thumbnail_html
from .forms import ServedFileWidget, VisualSearchForm
from .mixins import SemanticSearchAdminMixin


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
    def visible(self) -> QuerySet[Asset]:
        return Asset.objects.visible_to(self.request.user)

    @cached_property
    def _similar(self) -> tuple[list[SearchHit], str]:
        return _items_or_reason(lambda: similar_assets(self.asset.pk, limit=self.similar_limit, visible=self.visible).hits)

    @cached_property
    def _suggestions(self) -> tuple[list[TagSuggestion], str]:
        # The vocabulary too comes from what the user may see: hidden assets' tags would tell what moderation hid.
        return _items_or_reason(lambda: suggest_tags(self.asset.pk, limit=self.suggestion_limit, visible=self.visible))

    @property
    def similar(self) -> list[SearchHit]:
        return self._similar[0]

    @property
    def similar_error(self) -> str:
        """Why there are no similar assets (e.g. not embedded yet), if that is the case."""
        return self._similar[1]

    @property
    def suggestions(self) -> list[TagSuggestion]:
        return self._suggestions[0]

    @property
    def suggestions_error(self) -> str:
        return self._suggestions[1]


def _items_or_reason(compute: Callable[[], list[Any]]) -> tuple[list[Any], str]:
    """What ``compute()`` returns and no reason, or nothing and the user's reason (one of SEARCH_FAILURES)."""
    try:
        return compute(), ""
    except SEARCH_FAILURES as exc:
        return [], str(exc)


class EmbeddingStatusFilter(admin.SimpleListFilter):
    """The status of each object's search-alias entry (kept in the index-entry table, not on the model)."""

    title = _("embedding status")
    parameter_name = "embedding_status__exact"  # the URL of earlier releases, when it was a column

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return EmbeddingStatus.choices

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() not in EmbeddingStatus.values:
            return queryset
        entries = IndexEntry.objects.for_model(queryset.model).search_alias().filter(status=self.value())
        return queryset.filter(pk__in=entries.values("object_id"))


@admin.register(Asset)
class AssetAdmin(SemanticSearchAdminMixin, admin.ModelAdmin):
    list_display = ["thumbnail", "title", "tag_list", "embedding_status", "find_similar", "created_at"]
    list_display_links = ["thumbnail", "title"]
    list_filter = [EmbeddingStatusFilter, "mime_type", "created_at"]
    search_fields = ["title", "description", "tags"]
    search_help_text = format_lazy(
        _("Searches by meaning (e.g. \u201c{query}\u201d) and by words in title, tags and description."), query=EXAMPLE_QUERY
    )
    readonly_fields = [
        "preview", "original_filename", "content_hash", "width", "height", "mime_type", "file_size",
        "embedding_status", "embedding_status_changed_at", "embedding_error", "embedding_attempts",
        "created_at", "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["image", "preview", "title", "description", "tags", "uploaded_by"]}),
        (_("File"), {"fields": ["original_filename", "content_hash", "width", "height", "mime_type", "file_size"]}),
        (_("Embedding"), {"fields": ["embedding_status", "embedding_status_changed_at", "embedding_error", "embedding_attempts"]}),
        (_("Dates"), {"fields": ["created_at", "updated_at"]}),
    ]
    actions = ["reembed", "run_moderation"]
    list_per_page = 50
    raw_id_fields = ["uploaded_by"]

    # The "currently" link of the file input goes to the permission-checked view too.
    formfield_overrides = {ImageField: {"widget": ServedFileWidget}}

    class Media:
        css = {"all": ["assetsearch/admin.css"]}

    # Queryset and search

    def get_queryset(self, request: HttpRequest) -> QuerySet[Asset]:
        """Assets ``request.user`` may see: hidden ones only with ``moderate_asset``."""
        queryset = Asset.objects.visible_to(request.user).with_entry()
        ordering = self.get_ordering(request)
        if ordering:
            queryset = queryset.order_by(*ordering)
        return queryset

    # Columns

    @admin.display(description=_("image"))
    def thumbnail(self, asset: Asset) -> str:
        return thumbnail_html(asset)

    @admin.display(description=_("preview"))
    def preview(self, asset: Asset) -> str:
        if not asset.pk:
            return "-"
        return format_html(
            '<a href="{}"><img src="{}" alt="" class="assetsearch-preview"></a>', get_original_url(asset), get_thumbnail_url(asset, 512)
        )

    @admin.display(description=_("tags"))
    def tag_list(self, asset: Asset) -> str:
        return ", ".join(asset.tags)

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

    @admin.action(description=_("Re-embed selected assets"), permissions=["change"])
    def reembed(self, request: HttpRequest, queryset: QuerySet[Asset]) -> None:
        ids, _changed, sent = requeue_embedding(queryset)
        if sent:
            self.message_user(request, ngettext("Queued %d asset for embedding.", "Queued %d assets for embedding.", len(ids)) % len(ids), messages.SUCCESS)
        else:
            self.message_user(request, _("The task broker is unreachable; the assets stay pending and the sweep will retry."), messages.WARNING)

    @admin.action(description=_("Run moderation on selected assets"), permissions=["moderate"])
    def run_moderation(self, request: HttpRequest, queryset: QuerySet[Asset]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        scoring = score_assets(ids)
        if not scoring.concepts:
            self.message_user(request, _("No moderation concept is enabled; nothing was scored."), messages.WARNING)
            return
        self.message_user(
            request,
            gettext("Scored %(assets)d asset(s) against %(concepts)d enabled concept(s): %(flags)d flag(s) made or refreshed.")
            % {"assets": len(scoring.scored), "concepts": scoring.concepts, "flags": scoring.flags},
            messages.SUCCESS,
        )
        if len(scoring.scored) < len(ids):
            skipped = len(ids) - len(scoring.scored)
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
            except SEARCH_FAILURES as exc:
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
        if not tag or len(tag) > MAX_TAG_LENGTH:
            self.message_user(request, gettext("A tag must be 1 to %d characters long.") % MAX_TAG_LENGTH, messages.ERROR)
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
        report = IndexEntry.objects.search_alias().report_of(visible, encoder_key)
        context = self.page_context(
            request,
            gettext("Embedding status"),
            **vars(report),
            encoder_key=encoder_key,
            sweep_after=app_settings.SWEEP_AFTER_SECONDS,
            broker_reachable=broker_reachable(),
            changelist_url=reverse(f"{self.admin_site.name}:assetsearch_asset_changelist"),
        )
        return TemplateResponse(request, "admin/assetsearch/asset/status.html", context)

    def requeue(self, request: HttpRequest, assets: QuerySet[Asset]) -> None:
        """Send pending and failed assets to the workers again; failed ones become pending first."""
        ids, failed, sent = requeue_embedding(assets.unfinished())
        if not ids:
            self.message_user(request, _("No asset is pending or failed; nothing to send."), messages.INFO)
        elif sent:
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
