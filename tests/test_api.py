"""REST API: assets (upload, list, filters, edit, replace, delete), bad input, permissions, thumbnails, schema."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import override_settings
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from assetsearch.models import Asset, ConceptAction, EmbeddingStatus, ModerationConcept, ModerationFlag
from assetsearch.pipeline import embed_assets
from assetsearch.search import Filters
from assetsearch.thumbnails import get_thumbnail_name

from .api_helpers import (  # noqa: F401  (fixtures)
    ASSET_PERMISSIONS,
    _fresh_throttles,
    admin,
    admin_client,
    assetsearch_settings,
    editor,
    editor_client,
    error_of,
    make_user,
    media_files,
    nobody,
    token_client,
    viewer,
    viewer_client,
)
from .utils import image_file, scene

pytestmark = pytest.mark.django_db


def png_bytes(size: tuple[int, int] = (64, 64), mode: str = "RGB", colour: Any = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def make_asset(**fields: Any) -> Asset:
    """An asset saved through the model, without the broker (nothing would run the task)."""
    fields.setdefault("image", image_file(scene(), seed=fields.pop("seed", 0)))
    with assetsearch_settings(AUTO_EMBED=False):
        return Asset.objects.create(**fields)


def ready_asset(**fields: Any) -> Asset:
    asset = make_asset(**fields)
    result = embed_assets([asset.pk])
    assert result.embedded == [asset.pk], result
    asset.refresh_from_db()
    return asset


# Upload -------------------------------------------------------------------


def test_upload_returns_the_pending_asset_with_its_urls_and_uploader(editor_client, editor):
    upload = image_file(scene(colour="blue", shape="square"), name="blue square.png", size=96)
    response = editor_client.post(
        "/api/assets/", {"image": upload, "title": "Blue square", "tags": ["blue", " square ", "blue"]}, format="multipart"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    asset = Asset.objects.get(pk=body["id"])
    assert body["title"] == "Blue square"
    assert body["tags"] == ["blue", "square"]  # stripped, duplicates dropped
    assert (body["width"], body["height"], body["mime_type"]) == (96, 96, "image/png")
    assert body["file_size"] == asset.file_size > 0
    assert body["content_hash"] == asset.content_hash and len(asset.content_hash) == 64
    assert body["uploaded_by"] == editor.pk == asset.uploaded_by_id
    assert body["embedding"]["status"] == "pending"
    assert body["embedding"]["attempts"] == 0 and body["embedding"]["error"] == ""
    assert body["embedding"]["changed_at"]
    assert body["image_url"] == f"http://testserver/assets/{asset.pk}/original/"
    assert body["thumbnail_url"] == f"http://testserver/assets/{asset.pk}/thumbnail/"
    assert body["original_filename"] == asset.original_filename == "blue square.png"
    assert asset.image.name.endswith(".png") and "blue" not in asset.image.name  # named by the server
    assert asset.image.storage.exists(asset.image.name)
    assert "image" not in body  # write-only


def test_upload_without_metadata(editor_client):
    response = editor_client.post("/api/assets/", {"image": image_file()}, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["title"] == "" and response.json()["tags"] == []


def test_a_long_file_name_is_shortened_not_a_server_error(editor_client):
    name = "é" * 200 + ".png"
    response = editor_client.post("/api/assets/", {"image": image_file(name=name)}, format="multipart")
    assert response.status_code == 201, response.content
    asset = Asset.objects.get(pk=response.json()["id"])
    assert asset.image.name.endswith(".png")
    assert asset.original_filename == "é" * 96 + ".png" and response.json()["original_filename"] == asset.original_filename


def bomb_png(side: int = 8000) -> bytes:
    """A 1-bit PNG of side x side pixels: a few kB on disk, side**2 pixels decoded."""
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def truncated_png() -> bytes:
    data = image_file(size=128).read()
    return data[: len(data) // 2]


BAD_UPLOADS = {
    "not an image": (lambda: SimpleUploadedFile("notes.png", b"these are my notes, not a picture"), 400, "invalid_image", "not an image"),
    "truncated": (lambda: SimpleUploadedFile("cut.png", truncated_png()), 400, "invalid_image", "could not be decoded"),
    "pixel bomb": (lambda: SimpleUploadedFile("bomb.png", bomb_png()), 400, "invalid_image", "8000x8000 = 64,000,000 pixels; the limit is 40,000,000"),
    "empty file": (lambda: SimpleUploadedFile("empty.png", b""), 400, "invalid", "The submitted file is empty."),
    "unsupported format": (lambda: SimpleUploadedFile("a.ico", _ico_bytes()), 400, "invalid_image", "Unsupported image format ICO"),
}


def _ico_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buffer, format="ICO")
    return buffer.getvalue()


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_a_bad_upload_is_refused_and_leaves_nothing_behind(editor_client, case):
    make_file, status, code, message = BAD_UPLOADS[case]
    before_files, before_count = media_files(), Asset.objects.count()
    response = editor_client.post("/api/assets/", {"image": make_file(), "title": "bad"}, format="multipart")
    assert response.status_code == status, response.content
    error = error_of(response)
    assert error["code"] == code
    assert message in error["message"]
    assert "image" in error["fields"] and message in error["fields"]["image"][0]
    assert Asset.objects.count() == before_count
    assert media_files() == before_files


def test_a_file_over_the_byte_limit_is_413_and_leaves_nothing_behind(editor_client):
    before_files, before_count = media_files(), Asset.objects.count()
    upload = image_file(size=128)
    assert upload.size > 500
    with assetsearch_settings(MAX_UPLOAD_BYTES=500):
        response = editor_client.post("/api/assets/", {"image": upload}, format="multipart")
    assert response.status_code == 413, response.content
    error = error_of(response)
    assert error["code"] == "file_too_large"
    assert f"The file is {upload.size:,} bytes; the limit is 500 bytes." == error["message"]
    assert Asset.objects.count() == before_count and media_files() == before_files


def test_the_pixel_limit_is_a_setting(editor_client):
    with assetsearch_settings(MAX_IMAGE_PIXELS=100 * 100):
        response = editor_client.post("/api/assets/", {"image": image_file(size=128)}, format="multipart")
    assert response.status_code == 400
    assert "128x128 = 16,384 pixels; the limit is 10,000" in error_of(response)["message"]


@pytest.mark.parametrize(
    "data, fmt, status, code, field, message",
    [
        ({"title": "no file"}, "multipart", 400, "invalid", "image", "No file was submitted."),
        ({"image": "not-a-file.png"}, "json", 400, "invalid", "image", "The submitted data was not a file."),
        ({"image": None, "tags": "red"}, "json", 400, "invalid", "tags", 'Expected a list of items but got type "str".'),
        ({"title": 7}, "json", 400, "invalid", "title", "Expected a string, got int."),
        ({"colour": "red"}, "json", 400, "invalid", "colour", "Unknown field"),
    ],
)
def test_upload_field_errors(editor_client, data, fmt, status, code, field, message):
    before = Asset.objects.count()
    response = editor_client.post("/api/assets/", data, format=fmt)
    assert response.status_code == status, response.content
    error = error_of(response)
    assert error["code"] == code
    assert any(message in m for m in error["fields"][field]), error
    assert Asset.objects.count() == before


def test_malformed_json_and_unsupported_media_types_are_client_errors(editor_client):
    asset = make_asset(title="before")
    response = editor_client.patch(f"/api/assets/{asset.pk}/", b'{"title": "after",', content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "parse_error"
    assert "JSON parse error" in error_of(response)["message"]
    response = editor_client.patch(f"/api/assets/{asset.pk}/", b"title=after", content_type="text/plain")
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"
    asset.refresh_from_db()
    assert asset.title == "before"


# List and retrieve --------------------------------------------------------


@pytest.fixture
def listed(nobody, editor):
    """Assets with varied metadata (no files read: list never opens them)."""
    now = timezone.now()
    rows = [
        dict(title="a", tags=["red", "circle"], mime_type="image/png", uploaded_by=editor, embedding_status="ready", days=1),
        dict(title="b", tags=["red"], mime_type="image/jpeg", uploaded_by=nobody, embedding_status="pending", days=2),
        dict(title="c", tags=["blue", "circle"], mime_type="image/png", uploaded_by=editor, embedding_status="failed", days=3),
        dict(title="d", tags=[], mime_type="image/webp", uploaded_by=None, embedding_status="ready", days=4),
        dict(title="e", tags=["red", "circle", "big"], mime_type="image/png", uploaded_by=nobody, embedding_status="ready", days=5),
    ]
    assets = {}
    for row in rows:
        days = row.pop("days")
        asset = Asset.objects.create(image=f"assetsearch/fake/{row['title']}.png", **row)
        Asset.objects.filter(pk=asset.pk).update(created_at=now - timedelta(days=days))
        assets[row["title"]] = asset
    return assets


def titles(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [a["title"] for a in response.json()["results"]]


def test_list_is_newest_first_and_paginated(viewer_client, listed):
    response = viewer_client.get("/api/assets/?limit=2")
    body = response.json()
    assert body["count"] == 5
    assert titles(response) == ["a", "b"]
    assert body["next"] == "http://testserver/api/assets/?limit=2&offset=2" and body["previous"] is None
    assert titles(viewer_client.get("/api/assets/?limit=2&offset=4")) == ["e"]
    assert len(viewer_client.get("/api/assets/").json()["results"]) == 5


def test_list_filters_match_the_search_filters(viewer_client, listed, editor):
    after = (timezone.now() - timedelta(days=3, hours=12)).isoformat()
    before = (timezone.now() - timedelta(days=1, hours=12)).isoformat()
    cases = [
        ({"tags": ["red", "circle"]}, Filters(tags=["red", "circle"]), ["a", "e"]),
        ({"mime_type": ["image/jpeg", "image/webp"]}, Filters(mime_types=["image/jpeg", "image/webp"]), ["b", "d"]),
        ({"status": "ready"}, Filters(status="ready"), ["a", "d", "e"]),
        ({"uploaded_by": editor.pk}, Filters(uploaded_by=editor.pk), ["a", "c"]),
        ({"created_after": after, "created_before": before}, None, ["b", "c"]),
        ({"tags": ["circle"], "status": "ready"}, Filters(tags=["circle"], status="ready"), ["a", "e"]),
    ]
    for params, filters, expected in cases:
        got = titles(viewer_client.get("/api/assets/", params))
        assert got == expected, params
        if filters is not None:
            assert got == [a.title for a in filters.apply(Asset.objects.all())]


@pytest.mark.parametrize(
    "query, field, message",
    [
        ("limit=0", "limit", "limit must be between 1 and 100, not 0."),
        ("limit=-5", "limit", "limit must be between 1 and 100, not -5."),
        ("limit=1000000", "limit", "limit must be between 1 and 100, not 1000000."),
        ("limit=ten", "limit", "A valid integer is required."),
        ("offset=-1", "offset", "offset must be between 0 and 10000, not -1."),
        ("offset=99999999", "offset", "offset must be between 0 and 10000"),
        ("status=lost", "status", '"lost" is not a valid choice.'),
        ("uploaded_by=alice", "uploaded_by", "A valid integer is required."),
        ("uploaded_by=0", "uploaded_by", "Ensure this value is greater than or equal to 1."),
        ("created_after=yesterday", "created_after", "Datetime has wrong format."),
        ("mime_type=image/svg%2Bxml", "mime_type.0", '"image/svg+xml" is not a valid choice.'),
        ("tags=", "tags.0", "This field may not be blank."),
    ],
)
def test_bad_list_parameters_are_400_with_the_field(viewer_client, listed, query, field, message):
    response = viewer_client.get(f"/api/assets/?{query}")
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] in ("invalid", "invalid_page")
    assert any(message in m for m in error["fields"][field]), error


def test_retrieve_and_unknown_ids(viewer_client, listed):
    asset = listed["c"]
    body = viewer_client.get(f"/api/assets/{asset.pk}/").json()
    assert body["id"] == asset.pk and body["tags"] == ["blue", "circle"]
    assert body["embedding"]["status"] == "failed"
    for path in ("/api/assets/999999999/", "/api/assets/abc/", "/api/assets/99999999999999999999999/"):
        response = viewer_client.get(path)
        assert response.status_code == 404, path
        assert error_of(response)["code"] == "not_found"


def test_hidden_assets_are_invisible_without_the_moderation_permission(viewer_client, admin_client):
    shown, hidden = make_asset(title="shown"), make_asset(title="hidden", seed=1)
    embed_assets([shown.pk, hidden.pk])  # ready: only the flag hides (pending uploads wait for moderation)
    concept = ModerationConcept.objects.create(name="forbidden", prompts=["forbidden"], action=ConceptAction.HIDE, enabled=True)
    ModerationFlag.objects.create(asset=hidden, concept=concept, score=0.99)
    assert titles(viewer_client.get("/api/assets/")) == ["shown"]
    assert viewer_client.get(f"/api/assets/{hidden.pk}/").status_code == 404
    assert viewer_client.get(f"/assets/{hidden.pk}/thumbnail/").status_code == 404
    assert titles(admin_client.get("/api/assets/")) == ["hidden", "shown"]
    assert admin_client.get(f"/api/assets/{hidden.pk}/").status_code == 200
    assert shown.pk


# Edit, replace, delete ----------------------------------------------------


def test_patch_and_put_edit_the_metadata(editor_client):
    asset = make_asset(title="old", description="old text", tags=["x"])
    response = editor_client.patch(f"/api/assets/{asset.pk}/", {"tags": ["Red ", "red", "circle"]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["tags"] == ["Red", "red", "circle"]
    asset.refresh_from_db()
    assert (asset.title, asset.description, asset.tags) == ("old", "old text", ["Red", "red", "circle"])

    full = editor_client.get(f"/api/assets/{asset.pk}/").json()
    full.update(title="new", description="new text", tags=[])
    response = editor_client.put(f"/api/assets/{asset.pk}/", full, format="json")  # read-only fields sent back are ignored
    assert response.status_code == 200, response.content
    asset.refresh_from_db()
    assert (asset.title, asset.description, asset.tags) == ("new", "new text", [])
    assert asset.embedding_status == EmbeddingStatus.PENDING and asset.embedding_attempts == 0


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"tags": "red"}, "tags", 'Expected a list of items but got type "str".'),
        ({"tags": [1]}, "tags.0", "Expected a string, got int."),
        ({"tags": ["x" * 65]}, "tags.0", "Ensure this field has no more than 64 characters."),
        ({"tags": [" "]}, "tags.0", "This field may not be blank."),
        ({"tags": [f"t{i}" for i in range(101)]}, "tags", "Ensure this field has no more than 100 elements."),
        ({"tags": ["same"] * 101}, "tags", "Ensure this field has no more than 100 elements."),
        ({"title": ["a"]}, "title", "Expected a string, got list."),
        ({"title": "x" * 256}, "title", "Ensure this field has no more than 255 characters."),
        ({"description": None}, "description", "This field may not be null."),
        ({"title": "bad\x00byte"}, "title", "Null characters are not allowed."),
        ({"image": "new.png"}, "image", "replace it with PUT /api/assets/<id>/file/"),
    ],
)
def test_bad_metadata_is_refused_and_nothing_changes(editor_client, data, field, message):
    asset = make_asset(title="kept", tags=["kept"])
    response = editor_client.patch(f"/api/assets/{asset.pk}/", data, format="json")
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert any(message in m for m in error["fields"][field]), error
    asset.refresh_from_db()
    assert (asset.title, asset.tags) == ("kept", ["kept"])


def test_replacing_the_file_re_embeds_and_removes_the_old_file(editor_client, django_capture_on_commit_callbacks):
    asset = ready_asset(title="to replace", tags=["red"])
    old_name, old_hash = asset.image.name, asset.content_hash
    with assetsearch_settings(AUTO_EMBED=False), django_capture_on_commit_callbacks(execute=True):
        response = editor_client.put(
            f"/api/assets/{asset.pk}/file/", {"image": image_file(scene(colour="green", shape="star"), name="star.png", size=80)},
            format="multipart",
        )
    assert response.status_code == 200, response.content
    body = response.json()
    asset.refresh_from_db()
    assert body["content_hash"] == asset.content_hash != old_hash
    assert (body["width"], body["height"]) == (80, 80)
    assert body["embedding"]["status"] == "pending" and body["title"] == "to replace"
    assert asset.image.name.endswith(".png") and asset.original_filename == body["original_filename"] == "star.png"
    assert asset.image.storage.exists(asset.image.name)
    assert not asset.image.storage.exists(old_name)


def test_replacing_with_the_same_bytes_keeps_the_embedding(editor_client):
    asset = ready_asset(seed=3)
    same = image_file(scene(), seed=3)
    response = editor_client.put(f"/api/assets/{asset.pk}/file/", {"image": same}, format="multipart")
    assert response.status_code == 200
    assert response.json()["embedding"]["status"] == "ready"


@pytest.mark.parametrize("case", ["not an image", "truncated", "pixel bomb"])
def test_a_bad_replacement_leaves_the_asset_as_it_was(editor_client, case):
    asset = ready_asset(seed=4)
    make_file, status, code, message = BAD_UPLOADS[case]
    before_files = media_files()
    response = editor_client.put(f"/api/assets/{asset.pk}/file/", {"image": make_file()}, format="multipart")
    assert response.status_code == status
    assert error_of(response)["code"] == code and message in error_of(response)["message"]
    fresh = Asset.objects.get(pk=asset.pk)
    assert (fresh.image.name, fresh.content_hash, fresh.embedding_status) == (asset.image.name, asset.content_hash, "ready")
    assert media_files() == before_files


def test_replacing_needs_multipart(editor_client):
    asset = make_asset()
    response = editor_client.put(f"/api/assets/{asset.pk}/file/", {"image": "x"}, format="json")
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


def test_delete_removes_the_asset_and_its_file(editor_client, django_capture_on_commit_callbacks):
    asset = make_asset()
    name, storage = asset.image.name, asset.image.storage
    with django_capture_on_commit_callbacks(execute=True):
        response = editor_client.delete(f"/api/assets/{asset.pk}/")
    assert response.status_code == 204
    assert not Asset.objects.filter(pk=asset.pk).exists()
    assert not storage.exists(name)
    assert error_of(editor_client.delete(f"/api/assets/{asset.pk}/"))["code"] == "not_found"


# Permissions --------------------------------------------------------------


def _upload() -> SimpleUploadedFile:
    return image_file(size=64)


# (method, path, body, format, status for a user allowed to do it)
READS = [
    ("get", "/api/assets/", None, None, 200),
    ("get", "/api/assets/{id}/", None, None, 200),
    ("get", "/api/search/?q=a+red+circle", None, None, 200),
    ("post", "/api/search/", {"text": "a red circle"}, "json", 200),
    ("get", "/api/assets/{id}/similar/", None, None, 200),
    ("get", "/api/assets/{id}/tags/", None, None, 200),
    ("get", "/api/assets/{id}/duplicates/", None, None, 200),
    ("get", "/assets/{id}/thumbnail/", None, None, 200),
]
WRITES = [
    ("post", "/api/assets/", lambda: {"image": _upload()}, "multipart", 201),
    ("patch", "/api/assets/{id}/", {"title": "patched"}, "json", 200),
    ("put", "/api/assets/{id}/", {"title": "put", "description": "", "tags": []}, "json", 200),
    ("put", "/api/assets/{id}/file/", lambda: {"image": _upload()}, "multipart", 200),
    ("delete", "/api/assets/{id}/", None, None, 204),  # last: it removes the asset
]

ROLES = {
    # role: (status of reads, status of writes); None = the endpoint's success status
    "anonymous": (401, 401),
    "nobody": (403, 403),
    "viewer": (None, 403),
    "editor": (None, None),
    "admin": (None, None),
}


def _client_for(role: str, make_user) -> APIClient:
    return APIClient() if role == "anonymous" else token_client(make_user(role))


def _check_matrix(client: APIClient, read_status: int | None, write_status: int | None) -> list[str]:
    asset = ready_asset(tags=["red", "circle"], seed=7)
    wrong = []
    for requests, expected in ((READS, read_status), (WRITES, write_status)):
        for method, path, body, fmt, success in requests:
            data = body() if callable(body) else body
            kwargs = {"format": fmt} if fmt else {}
            response = getattr(client, method)(path.format(id=asset.pk), data, **kwargs)
            want = success if expected is None else expected
            if response.status_code != want:
                wrong.append(f"{method.upper()} {path}: {response.status_code} (want {want}) {response.content[:200]!r}")
            elif want >= 400:
                error = error_of(response)
                assert error["code"] == {401: "not_authenticated", 403: "permission_denied"}[want], error
                if want == 401:
                    assert response["WWW-Authenticate"] == "Token"
    return wrong


@pytest.mark.parametrize("role", list(ROLES))
def test_permission_matrix(role, make_user):
    wrong = _check_matrix(_client_for(role, make_user), *ROLES[role])
    assert not wrong, "\n".join(wrong)


def test_anonymous_search_setting_opens_reads_only(make_user):
    with assetsearch_settings(API_ANONYMOUS_SEARCH=True):
        wrong = _check_matrix(APIClient(), None, 401)
    assert not wrong, "\n".join(wrong)


def test_a_wrong_token_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get("/api/assets/")
    assert response.status_code == 401
    assert error_of(response) == {"code": "authentication_failed", "message": "Invalid token.", "fields": {}}


def test_session_authentication_with_csrf(viewer, editor):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(viewer)
    assert client.get("/api/assets/").status_code == 200
    client.force_login(editor)
    response = client.post("/api/assets/", {"image": _upload()}, format="multipart")
    assert response.status_code == 403
    assert error_of(response)["code"] == "permission_denied" and "CSRF" in error_of(response)["message"]


def test_method_not_allowed_has_the_error_shape(admin_client):
    response = admin_client.delete("/api/search/")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


def test_permissions_migration_creates_the_permissions_first():
    """On a fresh database the permissions do not exist yet when the migrations run; 0003 creates them."""
    migration = MigrationLoader(connection).get_migration("assetsearch", "0003_editors_group")
    Permission.objects.filter(content_type__app_label="assetsearch", content_type__model="asset").delete()
    state = MigrationLoader(connection).project_state(("assetsearch", "0003_editors_group"))
    with connection.schema_editor() as schema_editor:
        migration.operations[0].code(state.apps, schema_editor)
    created = Permission.objects.filter(content_type__app_label="assetsearch", content_type__model="asset")
    assert set(ASSET_PERMISSIONS) <= set(created.values_list("codename", flat=True))


# Throttling (uploads; search throttling is in test_api_search) -------------


def test_uploads_are_throttled_per_user(editor_client, editor):
    with assetsearch_settings(THROTTLE_RATES={"upload": "2/min", "search": None}):
        statuses = [editor_client.post("/api/assets/", {"image": _upload()}, format="multipart").status_code for _ in range(3)]
        assert statuses == [201, 201, 429]
        response = editor_client.post("/api/assets/", {"image": _upload()}, format="multipart")
        # The sliding window weighs the previous minute's 2 uploads into the next
        # one: at 2/min the wait can reach 1.5 minutes (1 + 1/limit windows).
        assert 0 < int(response["Retry-After"]) <= 90
        error = error_of(response)
        assert error["code"] == "throttled" and "Expected available in" in error["message"]
        assert editor_client.get("/api/assets/").status_code == 200  # other endpoints are not in the scope
    assert Asset.objects.filter(uploaded_by=editor).count() == 2


# Thumbnails ---------------------------------------------------------------


def jpeg_of(response) -> Image.Image:
    assert response.status_code == 200, getattr(response, "content", b"")[:300]
    assert response["Content-Type"] == "image/jpeg"
    image = Image.open(io.BytesIO(b"".join(response.streaming_content)))
    assert image.format == "JPEG"
    return image


def test_thumbnails_are_sized_cached_and_conditional(viewer_client):
    asset = make_asset(image=image_file(scene(), size=300))
    assert jpeg_of(viewer_client.get(f"/assets/{asset.pk}/thumbnail/")).size == (256, 256)
    small = viewer_client.get(f"/assets/{asset.pk}/thumbnail/?size=128")
    assert jpeg_of(small).size == (128, 128)
    assert asset.image.storage.exists(get_thumbnail_name(asset, 128))
    assert "private" in small["Cache-Control"] and "max-age=86400" in small["Cache-Control"]
    again = viewer_client.get(f"/assets/{asset.pk}/thumbnail/?size=128", HTTP_IF_NONE_MATCH=small["ETag"])
    assert again.status_code == 304


def test_thumbnails_flatten_transparency_on_white(viewer_client):
    asset = make_asset(image=SimpleUploadedFile("clear.png", png_bytes((40, 40), "RGBA", (0, 0, 0, 0))))
    image = jpeg_of(viewer_client.get(f"/assets/{asset.pk}/thumbnail/"))
    assert image.size == (40, 40)  # never enlarged
    assert all(channel > 245 for channel in image.getpixel((20, 20)))


@pytest.mark.parametrize("query, message", [("size=100", "Thumbnail size 100 is not offered; use one of 128, 256, 512."), ("size=big", "Thumbnail size big is not offered; use one of 128, 256, 512.")])
def test_a_thumbnail_size_not_offered_is_400(viewer_client, query, message):
    asset = make_asset()
    response = viewer_client.get(f"/assets/{asset.pk}/thumbnail/?{query}")
    assert response.status_code == 400
    assert error_of(response)["fields"]["size"] == [message]


def test_a_thumbnail_of_a_broken_or_missing_file_is_404(viewer_client):
    broken = make_asset(image=SimpleUploadedFile("junk.png", b"not an image"))
    response = viewer_client.get(f"/assets/{broken.pk}/thumbnail/")
    assert response.status_code == 404
    assert error_of(response)["code"] == "thumbnail_unavailable" and "not an image" in error_of(response)["message"]
    missing = make_asset(seed=5)
    missing.image.storage.delete(missing.image.name)
    response = viewer_client.get(f"/assets/{missing.pk}/thumbnail/")
    assert response.status_code == 404
    assert error_of(response)["message"] == "The image file is missing from storage."


# Schema and docs ----------------------------------------------------------


def test_schema_documents_every_endpoint_and_the_error_shape(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    expected = {
        "/api/assets/": {"get", "post"},
        "/api/assets/{id}/": {"get", "put", "patch", "delete"},
        "/api/assets/{id}/file/": {"put"},
        "/api/assets/{id}/similar/": {"get"},
        "/api/assets/{id}/tags/": {"get"},
        "/api/assets/{id}/duplicates/": {"get"},
        "/api/search/": {"get", "post"},
        "/assets/{id}/thumbnail/": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
        for method in methods:
            responses = paths[path][method]["responses"]
            for status in ("401", "403"):
                assert responses[status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "413" in paths["/api/assets/"]["post"]["responses"]
    assert "429" in paths["/api/search/"]["post"]["responses"]
    assert "409" in paths["/api/assets/{id}/similar/"]["get"]["responses"]
    assert set(paths["/api/search/"]["post"]["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    error = schema["components"]["schemas"]["ErrorDetail"]
    assert set(error["properties"]) == {"code", "message", "fields"}
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])


def test_schema_has_its_own_title_version_endpoints_and_enum_names_whatever_the_site_sets(client):
    from drf_spectacular.drainage import GENERATOR_STATS

    import assetsearch

    site = {"TITLE": "The site's API", "VERSION": "9.9", "ENUM_NAME_OVERRIDES": {}, "SERVE_INCLUDE_SCHEMA": True}
    GENERATOR_STATS.reset()
    with override_settings(SPECTACULAR_SETTINGS=site):
        schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert (schema["info"]["title"], schema["info"]["version"]) == ("assetsearch API", assetsearch.__version__)
    assert all(path.startswith(("/api/", "/assets/")) for path in schema["paths"]), sorted(schema["paths"])
    assert "/api/schema/" not in schema["paths"] and "/api/docs/" not in schema["paths"]
    assert {"EmbeddingStatusEnum", "FlagStatusEnum", "ConceptActionEnum"} <= set(schema["components"]["schemas"])
    assert not GENERATOR_STATS, (GENERATOR_STATS._warn_cache, GENERATOR_STATS._error_cache)


def test_swagger_ui_is_served_from_local_static_files(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
    assert "/api/schema/" in html


@pytest.mark.parametrize("path", ["/api/assets/", "/api/assets/{id}/", "/api/search/?q=red", "/api/assets/{id}/similar/"])
def test_the_browsable_api_renders(admin, path):
    asset = make_asset()
    client = APIClient()
    client.force_login(admin)
    response = client.get(path.format(id=asset.pk), HTTP_ACCEPT="text/html")
    assert response.status_code in (200, 409), response.content[:500]
    assert response["Content-Type"].startswith("text/html")
    assert response.status_code == 200 or "asset_not_embedded" in response.content.decode()


def test_options_describes_the_endpoint(editor_client):
    response = editor_client.options("/api/assets/")
    assert response.status_code == 200
    assert "image" in response.json()["actions"]["POST"]
