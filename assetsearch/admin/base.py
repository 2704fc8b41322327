"""What the admin pages share: thumbnails, the frame of the extra pages, the moderation permission."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.html import format_html

from django.db.models import Model

from ..constants import MODERATE_PERMISSION
from ..registry import get_index


def thumbnail_html(obj: Model | None, size: int = 128, css_class: str = "assetsearch-thumb") -> str:
    """An ``<img>`` of any registered object's thumbnail (its index's ``thumbnail_url``)."""
    if obj is None:
        return "\u2013"
    # A cached JPEG thumbnail rather than the original, which may be megabytes.
    return format_html('<img src="{}" alt="" loading="lazy" class="{}">', get_index(obj).thumbnail_url(obj, size), css_class)


class AdminPageMixin:
    """For a ``ModelAdmin``: the context of its extra pages, in the admin's frame."""

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

    def has_moderate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(MODERATE_PERMISSION)
