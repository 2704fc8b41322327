"""A host's Photo goes through the same pipeline, visibility and file serving as an asset.

The decode pool and the image checks, failures with their reason on the
entry, ``HIDE_UNMODERATED``, the pending-work health check, the
permission-checked thumbnail view with its headers, and thumbnails that go
with a replaced image.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from assetsearch import health
from assetsearch.constants import ConceptAction, EmbeddingStatus
from assetsearch.files import MISSING_FILE_MESSAGE
from assetsearch.models import IndexEntry, ModerationConcept
from assetsearch.pipeline import embed_objects
from assetsearch.registry import get_index
from assetsearch.search import Query, search
from assetsearch.thumbnails import get_thumbnail, get_thumbnail_sizes
from tests.hostapp.models import Photo

from .api_helpers import assetsearch_settings, error_of, make_user, token_client  # noqa: F401  (fixtures)
from .utils import image_file, scene

pytestmark = pytest.mark.django_db

PHOTO = "hostapp.photo"


def new_photo(name: str = "p.png", data: bytes | None = None, **fields: Any) -> Photo:
    """A photo saved without a worker: its entry is pending until embed_objects() runs here."""
    image = SimpleUploadedFile(name, data) if data is not None else image_file(scene(colour="red", shape="circle"), name=name)
    with assetsearch_settings(AUTO_EMBED=False):
        return Photo.objects.create(image=image, caption=fields.pop("caption", "a photo"), **fields)


def entry_of(photo: Photo) -> IndexEntry:
    return IndexEntry.objects.for_objects(Photo, [photo.pk]).search_alias().get()


def photo_viewer(make_user: Any) -> Any:
    user = make_user("nobody")
    user.user_permissions.add(Permission.objects.get(content_type__app_label="hostapp", codename="view_photo"))
    return user


def test_a_photo_is_embedded_through_the_decode_pool_and_bad_files_fail_with_the_reason():
    good = [new_photo(f"g{i}.png") for i in range(3)]
    not_an_image = new_photo("x.png", data=b"not an image at all")
    gone = new_photo("gone.png")
    gone.image.storage.delete(gone.image.name)
    assert entry_of(good[0]).status == EmbeddingStatus.PENDING

    with assetsearch_settings(DECODE_THREADS=2):
        result = embed_objects(PHOTO, [p.pk for p in [*good, not_an_image, gone]])
    assert sorted(result.embedded) == sorted(p.pk for p in good)
    assert all(entry_of(p).status == EmbeddingStatus.READY and len(entry_of(p).content_hash) == 64 for p in good)
    failed = entry_of(not_an_image)
    assert failed.status == EmbeddingStatus.FAILED and failed.error, failed.error
    assert (entry_of(gone).status, entry_of(gone).error) == (EmbeddingStatus.FAILED, MISSING_FILE_MESSAGE)

    again = embed_objects(PHOTO, [good[0].pk])  # the bytes its vector was made from: nothing encoded
    assert again.unchanged == [good[0].pk] and again.embedded == []


def test_a_photo_is_decoded_like_an_asset_exif_rotation_and_16_bit_greyscale():
    from .test_images import encoded, exif_rotated_jpeg, sixteen_bit_png, upright

    image = upright()
    files = [exif_rotated_jpeg(image), encoded(image, "JPEG", quality=95), sixteen_bit_png(image), encoded(image.convert("L"))]
    photos = [new_photo(f"f{i}.img", data=data) for i, data in enumerate(files)]
    assert sorted(embed_objects(PHOTO, [p.pk for p in photos]).embedded) == sorted(p.pk for p in photos)
    rotated, straight, sixteen, eight = (np.asarray(entry_of(p).vector, dtype=np.float64) for p in photos)
    assert rotated @ straight / (np.linalg.norm(rotated) * np.linalg.norm(straight)) >= 0.99
    assert sixteen @ eight / (np.linalg.norm(sixteen) * np.linalg.norm(eight)) >= 0.99


def test_hide_unmoderated_hides_a_pending_photo_until_it_is_ready(make_user):
    viewer = photo_viewer(make_user)
    photo = new_photo(caption="pending red circle")
    index = get_index(Photo)
    visible = lambda user: set(index.visible_to(user, index.get_queryset()).values_list("pk", flat=True))  # noqa: E731
    assert photo.pk in visible(viewer)  # no hide concept: nothing to wait for
    ModerationConcept.objects.create(name="forbidden", prompts=["forbidden"], action=ConceptAction.HIDE, enabled=True)
    assert photo.pk not in visible(viewer)
    with assetsearch_settings(HIDE_UNMODERATED=False):
        assert photo.pk in visible(viewer)
    assert photo.pk in visible(make_user("admin"))  # moderators see everything
    embed_objects(PHOTO, [photo.pk])
    assert entry_of(photo).status == EmbeddingStatus.READY
    assert photo.pk in visible(viewer)


def test_pending_photos_count_in_the_health_check():
    photo = new_photo()
    IndexEntry.objects.for_objects(Photo, [photo.pk]).update(status_changed_at=timezone.now() - timedelta(hours=1))
    with assetsearch_settings(HEALTH_PENDING_WARN_SECONDS=600):
        result = health.check_pending()
    assert result.status == health.WARNING and result.details["pending"] >= 1
    assert result.details["oldest_pending_age_s"] >= 3600 and "more than 600 s" in result.message


def test_a_photo_thumbnail_is_served_by_the_permission_checked_view(make_user):
    photo = new_photo()
    embed_objects(PHOTO, [photo.pk])
    url = get_index(Photo).thumbnail_url(photo)
    assert url == f"/api/objects/{PHOTO}/{photo.pk}/thumbnail/"

    response = token_client(photo_viewer(make_user)).get(url)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "image/jpeg" and response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"].startswith("default-src 'none'")
    assert b"".join(response.streaming_content)[:2] == b"\xff\xd8"

    assert token_client(make_user("nobody")).get(url).status_code == 404  # no view_photo: it does not exist for them
    refused = token_client(photo_viewer(make_user)).get(url, {"colour": "red"})
    assert refused.status_code == 400 and "colour" in error_of(refused)["message"]
    too_big = token_client(photo_viewer(make_user)).get(url, {"size": 100000})
    assert too_big.status_code == 400
    unknown = token_client(photo_viewer(make_user)).get(f"/api/objects/nope.model/{photo.pk}/thumbnail/")
    assert unknown.status_code == 404 and error_of(unknown)


def test_replacing_or_removing_a_photos_image_drops_its_old_thumbnails_and_never_a_host_file(django_capture_on_commit_callbacks):
    photo = new_photo("first.png")
    index = get_index(Photo)
    storage, first_file = photo.image.storage, photo.image.name
    old = [get_thumbnail(photo, size, index) for size in get_thumbnail_sizes()]
    assert all(storage.exists(name) for name in old)

    with assetsearch_settings(AUTO_EMBED=False), django_capture_on_commit_callbacks(execute=True):
        photo.caption = "a new caption"
        photo.save()  # the same image: its thumbnails stay
    assert all(storage.exists(name) for name in old)

    with assetsearch_settings(AUTO_EMBED=False), django_capture_on_commit_callbacks(execute=True):
        photo.image = image_file(scene(colour="blue", shape="square"), name="second.png")
        photo.save()
    assert not any(storage.exists(name) for name in old)
    assert storage.exists(first_file)  # the host's replaced file is the host's to keep or delete
    assert entry_of(photo).status == EmbeddingStatus.PENDING and entry_of(photo).source_key == photo.image.name
    new = get_thumbnail(photo, None, index)
    assert new not in old and storage.exists(new)

    with assetsearch_settings(AUTO_EMBED=False), django_capture_on_commit_callbacks(execute=True):
        photo.image = ""
        photo.save()  # no image: no entry, no thumbnail
    assert not storage.exists(new) and not IndexEntry.objects.for_objects(Photo, [photo.pk]).exists()


def test_the_model_parameter_is_validated_like_every_parameter(make_user):
    client = token_client(make_user("admin"))
    unknown = client.get("/api/search/", {"q": "red", "model": "nope.model"})
    assert unknown.status_code == 400 and "Unknown model" in str(error_of(unknown))
    too_many = client.get("/api/search/", {"q": "red", "model": [PHOTO] * 50})
    assert too_many.status_code == 400 and error_of(too_many)
    photo = new_photo(caption="a red circle")
    embed_objects(PHOTO, [photo.pk])
    found = client.get("/api/search/", {"q": "a red circle", "model": PHOTO, "limit": 1})
    assert found.status_code == 200, found.content
    assert [(hit["model"], hit["id"]) for hit in found.json()["results"]] == [(PHOTO, photo.pk)]


def test_search_sees_a_photo_only_with_view_photo(make_user):
    photo = new_photo(caption="a red circle")
    embed_objects(PHOTO, [photo.pk])
    mine = search(Query(text="a red circle", models=[Photo], user=photo_viewer(make_user), limit=5))
    assert [hit.object for hit in mine.hits] == [photo]
    assert search(Query(text="a red circle", models=[Photo], user=make_user("nobody"), limit=5)).hits == []


def test_the_duplicates_command_groups_a_hosts_photos_that_are_copies():
    original = new_photo("original.png")
    copy = new_photo("copy.png", data=image_file(scene(colour="red", shape="circle")).read())  # the same bytes, uploaded again
    # The same red circle drawn on the left: another picture (a centred circle drawn with another seed is only
    # moved and scaled a little, which is what a crop and a resize do, so it would pass as a copy).
    look_alike = new_photo("other.png", data=image_file(scene(colour="red", shape="circle", position="left")).read())
    embed_objects(PHOTO, [original.pk, copy.pk, look_alike.pk])
    out = io.StringIO()
    call_command("assetsearch_duplicates", model=PHOTO, stdout=out, verbosity=0)
    assert out.getvalue().splitlines() == [
        f"Group 1 (2 photos): #{original.pk} 'a photo', #{copy.pk} 'a photo'",
        "1 duplicate group(s) among 3 embedded photos.",
    ], out.getvalue()
    out = io.StringIO()
    call_command("assetsearch_duplicates", model=PHOTO, vectors_only=True, json=True, stdout=out, verbosity=0)
    assert json.loads(out.getvalue()) == [sorted([original.pk, copy.pk, look_alike.pk])]
    with pytest.raises(CommandError, match="No indexed model 'hostapp.nothing'"):
        call_command("assetsearch_duplicates", model="hostapp.nothing")
