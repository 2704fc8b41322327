"""A Wagtail site's people and images: collections, a collection-limited editor group, uploads through Wagtail's views."""

from __future__ import annotations

import re
from typing import Any

import pytest

from django.contrib.auth.models import Group, Permission, User
from django.test import Client
from django.urls import reverse
from wagtail.images import get_image_model
from wagtail.models import Collection, GroupCollectionPermission

from assetsearch.constants import EmbeddingStatus
from assetsearch.models import IndexEntry
from tests.utils import image_file, scene, wait_for

Image = get_image_model()
PASSWORD = "correct horse battery staple"
# Image permissions a Wagtail editor gets on their collection (Wagtail's "Editors" shape).
EDITOR_IMAGE_PERMISSIONS = ("add_image", "change_image", "choose_image")


def root_collection() -> Collection:
    # Wagtail's migration made one; transactional tests flush it away between tests.
    return Collection.get_first_root_node() or Collection.add_root(name="Root")


def collection(name: str) -> Collection:
    return root_collection().add_child(name=name)


def access_admin() -> Permission:
    return Permission.objects.get(content_type__app_label="wagtailadmin", codename="access_admin")


def collection_editor(name: str, *collections: Collection, extra: tuple[str, ...] = ()) -> User:
    """A Wagtail editor (not Django staff) who may add, change and choose images in ``collections`` only."""
    group = Group.objects.create(name=f"{name} group")
    group.permissions.add(access_admin(), *Permission.objects.filter(codename__in=extra))
    for place in collections:
        for codename in EDITOR_IMAGE_PERMISSIONS:
            GroupCollectionPermission.objects.create(
                group=group, collection=place, permission=Permission.objects.get(content_type__app_label="wagtailimages", codename=codename)
            )
    user = User.objects.create_user(name, password=PASSWORD, is_staff=False)
    user.groups.add(group)
    return user


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def upload(client: Client, title: str, colour: str, shape: str, *, place: Collection, seed: int = 0) -> Any:
    """An image uploaded through Wagtail's multiple-upload view, as its drag-and-drop page does."""
    response = client.post(
        reverse("wagtailimages:add_multiple"),
        {"files[]": image_file(scene(colour=colour, shape=shape), seed=seed, name=f"{title}.png"), "title": title, "collection": place.pk},
    )
    assert response.status_code == 200 and response.json()["success"], response.content[:500]
    return Image.objects.get(pk=response.json()["image_id"])


def entry_of(image: Any) -> IndexEntry | None:
    return IndexEntry.objects.for_objects(Image, [image.pk]).search_alias().first()


def wait_until_ready(*images: Any, timeout: float = 120) -> None:
    for image in images:
        wait_for(lambda: getattr(entry_of(image), "status", None) == EmbeddingStatus.READY, timeout=timeout, message=f"{image} to be embedded")


def ids_in(html: str, pattern: str) -> list[int]:
    """The image ids ``pattern`` (a regex with one group) finds in ``html``, in page order, each once."""
    return list(dict.fromkeys(int(found) for found in re.findall(pattern, html)))


def library_ids(client: Client, **params: Any) -> list[int]:
    """The images the image library lists, in order."""
    response = client.get(reverse("wagtailimages:index_results"), params)
    assert response.status_code == 200, response.status_code
    return ids_in(response.content.decode(), r'href="/admin/images/(\d+)/')


def chooser_ids(client: Client, **params: Any) -> list[int]:
    """The images the image chooser's results offer, in order."""
    response = client.get(reverse("wagtailimages_chooser:choose_results"), params)
    assert response.status_code == 200, response.status_code
    return ids_in(response.content.decode(), r"/admin/images/chooser/chosen/(\d+)/")


def visual_search_ids(client: Client, **params: Any) -> list[int]:
    response = client.get(reverse("assetsearch_wagtail:visual_search"), params)
    assert response.status_code == 200, response.status_code
    return ids_in(response.content.decode(), r'data-image-id="(\d+)"')


def api_ids(client: Client, **params: Any) -> list[int]:
    response = client.get("/api/search/", {"model": "wagtailimages.image", **params})
    assert response.status_code == 200, response.content[:500]
    return [hit["id"] for hit in response.json()["results"]]


MARKETING = [("red", "circle"), ("blue", "square"), ("green", "star"), ("yellow", "triangle")]
PRESS = [("red", "circle"), ("purple", "heart")]


@pytest.fixture
def site(celery_worker):
    """Two collections of images uploaded by a superuser through Wagtail's multiple-upload view; titles say nothing."""
    root_collection()
    marketing, press = collection("Marketing"), collection("Press")
    admin = User.objects.create_superuser("wagtail-admin", "admin@example.com", "x")
    client = logged_in(admin)
    images: dict[tuple[str, str, str], Image] = {}
    number = 0
    for place, shapes in ((marketing, MARKETING), (press, PRESS)):
        for colour, shape in shapes:
            number += 1
            images[place.name, colour, shape] = upload(client, f"IMG_{number:04d}", colour, shape, place=place, seed=number)
    wait_until_ready(*images.values())
    # view_asset: the REST API's search endpoint asks for it whatever the model; Wagtail's permissions then decide.
    editor = collection_editor("marketing-editor", marketing, extra=("view_asset",))
    return {"admin": admin, "marketing": marketing, "press": press, "images": images, "editor": editor}
