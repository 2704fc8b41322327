"""Wagtail hooks: the semantic image library and chooser, the menu items.

- "Visual search" (main menu, below "Images") and "Image embedding status"
  (the "Reports" menu): for users who may choose or change images.
- "Image moderation" (main menu), a submenu: "Flags" (the review queue),
  "Concepts" (the concepts viewset) and "Moderation query"; for users with
  ``assetsearch.moderate_asset``.

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
from wagtail.admin.menu import Menu, MenuItem, SubmenuMenuItem

from django.contrib.auth.models import Permission

from assetsearch.constants import MODERATE_PERMISSION

from . import urls
from .indexes import SEARCH_ACTIONS, get_image_permission_policy
from .viewsets import ModerationConceptViewSet


# order=-1: these patterns come before wagtail.images' own (order 0), so the
# image library's and the chooser's URLs reach the semantic views.
@hooks.register("register_admin_urls", order=-1)
def register_admin_urls() -> list[URLPattern]:
    return [*urls.image_view_overrides, path("assetsearch/", include(urls, namespace="assetsearch_wagtail"))]


class ImageUserMenuItem(MenuItem):
    """Shown to users who may choose or change images in some collection."""

    def is_shown(self, request: HttpRequest) -> bool:
        return get_image_permission_policy().user_has_any_permission(request.user, SEARCH_ACTIONS)


@hooks.register("register_admin_menu_item")
def register_visual_search_menu_item() -> MenuItem:
    # Just below Wagtail's "Images" (order 300).
    return ImageUserMenuItem(
        _("Visual search"), reverse("assetsearch_wagtail:visual_search"), name="visual-search", icon_name="search", order=310,
    )


class ModerationMenuItem(MenuItem):
    def is_shown(self, request: HttpRequest) -> bool:
        return request.user.has_perm(MODERATE_PERMISSION)


#: The hook of the "Image moderation" submenu's items (the concepts viewset registers its own there).
MODERATION_MENU_HOOK = "register_assetsearch_moderation_menu_item"


@hooks.register("register_admin_menu_item")
def register_moderation_menu_item() -> MenuItem:
    # Shown when one of its items is: to users with moderate_asset.
    return SubmenuMenuItem(
        _("Image moderation"), Menu(register_hook_name=MODERATION_MENU_HOOK), name="image-moderation", icon_name="warning", order=320,
    )


@hooks.register(MODERATION_MENU_HOOK)
def register_flag_queue_menu_item() -> MenuItem:
    return ModerationMenuItem(_("Flags"), reverse("assetsearch_wagtail:moderation_queue"), name="image-moderation-flags", icon_name="warning", order=1)


@hooks.register(MODERATION_MENU_HOOK)
def register_moderation_query_menu_item() -> MenuItem:
    return ModerationMenuItem(
        _("Moderation query"), reverse("assetsearch_wagtail:moderation_query"), name="image-moderation-query", icon_name="search", order=3,
    )


@hooks.register("register_admin_viewset")
def register_concept_viewset() -> ModerationConceptViewSet:
    # Its menu item ("Concepts", shown to users the concept policy lets view) goes in the submenu.
    return ModerationConceptViewSet(menu_hook=MODERATION_MENU_HOOK, menu_order=2)


@hooks.register("register_reports_menu_item")
def register_embedding_status_menu_item() -> MenuItem:
    # Wagtail's "Reports" menu: a status report, for everyone who may choose or change images.
    return ImageUserMenuItem(
        _("Image embedding status"), reverse("assetsearch_wagtail:embedding_status"), name="image-embedding-status", icon_name="list-ul", order=900,
    )


@hooks.register("register_permissions")
def register_moderation_permission() -> Any:
    """``moderate_asset`` in Wagtail's group editor ("Other permissions"): a site grants it to the groups it chooses."""
    app_label, codename = MODERATE_PERMISSION.split(".")
    return Permission.objects.filter(content_type__app_label=app_label, codename=codename)
