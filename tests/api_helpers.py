"""Fixtures and helpers of the REST API tests: users of each role, token clients.

Import the fixtures into a test module by name (``from .api_helpers import admin, ...``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.cache import caches
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from assetsearch.models import Asset

EDITORS = "Asset editors"  # the group migration 0004 creates
ASSET_PERMISSIONS = ["view_asset", "add_asset", "change_asset", "delete_asset"]


def assetsearch_settings(**changes: Any) -> override_settings:
    """``override_settings`` of some ASSETSEARCH keys, keeping the project's others."""
    return override_settings(ASSETSEARCH={**getattr(settings, "ASSETSEARCH", {}), **changes})


def token_client(user: Any | None) -> APIClient:
    """A client authenticated by a real DRF token (or anonymous for None)."""
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def media_files() -> set[str]:
    """Every file under MEDIA_ROOT, relative: to prove a rejected upload left nothing."""
    root = Path(settings.MEDIA_ROOT)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def error_of(response: Any) -> dict[str, Any]:
    """The ``error`` object of an error response, after checking the shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    return body["error"]


def editors_group() -> Group:
    """The group the data migration creates (made again if a transactional test flushed it)."""
    group, created = Group.objects.get_or_create(name=EDITORS)
    if created:
        group.permissions.set(Permission.objects.filter(content_type__app_label="assetsearch", codename__in=ASSET_PERMISSIONS))
    return group


@pytest.fixture(autouse=True)
def _fresh_throttles() -> Iterator[None]:
    """Throttle counters live in a cache (the example site's on Redis): start every test from zero."""
    for each in caches.all():
        each.clear()
    yield
    for each in caches.all():
        each.clear()


@pytest.fixture
def make_user(django_user_model: Any) -> Any:
    counter = iter(range(1, 10_000))

    def make(role: str) -> Any:
        name = f"{role}-{next(counter)}"
        if role == "admin":
            return django_user_model.objects.create_superuser(name, f"{name}@example.com", "pw")
        user = django_user_model.objects.create_user(name, f"{name}@example.com", "pw")
        if role == "viewer":
            user.user_permissions.add(Permission.objects.get(content_type__app_label="assetsearch", codename="view_asset"))
        elif role == "editor":
            user.groups.add(editors_group())
        elif role != "nobody":
            raise ValueError(role)
        return user

    return make


@pytest.fixture
def admin(make_user: Any) -> Any:
    return make_user("admin")


@pytest.fixture
def editor(make_user: Any) -> Any:
    return make_user("editor")


@pytest.fixture
def viewer(make_user: Any) -> Any:
    return make_user("viewer")


@pytest.fixture
def nobody(make_user: Any) -> Any:
    return make_user("nobody")


@pytest.fixture
def admin_client(admin: Any) -> APIClient:
    return token_client(admin)


@pytest.fixture
def editor_client(editor: Any) -> APIClient:
    return token_client(editor)


@pytest.fixture
def viewer_client(viewer: Any) -> APIClient:
    return token_client(viewer)


def count_assets() -> int:
    return Asset.objects.count()


__all__ = [
    "EDITORS", "assetsearch_settings", "token_client", "media_files", "error_of", "editors_group", "count_assets",
    "_fresh_throttles", "make_user", "admin", "editor", "viewer", "nobody", "admin_client", "editor_client", "viewer_client",
]
