"""Wagtail hooks: the semantic image library and chooser, the "Visual search" menu item.

Moderation hides images in the semantic views themselves, after Wagtail's
search backend ran: that backend refuses the hiding filter's EXISTS, so it
cannot go in ``construct_image_chooser_queryset``.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import URLPattern, include, path, reverse
from django.utils.translation import gettext_lazy as _
from wagtail import hooks
from wagtail.admin.menu import MenuItem

from django.contrib.auth.models import Permission

from assetsearch.constants import MODERATE_PERMISSION

from . import urls
from .indexes import SEARCH_ACTIONS, get_image_permission_policy


# order=-1: these patterns come before wagtail.images' own (order 0), so the
# image library's and the chooser's URLs reach the semantic views.
@hooks.register("register_admin_urls", order=-1)
def register_admin_urls() -> list[URLPattern]:
    return [*urls.image_view_overrides, path("assetsearch/", include(urls, namespace="assetsearch_wagtail"))]


class VisualSearchMenuItem(MenuItem):
    def is_shown(self, request: HttpRequest) -> bool:
        return get_image_permission_policy().user_has_any_permission(request.user, SEARCH_ACTIONS)


@hooks.register("register_admin_menu_item")
def register_visual_search_menu_item() -> MenuItem:
    # Just below Wagtail's "Images" (order 300).
    return VisualSearchMenuItem(
        _("Visual search"), reverse("assetsearch_wagtail:visual_search"), name="visual-search", icon_name="search", order=310,
    )


class ModerationMenuItem(MenuItem):
    def is_shown(self, request: HttpRequest) -> bool:
        return request.user.has_perm(MODERATE_PERMISSION)


@hooks.register("register_admin_menu_item")
def register_moderation_menu_item() -> MenuItem:
    return ModerationMenuItem(
        _("Image moderation"), reverse("assetsearch_wagtail:moderation_queue"), name="image-moderation", icon_name="warning", order=320,
    )


@hooks.register("register_permissions")
def register_moderation_permission() -> Any:
    """``moderate_asset`` in Wagtail's group editor ("Other permissions"): a site grants it to the groups it chooses."""
    app_label, codename = MODERATE_PERMISSION.split(".")
    return Permission.objects.filter(content_type__app_label=app_label, codename=codename)
