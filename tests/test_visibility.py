"""What moderation hides stays hidden: tag suggestions, and new uploads until they are scored.

Tags only hidden assets carry are never suggested to users without the
moderation permission (API and admin). While an enabled hide-concept exists,
an upload is visible only to its uploader and to moderators until it is
embedded and scored, and its status and flags are committed together: a
second connection, looking at every statement the pipeline runs, never sees
it ready without its flag.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, connections

from assetsearch.models import Asset, ConceptAction, EmbeddingStatus, FlagStatus, ModerationConcept, ModerationFlag, IndexEntry
from assetsearch.pipeline import embed_assets
from assetsearch.search import Query, search

from .admin_helpers import editor_group, staff
from .api_helpers import _fresh_throttles, assetsearch_settings, error_of, token_client  # noqa: F401  (fixture)
from .utils import image_file, scene

RED_TRIANGLES = dict(
    name="red triangles", prompts=["a red triangle"], action=ConceptAction.HIDE, enabled=True, threshold=0.5,
    counter_prompts=["a red square", "a red circle", "a red star", "a blue triangle", "a green triangle", "a yellow triangle"],
)
SECRET_TAG = "only-on-the-hidden-one"


def make_asset(colour: str, shape: str, seed: int, tags: list[str] | None = None, uploaded_by: Any = None) -> Asset:
    with assetsearch_settings(AUTO_EMBED=False):
        return Asset.objects.create(
            image=image_file(scene(colour=colour, shape=shape), seed=seed), title=f"{colour} {shape}", tags=tags or [],
            uploaded_by=uploaded_by,
        )


def editor(name: str) -> User:
    user = staff(name)
    user.groups.add(editor_group())
    return User.objects.get(pk=user.pk)


def moderator(name: str) -> User:
    return staff(name, "view_asset", "moderate_asset")


# Tag suggestions ----------------------------------------------------------------


@pytest.fixture
def hidden_tag_catalogue(db: None) -> dict[str, Asset]:
    shown = make_asset("blue", "circle", 1, ["blue", "circle"])
    other = make_asset("green", "star", 2, ["green", "star"])
    hidden = make_asset("red", "triangle", 3, ["red", SECRET_TAG])
    embed_assets([shown.pk, other.pk, hidden.pk])
    concept = ModerationConcept.objects.create(**{**RED_TRIANGLES, "name": "hidden"})
    ModerationFlag.objects.create(asset=hidden, concept=concept, score=0.99, status=FlagStatus.OPEN)
    return {"shown": shown, "hidden": hidden}


def test_api_tag_suggestions_never_offer_a_tag_only_hidden_assets_carry(hidden_tag_catalogue):
    shown = hidden_tag_catalogue["shown"]

    def suggested(user: User) -> set[str]:
        response = token_client(user).get(f"/api/assets/{shown.pk}/tags/", {"limit": 100, "include_existing": "true"})
        assert response.status_code == 200, response.content
        return {s["tag"] for s in response.json()["results"]}

    for_editor = suggested(editor("tags-editor"))
    assert {"blue", "circle", "green", "star"} <= for_editor and SECRET_TAG not in for_editor and "red" not in for_editor
    assert SECRET_TAG in suggested(moderator("tags-moderator"))


def test_admin_tag_suggestions_never_offer_a_tag_only_hidden_assets_carry(hidden_tag_catalogue, client):
    shown = hidden_tag_catalogue["shown"]
    url = f"/admin/assetsearch/asset/{shown.pk}/change/"

    def suggested(user: User) -> tuple[set[str], str]:
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == 200
        panels = response.context["assetsearch_panels"]
        panels.suggestion_limit = 100
        return {s.tag for s in panels.suggestions}, response.content.decode()

    tags, html = suggested(editor("admin-tags-editor"))
    assert SECRET_TAG not in tags and SECRET_TAG not in html and "green" in tags
    tags, _html = suggested(staff("admin-tags-superuser", superuser=True))
    assert SECRET_TAG in tags


# The moderation window ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_pending_upload_is_seen_only_by_its_uploader_and_moderators_until_scored():
    ModerationConcept.objects.create(**RED_TRIANGLES)
    uploader, other, mod = editor("uploader"), editor("other-editor"), moderator("window-moderator")
    ready = make_asset("blue", "circle", 1)
    embed_assets([ready.pk])
    with assetsearch_settings(AUTO_EMBED=False, THROTTLE_RATES={"search": None, "upload": None}):
        response = token_client(uploader).post(
            "/api/assets/", {"image": image_file(scene(colour="red", shape="triangle"), seed=5), "title": "caught"}, format="multipart"
        )
    assert response.status_code == 201, response.content
    pending = Asset.objects.get(pk=response.json()["id"])
    assert pending.embedding_status == EmbeddingStatus.PENDING

    def sees(user: User) -> dict[str, bool]:
        client = token_client(user)
        listed = {a["id"] for a in client.get("/api/assets/", {"limit": 100}).json()["results"]}
        detail = client.get(f"/api/assets/{pending.pk}/")
        return {"list": pending.pk in listed, "detail": detail.status_code == 200}

    assert sees(uploader) == {"list": True, "detail": True}
    assert sees(mod) == {"list": True, "detail": True}
    assert sees(other) == {"list": False, "detail": False}
    assert error_of(token_client(other).get(f"/api/assets/{pending.pk}/"))["code"] == "not_found"
    anonymous = Asset.objects.visible_to(None)
    assert not anonymous.filter(pk=pending.pk).exists() and anonymous.filter(pk=ready.pk).exists()

    # Without a hide concept, or with the setting off, nothing waits.
    with assetsearch_settings(HIDE_UNMODERATED=False):
        assert Asset.objects.visible_to(other).filter(pk=pending.pk).exists()
    ModerationConcept.objects.update(enabled=False)
    assert Asset.objects.visible_to(other).filter(pk=pending.pk).exists()
    ModerationConcept.objects.update(enabled=True)

    # Embedding: after every statement, another connection sees it either
    # pending (hidden from the other editor) or ready with its flag (hidden too).
    observations: list[tuple[str, bool, bool]] = []

    def observe_from_another_connection() -> None:
        try:
            status = IndexEntry.objects.for_objects(Asset, [pending.pk]).search_alias().values_list("status", flat=True).get()
            flagged = ModerationFlag.objects.filter(entry__asset=pending.pk).exists()
            visible = Asset.objects.visible_to(other).filter(pk=pending.pk).exists()
            observations.append((status, flagged, visible))
        finally:
            connections.close_all()

    def after_each_statement(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        reader = threading.Thread(target=observe_from_another_connection)
        reader.start()
        reader.join()
        return result

    with connection.execute_wrapper(after_each_statement):
        embed_assets([pending.pk])
    observe_from_another_connection()

    assert observations[-1] == (EmbeddingStatus.READY, True, False), observations
    assert all(not visible for _, _, visible in observations), observations
    assert all(flagged for status, flagged, _ in observations if status == EmbeddingStatus.READY), observations
    hits = search(Query(text="a red triangle", visible=Asset.objects.visible_to(other))).hits
    assert pending.pk not in [hit.asset.pk for hit in hits] and ready.pk in [hit.asset.pk for hit in hits]


@pytest.mark.django_db
def test_an_upload_no_concept_catches_is_shown_to_everyone_once_ready():
    ModerationConcept.objects.create(**RED_TRIANGLES)
    uploader, other = editor("uploader-2"), editor("other-2")
    asset = make_asset("blue", "square", 4, uploaded_by=uploader)
    assert not Asset.objects.visible_to(other).filter(pk=asset.pk).exists()
    assert Asset.objects.visible_to(uploader).filter(pk=asset.pk).exists()
    embed_assets([asset.pk])
    assert Asset.objects.visible_to(other).filter(pk=asset.pk).exists()
    assert not ModerationFlag.objects.filter(entry__asset=asset).exists()
