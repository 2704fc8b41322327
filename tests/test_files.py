"""An asset's files follow its row: whatever deletes or replaces it, the original
and its thumbnails go after commit, and a rollback leaves no stored file behind."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client

from assetsearch.models import Asset
from assetsearch.thumbnails import get_thumbnail, get_thumbnail_names

from .api_helpers import assetsearch_settings, token_client
from .utils import image_file, scene

pytestmark = pytest.mark.django_db


class Rollback(Exception):
    pass


def stored_asset(seed: int = 1, **parts: str) -> Asset:
    with assetsearch_settings(AUTO_EMBED=False):
        return Asset.objects.create(image=image_file(scene(**parts), seed=seed, name=f"file-{seed}.png"), title=f"asset {seed}")


def files_of(asset: Asset) -> list[str]:
    """The asset's original and a thumbnail of every offered size, all made now."""
    for name in get_thumbnail_names(asset.image.name):
        size = int(name.rsplit("-", 1)[1].removesuffix(".jpg"))
        assert get_thumbnail(asset, size) == name
    names = [asset.image.name, *get_thumbnail_names(asset.image.name)]
    assert all(asset.image.storage.exists(name) for name in names)
    return names


def existing(asset: Asset, names: list[str]) -> list[str]:
    return [name for name in names if asset.image.storage.exists(name)]


@pytest.fixture
def superuser_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("files-admin", "files-admin@example.com", "pw"))
    return client


def test_orm_delete_removes_the_file_and_thumbnails_after_commit(django_capture_on_commit_callbacks: Any) -> None:
    asset = stored_asset()
    names = files_of(asset)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        asset.delete()
    assert existing(asset, names) == names  # not before the commit
    for callback in callbacks:
        callback()
    assert existing(asset, names) == []


def test_queryset_delete_removes_every_asset_s_files(django_capture_on_commit_callbacks: Any) -> None:
    assets = [stored_asset(seed) for seed in (2, 3)]
    names = {asset.pk: files_of(asset) for asset in assets}
    with django_capture_on_commit_callbacks(execute=True):
        Asset.objects.filter(pk__in=[a.pk for a in assets]).delete()
    assert all(existing(asset, names[asset.pk]) == [] for asset in assets)


def test_admin_delete_removes_the_file_and_thumbnails(superuser_client: Client, django_capture_on_commit_callbacks: Any) -> None:
    asset = stored_asset(4)
    names = files_of(asset)
    with django_capture_on_commit_callbacks(execute=True):
        response = superuser_client.post(f"/admin/assetsearch/asset/{asset.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content
    assert not Asset.objects.filter(pk=asset.pk).exists()
    assert existing(asset, names) == []


def test_admin_bulk_delete_action_removes_the_files(superuser_client: Client, django_capture_on_commit_callbacks: Any) -> None:
    assets = [stored_asset(seed) for seed in (5, 6)]
    names = {asset.pk: files_of(asset) for asset in assets}
    with django_capture_on_commit_callbacks(execute=True):
        response = superuser_client.post(
            "/admin/assetsearch/asset/",
            {"action": "delete_selected", "_selected_action": [a.pk for a in assets], "post": "yes"},
        )
    assert response.status_code == 302, response.content
    assert all(existing(asset, names[asset.pk]) == [] for asset in assets)


def test_identical_bytes_get_their_own_thumbnails_named_apart_from_the_content(django_capture_on_commit_callbacks: Any) -> None:
    first, twin = stored_asset(7), stored_asset(7)
    assert first.content_hash == twin.content_hash
    first_names, twin_names = files_of(first), files_of(twin)
    assert not set(first_names) & set(twin_names)
    assert not any(first.content_hash[:16] in name for name in first_names + twin_names)  # not computable from the bytes
    with django_capture_on_commit_callbacks(execute=True):
        first.delete()
    assert existing(first, first_names) == [] and existing(twin, twin_names) == twin_names
    with django_capture_on_commit_callbacks(execute=True):
        twin.delete()
    assert existing(twin, twin_names) == []


def test_replacing_through_the_api_removes_the_old_file_and_thumbnails(django_capture_on_commit_callbacks: Any) -> None:
    asset = stored_asset(8)
    old = files_of(asset)
    editor = User.objects.create_superuser("files-editor", "files-editor@example.com", "pw")
    new_file = image_file(scene(colour="green", shape="star"), name="star.png")
    with assetsearch_settings(AUTO_EMBED=False), django_capture_on_commit_callbacks(execute=True):
        response = token_client(editor).put(f"/api/assets/{asset.pk}/file/", {"image": new_file}, format="multipart")
    assert response.status_code == 200, response.content
    asset.refresh_from_db()
    assert existing(asset, old) == []
    assert asset.image.storage.exists(asset.image.name)


def test_a_rolled_back_upload_leaves_no_file() -> None:
    with pytest.raises(Rollback), transaction.atomic():
        asset = stored_asset(9)
        name, storage = asset.image.name, asset.image.storage
        assert storage.exists(name)
        raise Rollback
    assert not storage.exists(name)


def test_a_rolled_back_replacement_keeps_the_old_file_and_drops_the_new(django_capture_on_commit_callbacks: Any) -> None:
    asset = stored_asset(10)
    old_name, storage = asset.image.name, asset.image.storage
    with pytest.raises(Rollback), transaction.atomic(), assetsearch_settings(AUTO_EMBED=False):
        asset.image = image_file(scene(colour="blue"), name="replacement.png")
        asset.save()
        new_name = asset.image.name
        assert storage.exists(new_name)
        raise Rollback
    assert not storage.exists(new_name)
    assert storage.exists(old_name)
    assert Asset.objects.get(pk=asset.pk).image.name == old_name


def test_a_committed_upload_keeps_its_file(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        asset = stored_asset(11)
    assert asset.image.storage.exists(asset.image.name)
