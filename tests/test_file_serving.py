"""Files are named by the server and served only by permission-checked views, with headers
that keep any upload from becoming a page: the polyglot upload, hidden assets' files, the
serving backends, and the example site's /media/ route."""

from __future__ import annotations

import importlib
import io
import re
from pathlib import Path
from typing import Any
from unittest.mock import patch
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.files.storage import FileSystemStorage
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import clear_url_caches
from PIL import Image

from assetsearch.constants import ConceptAction, EmbeddingStatus
from assetsearch.files import get_original_url
from assetsearch.models import Asset, ModerationConcept, ModerationFlag, IndexEntry
from assetsearch.tasks import create_assets
from assetsearch.thumbnails import get_thumbnail, get_thumbnail_names, get_thumbnail_sizes

from .api_helpers import (  # noqa: F401  (fixtures)
    _fresh_throttles,
    admin,
    assetsearch_settings,
    editor,
    editor_client,
    editors_group,
    error_of,
    make_user,
    token_client,
)
from .utils import POLYGLOT_SCRIPT, image_file, polyglot_png, scene

pytestmark = pytest.mark.django_db

STORED_NAME = re.compile(r"^assetsearch/\d{4}/\d{2}/[0-9a-f]{32}\.(png|jpg)$")


def body_of(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def assert_safe_file_headers(response: Any, content_type: str) -> None:
    assert response["Content-Type"] == content_type
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"].startswith("default-src 'none'")
    assert "private" in response["Cache-Control"]


def make_asset(name: str = "file.png", seed: int = 0, **fields: Any) -> Asset:
    with assetsearch_settings(AUTO_EMBED=False):
        asset = Asset.objects.create(image=image_file(scene(), seed=seed, name=name), **fields)
    # Ready, as after its embedding: a pending upload is its uploader's alone while a hide concept exists.
    IndexEntry.objects.for_objects(Asset, [asset.pk]).update(status=EmbeddingStatus.READY, content_hash=asset.content_hash)
    asset.refresh_from_db()
    return asset


def hide(asset: Asset) -> None:
    concept, _ = ModerationConcept.objects.get_or_create(
        name="forbidden", defaults={"prompts": ["forbidden"], "action": ConceptAction.HIDE, "enabled": True}
    )
    ModerationFlag.objects.create(asset=asset, concept=concept, score=0.99)


@pytest.fixture
def moderator(make_user: Any) -> Any:
    user = make_user("editor")
    user.user_permissions.add(Permission.objects.get(content_type__app_label="assetsearch", codename="moderate_asset"))
    return user


# Names --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x.html", "x.svg", "x.php", "x"])
def test_a_polyglot_upload_is_stored_as_png_and_served_as_png_with_nosniff_and_csp(editor_client: Any, name: str) -> None:
    upload = polyglot_png(name)
    data = upload.read()
    upload.seek(0)
    response = editor_client.post("/api/assets/", {"image": upload, "title": "polyglot"}, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    asset = Asset.objects.get(pk=body["id"])
    assert STORED_NAME.match(asset.image.name), asset.image.name  # the client's name and extension are gone
    assert asset.image.name.endswith(".png") and asset.mime_type == "image/png"
    assert asset.original_filename == body["original_filename"] == name  # kept for display

    assert body["image_url"] == f"http://testserver/assets/{asset.pk}/original/"
    served = editor_client.get(body["image_url"])
    assert served.status_code == 200
    assert_safe_file_headers(served, "image/png")
    assert served["Content-Disposition"] == 'inline; filename="x.png"'  # saved to disk, it is a .png too
    assert body_of(served) == data and POLYGLOT_SCRIPT.encode() in data

    thumbnail = editor_client.get(body["thumbnail_url"])
    assert thumbnail.status_code == 200
    assert_safe_file_headers(thumbnail, "image/jpeg")
    assert thumbnail["Content-Disposition"] == 'inline; filename="x.jpg"'
    assert Image.open(io.BytesIO(body_of(thumbnail))).format == "JPEG"


def test_every_path_names_the_file_by_its_format(admin: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any) -> None:
    png = image_file(scene(colour="green"), name="scan.tif").read()  # a PNG called .tif

    # The admin's form.
    client = Client()
    client.force_login(admin)
    with assetsearch_settings(AUTO_EMBED=False):
        response = client.post(
            "/admin/assetsearch/asset/add/",
            {"image": image_file(scene(colour="blue"), name="photo.png", fmt="JPEG"), "title": "from the admin", "tags": ""},  # a JPEG called .png
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    from_admin = Asset.objects.get(title="from the admin")
    assert from_admin.image.name.endswith(".jpg") and from_admin.original_filename == "photo.png"

    # The import command (one bulk path with tasks.create_assets).
    (tmp_path / "scan.tif").write_bytes(png)
    with assetsearch_settings(AUTO_EMBED=False):
        call_command("assetsearch_import", str(tmp_path), verbosity=0)
    imported = Asset.objects.get(title="scan")
    assert STORED_NAME.match(imported.image.name) and imported.image.name.endswith(".png")
    assert imported.original_filename == "scan.tif"

    # The bulk path itself, and the ORM.
    with assetsearch_settings(AUTO_EMBED=False):
        [bulk_id] = create_assets([Asset(image=image_file(name="bulk.html"), title="bulk")])
        orm = Asset.objects.create(image=image_file(name="orm.svg"), title="orm")
    for asset in (Asset.objects.get(pk=bulk_id), orm):
        assert STORED_NAME.match(asset.image.name) and asset.image.name.endswith(".png"), asset.image.name
        assert asset.image.storage.exists(asset.image.name)


def test_stored_names_are_random_not_derived_from_the_bytes() -> None:
    first, second = make_asset("same.png"), make_asset("same.png")
    assert first.content_hash == second.content_hash
    assert first.image.name != second.image.name
    for asset in (first, second):
        names = [asset.image.name, *get_thumbnail_names(asset.image.name)]
        assert not any(asset.content_hash[:16] in name for name in names)


# Visibility ---------------------------------------------------------------


def file_urls(asset: Asset) -> list[str]:
    return [get_original_url(asset), *(f"/assets/{asset.pk}/thumbnail/?size={size}" for size in get_thumbnail_sizes())]


def test_a_hidden_asset_s_original_and_thumbnails_are_404_for_an_editor_and_anonymous(editor: Any, moderator: Any) -> None:
    hidden, shown = make_asset("hidden.png", seed=1), make_asset("shown.png", seed=2)
    hide(hidden)
    for size in get_thumbnail_sizes():
        get_thumbnail(hidden, size)  # cached thumbnails exist: only the permission check stands in the way
    anonymous = token_client(None)
    with assetsearch_settings(API_ANONYMOUS_SEARCH=True):
        for url in file_urls(hidden):
            for who, client in (("editor", token_client(editor)), ("anonymous", anonymous)):
                response = client.get(url)
                assert response.status_code == 404, (who, url)
                assert error_of(response)["code"] == "not_found"
            assert token_client(moderator).get(url).status_code == 200, url
        for url in file_urls(shown):
            assert anonymous.get(url).status_code == 200, url
    assert anonymous.get(get_original_url(shown)).status_code == 401  # anonymous reads are off by default


def test_a_missing_original_is_a_json_404(editor_client: Any) -> None:
    asset = make_asset()
    asset.image.storage.delete(asset.image.name)
    response = editor_client.get(get_original_url(asset))
    assert response.status_code == 404
    assert error_of(response)["message"] == "The image file is missing from storage."


def test_a_served_file_is_conditional(editor_client: Any) -> None:
    asset = make_asset()
    first = editor_client.get(get_original_url(asset))
    again = editor_client.get(get_original_url(asset), HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    assert again["X-Content-Type-Options"] == "nosniff"


def test_the_admin_links_the_file_views_never_the_storage_url(admin: Any) -> None:
    asset = make_asset("admin-view.png")
    client = Client()
    client.force_login(admin)
    page = client.get(f"/admin/assetsearch/asset/{asset.pk}/change/").content.decode()
    assert page.count(f'href="/assets/{asset.pk}/original/"') == 2  # the preview and the file input's "Currently:"
    assert f"/assets/{asset.pk}/thumbnail/" in page
    assert asset.image.name not in page and "/media/" not in page
    assert "admin-view.png" in page  # the client's name, shown


# Serving backends ---------------------------------------------------------


def test_x_accel_redirect_hands_the_file_to_nginx_with_the_same_headers(editor_client: Any, moderator: Any) -> None:
    asset, hidden = make_asset(), make_asset(seed=3)
    hide(hidden)
    serving = {"BACKEND": "assetsearch.files.XAccelRedirectBackend", "LOCATION": "/protected/"}
    with assetsearch_settings(FILE_SERVING=serving):
        response = editor_client.get(get_original_url(asset))
        thumbnail = editor_client.get(f"/assets/{asset.pk}/thumbnail/")
        refused = editor_client.get(get_original_url(hidden))
    assert response.status_code == 200 and response.content == b""
    assert response["X-Accel-Redirect"] == f"/protected/{asset.image.name}"
    assert_safe_file_headers(response, "image/png")
    assert thumbnail["X-Accel-Redirect"] == "/protected/" + get_thumbnail_names(asset.image.name)[1]  # the default size, 256
    assert_safe_file_headers(thumbnail, "image/jpeg")
    assert refused.status_code == 404 and "X-Accel-Redirect" not in refused


def test_x_sendfile_names_the_path_on_disk(editor_client: Any) -> None:
    asset = make_asset()
    with assetsearch_settings(FILE_SERVING={"BACKEND": "assetsearch.files.XSendfileBackend"}):
        response = editor_client.get(get_original_url(asset))
    assert response["X-Sendfile"] == asset.image.path and response.content == b""
    assert_safe_file_headers(response, "image/png")


class SigningStorage(FileSystemStorage):
    """Signs URLs the way django-storages' S3 storage takes the options (the signature is fake)."""

    def url(self, name: str, parameters: dict[str, str] | None = None, expire: int | None = None) -> str:
        return f"https://bucket.example.com/{name}?" + urlencode({**(parameters or {}), "Expires": expire or 3600, "Signature": "x"})


def test_a_signed_url_backend_redirects_to_the_storage_s_signed_url(editor_client: Any) -> None:
    asset = make_asset("signed.html")
    storage = SigningStorage(location=asset.image.storage.location)
    serving = {"BACKEND": "assetsearch.files.SignedURLBackend", "EXPIRES": 300}
    with assetsearch_settings(FILE_SERVING=serving), patch.object(Asset._meta.get_field("image"), "storage", storage):
        response = editor_client.get(get_original_url(asset))
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == f"/{asset.image.name}"
    assert parse_qs(location.query) == {
        "ResponseContentType": ["image/png"], "ResponseContentDisposition": ['inline; filename="signed.png"'],
        "Expires": ["300"], "Signature": ["x"],
    }
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response["Cache-Control"] and "ETag" not in response  # the signed URL expires


# The example site ---------------------------------------------------------


def test_the_example_site_serves_no_app_file_under_media_even_in_debug(editor_client: Any) -> None:
    import project.urls

    asset = make_asset()
    thumbnail = get_thumbnail(asset)
    try:
        with override_settings(DEBUG=True):
            importlib.reload(project.urls)
            clear_url_caches()
            for name in (asset.image.name, thumbnail):
                assert asset.image.storage.exists(name)
                response = editor_client.get(f"/{settings.MEDIA_URL.strip('/')}/{name}")
                assert response.status_code == 404, name
    finally:
        importlib.reload(project.urls)
        clear_url_caches()
    assert editor_client.get(get_original_url(asset)).status_code == 200


def test_rename_files_gives_a_legacy_client_named_file_a_server_name(django_capture_on_commit_callbacks: Any) -> None:
    asset = make_asset("legacy.png")
    storage, data = asset.image.storage, asset.image.read()
    asset.image.close()
    # As an earlier release stored it: under the client's name, which was x.html.
    legacy = storage.save("assetsearch/2026/11/3f2a9c1b7d4e/x.html", io.BytesIO(data))
    storage.delete(asset.image.name)
    Asset.objects.filter(pk=asset.pk).update(image=legacy, original_filename="x.html")
    asset.refresh_from_db()
    old_thumbnail = get_thumbnail(asset)
    with django_capture_on_commit_callbacks(execute=True), assetsearch_settings(AUTO_EMBED=False):
        call_command("assetsearch_rename_files", verbosity=0)
    renamed = Asset.objects.get(pk=asset.pk)
    assert STORED_NAME.match(renamed.image.name) and renamed.image.name.endswith(".png")
    assert storage.open(renamed.image.name).read() == data
    assert (renamed.original_filename, renamed.content_hash, renamed.embedding_status) == ("x.html", asset.content_hash, "ready")
    assert not storage.exists(legacy) and not storage.exists(old_thumbnail)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("assetsearch_rename_files", verbosity=0)  # nothing left to rename
    assert Asset.objects.get(pk=asset.pk).image.name == renamed.image.name


def test_the_system_checks_catch_a_bad_file_serving_backend() -> None:
    from assetsearch.checks import check_file_serving

    assert check_file_serving() == []
    with assetsearch_settings(FILE_SERVING={"BACKEND": "assetsearch.files.NoSuchBackend"}):
        assert [m.id for m in check_file_serving()] == ["assetsearch.E010"]
    with assetsearch_settings(FILE_SERVING={"BACKEND": "django.http.HttpResponse"}):
        assert [m.id for m in check_file_serving()] == ["assetsearch.E010"]
    with assetsearch_settings(FILE_SERVING={"BACKEND": "assetsearch.files.SignedURLBackend"}):
        assert [m.id for m in check_file_serving()] == ["assetsearch.W010"]  # public MEDIA_URL links
