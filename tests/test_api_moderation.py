"""REST API, moderation: ad-hoc query, concepts, flags and their review, permissions, bad input."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import override_settings
from rest_framework.test import APIClient

from assetsearch.models import Asset, ConceptAction, FlagStatus, ModerationConcept, ModerationFlag
from assetsearch.moderation import rescore_concept
from assetsearch.pipeline import embed_assets

from .api_helpers import (  # noqa: F401  (fixtures)
    _fresh_throttles,
    editor,
    editor_client,
    error_of,
    make_user,
    nobody,
    token_client,
)
from .utils import image_file, scene

pytestmark = pytest.mark.django_db

RED_TRIANGLE = dict(
    name="red triangles",
    prompts=["a red triangle"],
    counter_prompts=["a red square", "a red circle", "a red star", "a blue triangle", "a green triangle", "a yellow triangle"],
)
COLOURS = ["red", "blue", "green", "yellow"]
SHAPES = ["triangle", "circle", "square", "star"]


def grant(user: Any, *codenames: str) -> Any:
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="assetsearch", codename__in=codenames))
    return type(user).objects.get(pk=user.pk)  # a fresh instance: no stale permission cache


@pytest.fixture
def moderator(make_user: Any) -> Any:
    """May review flags and see hidden assets, and manage concepts."""
    return grant(make_user("viewer"), "moderate_asset", "add_moderationconcept", "change_moderationconcept")


@pytest.fixture
def moderator_client(moderator: Any) -> APIClient:
    return token_client(moderator)


def make_asset(colour: str = "red", shape: str = "circle", seed: int = 0) -> Asset:
    with override_settings(ASSETSEARCH={"AUTO_EMBED": False}):
        return Asset.objects.create(image=image_file(scene(colour=colour, shape=shape), seed=seed), title=f"{colour} {shape}")


def make_catalogue(colours: list[str] = COLOURS, shapes: list[str] = SHAPES) -> dict[tuple[str, str], Asset]:
    """Rendered shapes, embedded in-process with the bundled model."""
    assets = {(c, s): make_asset(c, s, seed=i * 7 + j) for i, c in enumerate(colours) for j, s in enumerate(shapes)}
    result = embed_assets([a.pk for a in assets.values()])
    assert sorted(result.embedded) == sorted(a.pk for a in assets.values()), result
    return assets


# Permissions --------------------------------------------------------------


def requests(flag: ModerationFlag) -> list[tuple[str, str, dict[str, Any], int]]:
    """(method, path, JSON body, status for a moderator) of every moderation endpoint."""
    return [
        ("get", "/api/moderation/query/?q=a+red+circle", {}, 200),
        ("get", "/api/moderation/concepts/", {}, 200),
        ("post", "/api/moderation/concepts/", {"name": "new", "prompts": ["something bad"]}, 201),
        ("patch", f"/api/moderation/concepts/{flag.concept_id}/", {"threshold": 0.7}, 200),
        ("get", "/api/moderation/flags/", {}, 200),
        ("post", "/api/moderation/flags/review/", {"ids": [flag.pk], "status": "dismissed"}, 200),
    ]


@pytest.mark.parametrize("role", ["anonymous", "nobody", "editor", "moderator"])
def test_permission_matrix(role, make_user, request):
    asset = make_asset()
    embed_assets([asset.pk])
    concept = ModerationConcept.objects.create(name="circles", prompts=["a circle"])
    flag = ModerationFlag.objects.create(asset=asset, concept=concept, score=0.9)
    client = APIClient() if role == "anonymous" else token_client(request.getfixturevalue(role) if role == "moderator" else make_user(role))
    wrong = []
    for method, path, body, success in requests(flag):
        response = getattr(client, method)(path, body, format="json") if body else getattr(client, method)(path)
        want = {"anonymous": 401, "nobody": 403, "editor": 403}.get(role, success)
        if response.status_code != want:
            wrong.append(f"{method.upper()} {path}: {response.status_code} (want {want}) {response.content[:300]!r}")
        elif want >= 400:
            assert error_of(response)["code"] == {401: "not_authenticated", 403: "permission_denied"}[want]
    assert not wrong, "\n".join(wrong)


def test_concept_writes_also_need_the_model_permissions(make_user):
    reviewer = token_client(grant(make_user("viewer"), "moderate_asset"))
    concept = ModerationConcept.objects.create(name="circles", prompts=["a circle"])
    assert reviewer.get("/api/moderation/concepts/").status_code == 200
    assert reviewer.post("/api/moderation/concepts/", {"name": "x", "prompts": ["x"]}, format="json").status_code == 403
    assert reviewer.patch(f"/api/moderation/concepts/{concept.pk}/", {"enabled": True}, format="json").status_code == 403
    assert reviewer.get("/api/moderation/flags/").status_code == 200


# Ad-hoc query -------------------------------------------------------------


def test_ad_hoc_query_ranks_the_concept_first(moderator_client):
    assets = make_catalogue(["green", "blue", "red"], ["star", "circle"])
    response = moderator_client.get(
        "/api/moderation/query/",
        {"q": "a green star", "counter": ["a green circle", "a blue star", "a red star"], "limit": 4},
    )
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["rank"] for r in results] == [1, 2, 3, 4]
    assert results[0]["asset"]["id"] == assets["green", "star"].pk
    assert results[0]["asset"]["thumbnail_url"].endswith(f"/assets/{assets['green', 'star'].pk}/thumbnail/")
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True) and 0 <= scores[-1] <= scores[0] <= 1

    page2 = moderator_client.get(
        "/api/moderation/query/", {"q": "a green star", "counter": ["a green circle", "a blue star", "a red star"], "limit": 4, "offset": 4}
    ).json()["results"]
    assert [r["rank"] for r in page2] == [5, 6]
    assert {r["asset"]["id"] for r in results + page2} == {a.pk for a in assets.values()}


# Concepts -----------------------------------------------------------------


def test_create_and_update_a_concept(moderator_client, django_capture_on_commit_callbacks):
    body = {**RED_TRIANGLE, "threshold": 0.6, "action": "hide", "enabled": True}
    with django_capture_on_commit_callbacks() as callbacks:
        response = moderator_client.post("/api/moderation/concepts/", body, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert len(callbacks) == 1  # the re-score, queued by the signal after commit
    concept = ModerationConcept.objects.get(pk=created["id"])
    assert (concept.name, concept.prompts, concept.threshold, concept.action, concept.enabled) == (
        "red triangles", ["a red triangle"], 0.6, "hide", True,
    )
    assert created["counter_prompts"] == RED_TRIANGLE["counter_prompts"]
    assert set(created["rescore"]) == {"total", "done", "finished_at"}

    with django_capture_on_commit_callbacks() as callbacks:
        response = moderator_client.patch(f"/api/moderation/concepts/{concept.pk}/", {"enabled": False, "threshold": 0.8}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["enabled"], response.json()["threshold"]) == (False, 0.8)
    assert not callbacks  # a disabled concept is not re-scored

    listed = moderator_client.get("/api/moderation/concepts/", {"limit": 100}).json()
    assert listed["count"] == ModerationConcept.objects.count()
    names = [c["name"] for c in listed["results"]]
    assert "red triangles" in names and names == sorted(names)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"prompts": ["x"]}, "name"),
        ({"name": "x", "prompts": []}, "prompts"),
        ({"name": "x", "prompts": "a red triangle"}, "prompts"),
        ({"name": "x", "prompts": ["x"], "threshold": 1.5}, "threshold"),
        ({"name": "x", "prompts": ["x"], "threshold": "0.5"}, "threshold"),
        ({"name": "x", "prompts": ["x"], "action": "delete"}, "action"),
        ({"name": "x", "prompts": ["x"], "enabled": "yes"}, "enabled"),
        ({"name": "x", "prompts": ["x"], "rescore_total": 3}, "rescore_total"),
    ],
)
def test_bad_concepts_are_400_with_the_field(moderator_client, body, field):
    ModerationConcept.objects.create(name="taken", prompts=["y"])
    before = ModerationConcept.objects.count()
    response = moderator_client.post("/api/moderation/concepts/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in error_of(response)["fields"]
    assert ModerationConcept.objects.count() == before


def test_a_taken_concept_name_is_a_409_conflict(moderator_client):
    """The schema cannot state uniqueness across concepts: a valid body naming a taken name is a conflict."""
    ModerationConcept.objects.create(name="taken", prompts=["y"])
    other = ModerationConcept.objects.create(name="other", prompts=["y"])
    before = ModerationConcept.objects.count()
    for response in (
        moderator_client.post("/api/moderation/concepts/", {"name": "taken", "prompts": ["x"]}, format="json"),
        moderator_client.patch(f"/api/moderation/concepts/{other.pk}/", {"name": "taken"}, format="json"),
    ):
        assert response.status_code == 409, response.content
        assert error_of(response) == {"code": "conflict", "message": "name: A concept with this name exists.", "fields": {"name": ["A concept with this name exists."]}}
    # With anything else wrong too, the request is a 400 first.
    response = moderator_client.post("/api/moderation/concepts/", {"name": "taken", "prompts": []}, format="json")
    assert response.status_code == 400 and set(error_of(response)["fields"]) == {"name", "prompts"}
    assert ModerationConcept.objects.count() == before and ModerationConcept.objects.get(pk=other.pk).name == "other"


# Flags and review ---------------------------------------------------------


def test_flags_list_and_bulk_review(moderator_client, moderator):
    assets = make_catalogue()
    concept = ModerationConcept.objects.create(enabled=False, **RED_TRIANGLE)
    rescore_concept(concept.pk)
    triangle = assets["red", "triangle"]

    response = moderator_client.get("/api/moderation/flags/", {"status": "open", "concept": concept.pk})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 1, body
    flag = body["results"][0]
    assert flag["asset"]["id"] == triangle.pk and flag["asset"]["thumbnail_url"]
    assert (flag["concept"], flag["concept_name"], flag["status"], flag["reviewer"], flag["reviewed_at"]) == (
        concept.pk, "red triangles", "open", None, None,
    )
    assert 0.5 <= flag["score"] <= 1

    response = moderator_client.post("/api/moderation/flags/review/", {"ids": [flag["id"]], "status": "confirmed"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"updated": 1, "status": "confirmed"}
    reviewed = ModerationFlag.objects.get(pk=flag["id"])
    assert reviewed.status == FlagStatus.CONFIRMED and reviewed.reviewer == moderator and reviewed.reviewed_at

    assert moderator_client.get("/api/moderation/flags/", {"status": "open"}).json()["count"] == 0
    listed = moderator_client.get("/api/moderation/flags/", {"status": "confirmed"}).json()["results"]
    assert [(f["id"], f["reviewer"]) for f in listed] == [(flag["id"], moderator.pk)] and listed[0]["reviewed_at"]


def test_flags_are_listed_highest_score_first_and_paginated(moderator_client):
    concept = ModerationConcept.objects.create(name="c", prompts=["c"])
    for i, score in enumerate([0.6, 0.9, 0.7]):
        ModerationFlag.objects.create(asset=make_asset(seed=i), concept=concept, score=score)
    body = moderator_client.get("/api/moderation/flags/", {"limit": 2}).json()
    assert body["count"] == 3 and [f["score"] for f in body["results"]] == [0.9, 0.7]
    assert [f["score"] for f in moderator_client.get("/api/moderation/flags/", {"limit": 2, "offset": 2}).json()["results"]] == [0.6]


def test_unknown_flag_ids_are_400_naming_them_and_nothing_changes(moderator_client):
    concept = ModerationConcept.objects.create(name="c", prompts=["c"])
    flag = ModerationFlag.objects.create(asset=make_asset(), concept=concept, score=0.9)
    response = moderator_client.post("/api/moderation/flags/review/", {"ids": [flag.pk, 999999, 888888], "status": "dismissed"}, format="json")
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert "999999" in error["message"] and "888888" in error["message"] and "ids" in error["fields"]
    assert ModerationFlag.objects.get(pk=flag.pk).status == FlagStatus.OPEN


# Bad input ----------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, data, field",
    [
        ("get", "/api/moderation/query/", {"q": ""}, "q"),
        ("get", "/api/moderation/query/", {"q": "   "}, "q"),
        ("get", "/api/moderation/query/", {}, "q"),
        ("get", "/api/moderation/query/", {"q": "x", "limit": "0"}, "limit"),
        ("get", "/api/moderation/query/", {"q": "x", "counter": "y" * 201}, "counter.0"),
        ("get", "/api/moderation/flags/", {"status": "lost"}, "status"),
        ("get", "/api/moderation/flags/", {"concept": "abc"}, "concept"),
        ("get", "/api/moderation/flags/", {"limit": "abc"}, "limit"),
        ("post", "/api/moderation/flags/review/", {"ids": "abc", "status": "confirmed"}, "ids"),
        ("post", "/api/moderation/flags/review/", {"ids": ["1"], "status": "confirmed"}, "ids.0"),
        ("post", "/api/moderation/flags/review/", {"ids": [1.5], "status": "confirmed"}, "ids.0"),
        ("post", "/api/moderation/flags/review/", {"ids": [], "status": "confirmed"}, "ids"),
        ("post", "/api/moderation/flags/review/", {"status": "confirmed"}, "ids"),
        ("post", "/api/moderation/flags/review/", {"ids": [1], "status": "lost"}, "status"),
        ("post", "/api/moderation/flags/review/", {"ids": [1], "status": "open", "reviewer": 3}, "reviewer"),
    ],
)
def test_bad_input_is_400_with_the_field(moderator_client, method, path, data, field):
    if method == "get":
        response = moderator_client.get(path, data)
    else:
        response = moderator_client.post(path, data, format="json")
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert field in error["fields"], error
    if path.endswith("query/") and field == "q" and "q" in data:
        assert error["code"] == "empty_query"


def test_unknown_concept_in_the_url_is_404(moderator_client):
    for path in ("/api/moderation/concepts/999999/", "/api/moderation/concepts/abc/"):
        response = moderator_client.patch(path, {"threshold": 0.5}, format="json")
        assert response.status_code == 404, path
        assert error_of(response)["code"] == "not_found"


# Hiding -------------------------------------------------------------------


def test_a_hidden_asset_is_listed_for_moderators_only(editor_client, moderator_client):
    shown, hidden = make_asset("blue", "circle"), make_asset("red", "triangle", seed=1)
    embed_assets([shown.pk, hidden.pk])  # ready: only the flag hides
    concept = ModerationConcept.objects.create(name="hidden", prompts=["a red triangle"], action=ConceptAction.HIDE, enabled=True)
    ModerationFlag.objects.create(asset=hidden, concept=concept, score=0.95, status=FlagStatus.OPEN)

    def ids(client: APIClient) -> set[int]:
        response = client.get("/api/assets/")
        assert response.status_code == 200, response.content
        return {a["id"] for a in response.json()["results"]}

    assert ids(editor_client) == {shown.pk}
    assert ids(moderator_client) == {shown.pk, hidden.pk}
    flags = moderator_client.get("/api/moderation/flags/").json()["results"]
    assert [f["asset"]["id"] for f in flags] == [hidden.pk]


# Schema -------------------------------------------------------------------


def test_schema_documents_the_moderation_endpoints(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]
    expected = {
        "/api/moderation/query/": {"get"},
        "/api/moderation/concepts/": {"get", "post"},
        "/api/moderation/concepts/{id}/": {"get", "put", "patch"},
        "/api/moderation/flags/": {"get"},
        "/api/moderation/flags/review/": {"post"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
        for method in methods:
            responses = paths[path][method]["responses"]
            for status in ("401", "403"):
                assert responses[status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, (path, method)
    assert "400" in paths["/api/moderation/flags/review/"]["post"]["responses"]
    params = {p["name"] for p in paths["/api/moderation/flags/"]["get"]["parameters"]}
    assert {"status", "concept", "limit", "offset"} <= params
