"""Who may do what: Django model permissions, plus reads that need ``view_asset``.

- Reads (GET, HEAD, OPTIONS, and search by POST) need ``assetsearch.view_asset``,
  unless ``API_ANONYMOUS_SEARCH`` opens them to everyone.
- Writes need the model permission of their method, as
  :class:`~rest_framework.permissions.DjangoModelPermissions` maps them:
  POST ``add_asset``, PUT/PATCH ``change_asset``, DELETE ``delete_asset``.

The data migration ``0004_asset_editors_group`` creates an "Asset editors"
group holding all four.

Moderation endpoints need ``assetsearch.moderate_asset`` for every method;
creating or changing a concept also needs the model permission
(``add_moderationconcept``, ``change_moderationconcept``).
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission, DjangoModelPermissions
from rest_framework.request import Request

from ..conf import app_settings
from ..constants import MODERATE_PERMISSION

VIEW_PERMISSION = "assetsearch.view_asset"


def is_read_request(request: Request, view: Any) -> bool:
    """A request that changes nothing: safe methods, or a view that says so (search by POST)."""
    read_only = getattr(view, "is_read_only_request", None)
    if read_only is not None:
        return bool(read_only(request))
    return request.method in SAFE_METHODS


class AssetPermission(DjangoModelPermissions):
    view_perms = ["%(app_label)s.view_%(model_name)s"]
    perms_map = {**DjangoModelPermissions.perms_map, "GET": view_perms, "HEAD": view_perms, "OPTIONS": view_perms}

    def has_permission(self, request: Request, view: Any) -> bool:
        if is_read_request(request, view):
            if app_settings.API_ANONYMOUS_SEARCH:
                return True
            user = request.user
            return bool(user and user.is_authenticated and user.has_perm(VIEW_PERMISSION))
        return super().has_permission(request, view)


class IndexedReadPermission(BasePermission):
    """Reads of any registered model's objects: authenticated (or ``API_ANONYMOUS_SEARCH``); the model's
    index then decides what the user sees (``visible_to``)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not is_read_request(request, view):
            return False
        return app_settings.API_ANONYMOUS_SEARCH or bool(request.user and request.user.is_authenticated)


class ModerationPermission(BasePermission):
    """Moderation endpoints: ``assetsearch.moderate_asset``, whatever the method."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm(MODERATE_PERMISSION))


class ModerationConceptPermission(DjangoModelPermissions):
    """Concepts: ``moderate_asset`` to read; writes also need ``add``/``change_moderationconcept``."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return ModerationPermission().has_permission(request, view) and super().has_permission(request, view)
