"""Django admin for assets: thumbnails, embedding status, re-embed action."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _, ngettext

from .models import Asset, EmbeddingStatus
from .pipeline import enqueue_embedding
from .thumbnails import get_thumbnail_url


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ["thumbnail", "title", "tag_list", "embedding_status", "created_at"]
    list_display_links = ["thumbnail", "title"]
    list_filter = ["embedding_status", "mime_type", "created_at"]
    search_fields = ["title", "description", "tags"]
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
    actions = ["reembed"]
    list_per_page = 50

    @admin.display(description=_("image"))
    def thumbnail(self, asset: Asset) -> str:
        # A cached 128 px JPEG rather than the original, which may be megabytes.
        return format_html('<img src="{}" alt="" loading="lazy" style="width:64px;height:64px;object-fit:cover;border-radius:4px">', get_thumbnail_url(asset, 128))

    @admin.display(description=_("preview"))
    def preview(self, asset: Asset) -> str:
        if not asset.pk:
            return "-"
        return format_html('<img src="{}" alt="" style="max-width:320px;max-height:320px">', asset.image.url)

    @admin.display(description=_("tags"))
    def tag_list(self, asset: Asset) -> str:
        return ", ".join(asset.tags)

    def save_model(self, request: HttpRequest, obj: Asset, form: Any, change: bool) -> None:
        if not change and obj.uploaded_by_id is None:
            obj.uploaded_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Re-embed selected assets"), permissions=["change"])
    def reembed(self, request: HttpRequest, queryset: QuerySet[Asset]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        Asset.objects.filter(pk__in=ids).set_status(EmbeddingStatus.PENDING)
        if enqueue_embedding(ids, force=True):
            self.message_user(request, ngettext("Queued %d asset for embedding.", "Queued %d assets for embedding.", len(ids)) % len(ids), messages.SUCCESS)
        else:
            self.message_user(request, _("The task broker is unreachable; the assets stay pending and the sweep will retry."), messages.WARNING)
