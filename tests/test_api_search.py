"""REST API search: every mode through GET and POST, per-asset similar/tags/duplicates, bad queries, throttling.

The catalogue is embedded in-process by the real bundled model into the real
Postgres (``embed_assets``); the worker path is in ``test_api_worker.py``.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from PIL import Image

from assetsearch.models import Asset
from assetsearch.pipeline import embed_assets

from .api_helpers import (  # noqa: F401  (fixtures)
    _fresh_throttles,
    admin,
    admin_client,
    assetsearch_settings,
    error_of,
    make_user,
    viewer,
    viewer_client,
)
from .utils import image_file, scene

pytestmark = pytest.mark.django_db

COLOURS = ["red", "blue", "green", "yellow", "purple", "orange"]
SHAPES = ["circle", "square", "triangle", "star", "heart"]


@pytest.fixture(scope="module")
def catalogue(django_db_setup, django_db_blocker):
    """30 coloured shapes, an asset whose title says what its image does not, and a duplicate."""
    with django_db_blocker.unblock(), override_settings(ASSETSEARCH={"AUTO_EMBED": False}):
        assets: dict[Any, Asset] = {}
        for i, colour in enumerate(COLOURS):
            for j, shape in enumerate(SHAPES):
                assets[colour, shape] = Asset.objects.create(
                    image=image_file(scene(colour=colour, shape=shape), seed=10 * i + j),
                    title=f"{colour} {shape}",
                    tags=[colour, shape],
                )
        assets["zebra"] = Asset.objects.create(
            image=image_file(scene(colour="brown", shape="hexagon"), seed=99),
            title="Quarterly zebra migration report",
            tags=["report"],
        )
        # The orange heart saved again at three quarters of its size: a copy, as a re-upload from a website would be
        # (a PNG, as the rest of the catalogue: the filter tests count on no JPEG).
        original = Image.open(assets["orange", "heart"].image)
        buffer = io.BytesIO()
        original.convert("RGB").resize((96, 96), Image.Resampling.LANCZOS).save(buffer, format="PNG")
        assets["copy"] = Asset.objects.create(
            image=SimpleUploadedFile("copy.png", buffer.getvalue(), content_type="image/png"), title="orange heart copy", tags=["copy"]
        )
        result = embed_assets([a.pk for a in assets.values()])
        assert len(result.embedded) == len(assets), result
        assets["pending"] = Asset.objects.create(image=image_file(seed=5), title="not embedded yet")
        yield assets
        Asset.objects.filter(pk__in=[a.pk for a in assets.values()]).delete()


def hits(response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def ids(response) -> list[int]:
    return [hit["asset"]["id"] for hit in hits(response)]


def rank_of(response, asset: Asset) -> int | None:
    return next((hit["rank"] for hit in hits(response) if hit["asset"]["id"] == asset.pk), None)


def post(client, data: dict[str, Any], fmt: str = "json"):
    return client.post("/api/search/", data, format=fmt)


# Modes --------------------------------------------------------------------


def test_get_text_search_ranks_the_described_image_first(viewer_client, catalogue):
    for colour, shape in [("red", "circle"), ("blue", "star"), ("green", "triangle")]:
        response = viewer_client.get("/api/search/", {"q": f"a {colour} {shape}", "limit": 5})
        body = response.json()
        assert ids(response)[0] == catalogue[colour, shape].pk, [h["asset"]["title"] for h in body["results"]]
        assert body["strategy"] == "index" and body["notices"] == [] and body["took_ms"] >= 0
        first = body["results"][0]
        assert first["rank"] == 1 and first["part_ranks"] == {"vector": 1} and first["fused_score"] is None
        assert first["asset"]["title"] == f"{colour} {shape}"
        assert first["asset"]["thumbnail_url"] == f"http://testserver/assets/{catalogue[colour, shape].pk}/thumbnail/"
        scores = [h["score"] for h in body["results"]]
        assert scores == sorted(scores, reverse=True) and len(scores) == 5 and -1 <= scores[-1] <= scores[0] <= 1


def test_post_text_search_gives_the_same_ranking(viewer_client, catalogue):
    by_get = ids(viewer_client.get("/api/search/", {"q": "a yellow heart", "limit": 8}))
    by_post = ids(post(viewer_client, {"text": "a yellow heart", "limit": 8}))
    assert by_get == by_post and by_get[0] == catalogue["yellow", "heart"].pk


def test_pages_are_ranked_over_the_whole_list(viewer_client, catalogue):
    full = hits(viewer_client.get("/api/search/?q=a+green+star&limit=12"))
    page = hits(viewer_client.get("/api/search/?q=a+green+star&limit=6&offset=6"))
    assert [h["asset"]["id"] for h in page] == [h["asset"]["id"] for h in full[6:]]
    assert [h["rank"] for h in page] == list(range(7, 13))
    assert ids(post(viewer_client, {"text": "a green star", "limit": 6, "offset": 6})) == [h["asset"]["id"] for h in page]


def test_image_upload_finds_the_other_rendering_of_the_same_scene(viewer_client, catalogue):
    buffer = io.BytesIO()
    scene(colour="yellow", shape="square").render(12345).save(buffer, format="JPEG")
    buffer.seek(0)
    buffer.name = "query.jpg"
    response = post(viewer_client, {"image": buffer, "limit": 5}, fmt="multipart")
    assert ids(response)[0] == catalogue["yellow", "square"].pk


def test_image_plus_text_with_weights_and_part_scores(viewer_client, catalogue):
    query = image_file(scene(colour="red", shape="circle"), seed=777)
    response = post(
        viewer_client, {"image": query, "text": "a square", "text_weight": "1.0", "image_weight": "1", "limit": 31}, fmt="multipart"
    )
    red_square, blue_circle = catalogue["red", "square"], catalogue["blue", "circle"]
    assert rank_of(response, red_square) < rank_of(response, blue_circle)
    assert set(hits(response)[0]["part_scores"]) == {"text", "image"}


def test_asset_query_excludes_the_asset_and_json_weights(viewer_client, catalogue):
    red_circle = catalogue["red", "circle"]
    response = post(viewer_client, {"asset_id": red_circle.pk, "text": "a triangle", "asset_weight": 1, "text_weight": 0.5, "limit": 10})
    assert red_circle.pk not in ids(response)
    assert set(hits(response)[0]["part_scores"]) == {"text", "asset"}


def test_negative_terms_push_matching_items_down(viewer_client, catalogue):
    red_circle = catalogue["red", "circle"]
    plain = post(viewer_client, {"text": "a circle", "limit": 31})
    pushed = post(viewer_client, {"text": "a circle", "negative": ["red"], "negative_weight": 0.8, "limit": 31})
    assert rank_of(pushed, red_circle) > rank_of(plain, red_circle)
    assert "red" not in [h["asset"]["tags"][0] for h in hits(pushed)[:3]]


def test_filters_in_json_in_multipart_and_in_the_query_string(viewer_client, catalogue):
    by_json = hits(post(viewer_client, {"text": "a circle", "filters": {"tags": ["blue"], "status": "ready"}, "limit": 10}))
    assert {h["asset"]["tags"][0] for h in by_json} == {"blue"} and len(by_json) == 5
    assert by_json[0]["asset"]["id"] == catalogue["blue", "circle"].pk
    by_form = hits(post(viewer_client, {"text": "a circle", "filters.tags": ["blue"], "limit": "10"}, fmt="multipart"))
    by_query = hits(viewer_client.get("/api/search/?q=a+circle&tags=blue&limit=10"))
    assert [h["asset"]["id"] for h in by_form] == [h["asset"]["id"] for h in by_query] == [h["asset"]["id"] for h in by_json]
    none = post(viewer_client, {"text": "a circle", "filters": {"mime_type": ["image/jpeg"]}})
    assert hits(none) == []
    # OpenAPI's multipart encoding of an object: one JSON part, typed strictly like a JSON body.
    by_part = hits(post(viewer_client, {"text": "a circle", "filters": json.dumps({"tags": ["blue"]}), "limit": "10"}, fmt="multipart"))
    assert [h["asset"]["id"] for h in by_part] == [h["asset"]["id"] for h in by_json]
    for part, field in [({"status": "bogus"}, "filters.status"), ({"uploaded_by": "5"}, "filters.uploaded_by"), ("not json", "filters")]:
        response = post(viewer_client, {"text": "a circle", "filters": part if isinstance(part, str) else json.dumps(part)}, fmt="multipart")
        assert response.status_code == 400 and field in error_of(response)["fields"], response.content


@pytest.mark.parametrize(
    "form, field",
    [({"exact": "0"}, "exact"), ({"hybrid": "yes"}, "hybrid"), ({"limit": "1.0"}, "limit"), ({"limit": " 5"}, "limit"), ({"min_score": "none"}, "min_score")],
)
def test_form_values_are_read_as_openapi_writes_them(viewer_client, catalogue, form, field):
    """In form data a boolean is ``true``/``false``, an integer its digits, a null ``null``; nothing else passes."""
    response = post(viewer_client, {"text": "a circle", **form}, fmt="multipart")
    assert response.status_code == 400 and field in error_of(response)["fields"], response.content
    ok = post(viewer_client, {"text": "a circle", "exact": "true", "limit": "3", "min_score": "null", "rerank_top_n": "null"}, fmt="multipart")
    assert ok.status_code == 200 and len(hits(ok)) == 3, ok.content


def test_min_score_and_exact(viewer_client, catalogue):
    top = hits(post(viewer_client, {"text": "a red circle", "limit": 3}))
    cut = hits(post(viewer_client, {"text": "a red circle", "min_score": top[1]["score"] - 1e-6, "limit": 31}))
    assert [h["asset"]["id"] for h in cut] == [h["asset"]["id"] for h in top[:2]]
    exact = post(viewer_client, {"text": "a red circle", "exact": True, "limit": 3})
    assert exact.json()["strategy"] == "exact" and ids(exact) == [h["asset"]["id"] for h in top]


def test_hybrid_finds_a_title_word_the_image_does_not_show(viewer_client, catalogue):
    zebra = catalogue["zebra"]
    assert zebra.pk not in ids(viewer_client.get("/api/search/?q=zebra&limit=5"))
    for response in (viewer_client.get("/api/search/?q=zebra&hybrid=true&limit=5"), post(viewer_client, {"text": "zebra", "hybrid": True, "limit": 5})):
        body = response.json()
        assert body["strategy"].startswith("hybrid:")
        first = body["results"][0]
        assert first["asset"]["id"] == zebra.pk and first["part_ranks"]["keyword"] == 1 and first["fused_score"] > 0, body["results"][:3]
    notice = post(viewer_client, {"asset_id": zebra.pk, "hybrid": True, "limit": 2}).json()["notices"]
    assert notice == ["Hybrid mode needs query text; ran a vector search."]


def test_long_text_is_truncated_with_a_notice(viewer_client, catalogue):
    response = viewer_client.get("/api/search/", {"q": " ".join(["a red circle on the left"] * 10)})
    assert response.status_code == 200
    assert "truncated" in response.json()["notices"][0]


# Per-asset endpoints ------------------------------------------------------


def test_similar_excludes_the_asset_and_takes_filters_and_pages(viewer_client, catalogue):
    red_circle = catalogue["red", "circle"]
    response = viewer_client.get(f"/api/assets/{red_circle.pk}/similar/?limit=10")
    found = hits(response)
    assert red_circle.pk not in ids(response) and len(found) == 10
    assert found[0]["asset"]["tags"][0] == "red" or found[0]["asset"]["tags"][1] == "circle"
    page = hits(viewer_client.get(f"/api/assets/{red_circle.pk}/similar/?limit=5&offset=5"))
    assert [h["asset"]["id"] for h in page] == [h["asset"]["id"] for h in found[5:]]
    circles = hits(viewer_client.get(f"/api/assets/{red_circle.pk}/similar/?tags=circle"))
    assert {h["asset"]["tags"][1] for h in circles} == {"circle"} and len(circles) == 5


def test_tag_suggestions(viewer_client, catalogue):
    green_star = catalogue["green", "star"]
    response = viewer_client.get(f"/api/assets/{green_star.pk}/tags/?include_existing=true&limit=4")
    assert response.status_code == 200
    suggestions = response.json()["results"]
    assert {s["tag"] for s in suggestions[:2]} == {"green", "star"}, suggestions
    assert len(suggestions) == 4 and suggestions[0]["score"] > suggestions[3]["score"]
    assert 0 < suggestions[0]["probability"] <= 1
    new_only = viewer_client.get(f"/api/assets/{green_star.pk}/tags/").json()["results"]
    assert "green" not in [s["tag"] for s in new_only] and "star" not in [s["tag"] for s in new_only]


def test_duplicates(viewer_client, catalogue):
    original, copy = catalogue["orange", "heart"], catalogue["copy"]
    body = viewer_client.get(f"/api/assets/{original.pk}/duplicates/").json()
    assert body["threshold"] == 0.65
    assert [h["asset"]["id"] for h in body["results"]] == [copy.pk] and body["results"][0]["score"] > 0.95, body
    # Any threshold only widens the candidates: the pixels decide, so the other 30 shapes stay out.
    lenient = viewer_client.get(f"/api/assets/{original.pk}/duplicates/?threshold=0&limit=3").json()
    assert lenient["threshold"] == 0 and [(h["asset"]["id"], h["rank"]) for h in lenient["results"]] == [(copy.pk, 1)], lenient


@pytest.mark.parametrize("endpoint", ["similar", "tags", "duplicates"])
def test_per_asset_endpoints_on_unknown_and_unembedded_assets(viewer_client, catalogue, endpoint):
    response = viewer_client.get(f"/api/assets/999999999/{endpoint}/")
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"
    response = viewer_client.get(f"/api/assets/{catalogue['pending'].pk}/{endpoint}/")
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "asset_not_embedded" and "has no embedding yet (status: pending)" in error["message"]


@pytest.mark.parametrize(
    "endpoint, query, field, message",
    [
        ("similar", "limit=0", "limit", "limit must be between 1 and 100"),
        ("similar", "status=unknown", "status", "is not a valid choice"),
        ("tags", "limit=1000", "limit", "Ensure this value is less than or equal to 100."),
        ("tags", "include_existing=perhaps", "include_existing", "Must be a valid boolean."),
        ("duplicates", "threshold=2", "threshold", "Ensure this value is less than or equal to 1."),
        ("duplicates", "threshold=nan", "threshold", "A valid number is required."),
    ],
)
def test_per_asset_bad_parameters(viewer_client, catalogue, endpoint, query, field, message):
    response = viewer_client.get(f"/api/assets/{catalogue['red', 'circle'].pk}/{endpoint}/?{query}")
    assert response.status_code == 400, response.content
    assert any(message in m for m in error_of(response)["fields"][field])


# Bad queries --------------------------------------------------------------


@pytest.mark.parametrize(
    "query, code, field, message",
    [
        ("", "invalid", "q", "This field is required."),
        ("q=", "empty_query", "q", "The query text is empty."),
        ("q=%20%20%20", "empty_query", "q", "The query text is empty."),
        ("q=" + "x" * 1001, "invalid", "q", "Ensure this field has no more than 1000 characters."),
        ("q=red&limit=0", "invalid_page", "limit", "limit must be between 1 and 100, not 0."),
        ("q=red&limit=-3", "invalid_page", "limit", "limit must be between 1 and 100, not -3."),
        ("q=red&limit=101", "invalid_page", "limit", "limit must be between 1 and 100, not 101."),
        ("q=red&limit=" + "9" * 30, "invalid_page", "limit", "limit must be between 1 and 100"),
        ("q=red&offset=-1", "invalid_page", "offset", "offset must be between 0 and 10000, not -1."),
        ("q=red&offset=10001", "invalid_page", "offset", "offset must be between 0 and 10000, not 10001."),
        ("q=red&hybrid=maybe", "invalid", "hybrid", "Must be a valid boolean."),
        ("q=red&created_before=tomorrow", "invalid", "created_before", "Datetime has wrong format."),
        ("q=red%00", "invalid", "q", "Null characters are not allowed."),
    ],
)
def test_bad_get_queries(viewer_client, catalogue, query, code, field, message):
    response = viewer_client.get(f"/api/search/?{query}")
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == code
    assert error["fields"][field] == [message] or any(message in m for m in error["fields"][field]), error


@pytest.mark.parametrize(
    "body, code, field, message",
    [
        ({}, "empty_query", None, "Give text, an image or an asset to search with."),
        ({"text": "   "}, "empty_query", "text", "The query text is empty."),
        ({"text": "red", "text_weight": 1e300}, "invalid", "text_weight", "Ensure this value is less than or equal to 10.0."),
        ({"text": "red", "negative": ["blue"], "negative_weight": 1e300}, "invalid", "negative_weight", "less than or equal to 10.0."),
        ({"text": "red", "asset_weight": 1e300}, "invalid", "asset_weight", "Ensure this value is less than or equal to 10.0."),
        ({"text": "red", "image_weight": 1e300}, "invalid", "image_weight", "Ensure this value is less than or equal to 10.0."),
        ({"text": "red", "rerank": "nope"}, "invalid", "rerank", "Unknown reranker 'nope'; configured: clip."),
        ({"text": "x" * 1001}, "invalid", "text", "Ensure this field has no more than 1000 characters."),
        ({"asset_id": 999999999}, "unknown_asset", "asset_id", "There is no asset with id 999999999."),
        ({"asset_id": "7"}, "invalid", "asset_id", "Expected an integer, got str."),
        ({"asset_id": 1.5}, "invalid", "asset_id", "Expected an integer, got float."),
        ({"text": "red", "text_weight": "0.5"}, "invalid", "text_weight", "Expected a number, got str."),
        ({"text": "red", "text_weight": True}, "invalid", "text_weight", "Expected a number, got bool."),
        ({"text": "red", "negative_weight": -1}, "invalid", "negative_weight", "Ensure this value is greater than or equal to 0."),
        ({"text": "red", "negative": "blue"}, "invalid", "negative", 'Expected a list of items but got type "str".'),
        ({"text": "red", "negative": ["x"] * 11}, "invalid", "negative", "Ensure this field has no more than 10 elements."),
        ({"text": "red", "negative": [""]}, "invalid", "negative.0", "This field may not be blank."),
        ({"text": "red", "filters": {"tags": "red"}}, "invalid", "filters.tags", 'Expected a list of items but got type "str".'),
        ({"text": "red", "filters": ["red"]}, "invalid", "filters", "Invalid data. Expected a dictionary, but got list."),
        ({"text": "red", "filters": {"uploaded_by": "me"}}, "invalid", "filters.uploaded_by", "Expected an integer, got str."),
        ({"text": "red", "hybrid": "yes"}, "invalid", "hybrid", "Expected true or false, got str."),
        ({"text": "red", "min_score": 2}, "invalid", "min_score", "Ensure this value is less than or equal to 1."),
        ({"text": "red", "limit": 0}, "invalid_page", "limit", "limit must be between 1 and 100, not 0."),
        ({"text": "red", "limit": 10**9}, "invalid_page", "limit", "limit must be between 1 and 100"),
        ({"text": "red", "offset": -1}, "invalid_page", "offset", "offset must be between 0 and 10000, not -1."),
        ({"text": "red", "image": "cat.png"}, "invalid", "image", "The submitted data was not a file."),
        ({"q": "red"}, "invalid", "q", "Unknown field"),
    ],
)
def test_bad_post_queries(viewer_client, catalogue, body, code, field, message):
    response = post(viewer_client, body)
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == code, error
    assert message in error["message"]
    if field:
        assert any(message in m for m in error["fields"][field]), error


def test_weights_that_cancel_out_are_an_empty_answer_with_a_notice(viewer_client, catalogue):
    """Valid by the schema (weights 0 to 10), so not a 400: no direction, no results, and why."""
    response = post(viewer_client, {"text": "red", "text_weight": 0})
    assert response.status_code == 200, response.content
    assert response.json()["results"] == [] and "The weights cancel out" in response.json()["notices"][0]


def test_unembedded_query_asset_is_409(viewer_client, catalogue):
    response = post(viewer_client, {"asset_id": catalogue["pending"].pk})
    assert response.status_code == 409
    assert error_of(response)["code"] == "asset_not_embedded"


def test_malformed_and_non_object_bodies(viewer_client, catalogue):
    response = viewer_client.post("/api/search/", b'{"text": "a red', content_type="application/json")
    assert response.status_code == 400 and error_of(response)["code"] == "parse_error"
    response = viewer_client.post("/api/search/", b'{"text": NaN}', content_type="application/json")
    assert response.status_code == 400 and error_of(response)["code"] == "parse_error"
    response = viewer_client.post("/api/search/", b'["a red circle"]', content_type="application/json")
    assert response.status_code == 400
    assert "Expected a dictionary, but got list" in error_of(response)["message"]


@pytest.mark.parametrize(
    "make_file, status, code, message",
    [
        (lambda: io.BytesIO(b"GIF89a but not really"), 400, "invalid_image", "image"),
        (lambda: io.BytesIO(image_file(size=128).read()[:300]), 400, "invalid_image", "could not be decoded"),
    ],
)
def test_bad_query_images(viewer_client, catalogue, make_file, status, code, message):
    file = make_file()
    file.name = "query.png"
    response = post(viewer_client, {"image": file}, fmt="multipart")
    assert response.status_code == status, response.content
    assert error_of(response)["code"] == code and message in error_of(response)["message"]


def test_query_image_over_max_query_image_pixels_is_a_clear_400(viewer_client, catalogue):
    """A PNG is decoded in full: above MAX_QUERY_IMAGE_PIXELS it is refused (a JPEG would be decoded at reduced size)."""
    with assetsearch_settings(MAX_QUERY_IMAGE_PIXELS=128 * 128 - 1):
        response = post(viewer_client, {"image": image_file(size=128)}, fmt="multipart")
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == "invalid_image" and "128x128 = 16,384 pixels; a PNG search image is decoded in full, so the limit is 16,383" in error["fields"]["image"][0]


def test_query_image_over_the_byte_limit_is_413(viewer_client, catalogue):
    with assetsearch_settings(MAX_UPLOAD_BYTES=100):
        response = post(viewer_client, {"image": image_file()}, fmt="multipart")
    assert response.status_code == 413 and error_of(response)["code"] == "file_too_large"


# Throttling and anonymous access ------------------------------------------


def test_searches_are_throttled_per_user_across_search_endpoints(viewer_client, admin_client, catalogue):
    red_circle = catalogue["red", "circle"]
    with assetsearch_settings(THROTTLE_RATES={"search": "3/min", "upload": None}):
        assert viewer_client.get("/api/search/?q=red").status_code == 200
        assert post(viewer_client, {"text": "red"}).status_code == 200
        assert viewer_client.get(f"/api/assets/{red_circle.pk}/similar/").status_code == 200
        response = viewer_client.get(f"/api/assets/{red_circle.pk}/tags/")
        assert response.status_code == 429
        assert error_of(response)["code"] == "throttled" and int(response["Retry-After"]) > 0
        assert viewer_client.get("/api/assets/").status_code == 200  # listing is not a search
        assert admin_client.get("/api/search/?q=red").status_code == 200  # another user's budget


# The example site's throttle cache, on its Redis (the catalogue fixture's
# ASSETSEARCH override leaves this module on the "default" LocMemCache).
SHARED_THROTTLE_CACHE = "throttle"


def test_not_embedded_answers_and_status_polls_cost_no_search_budget(viewer_client, catalogue):
    pending = catalogue["pending"]
    with assetsearch_settings(THROTTLE_RATES={"search": "3/min", "upload": None}, THROTTLE_CACHE_ALIAS=SHARED_THROTTLE_CACHE):
        for _ in range(10):  # a client polling a search by an asset still being embedded
            response = post(viewer_client, {"asset_id": pending.pk})
            assert response.status_code == 409 and error_of(response)["code"] == "asset_not_embedded"
            assert viewer_client.get(f"/api/assets/{pending.pk}/").status_code == 200
            assert viewer_client.get(f"/api/assets/{pending.pk}/similar/").status_code == 409
        assert [viewer_client.get("/api/search/?q=red").status_code for _ in range(4)] == [200, 200, 200, 429]
        # A refused request gives its count back too: still refused, not counted deeper into debt.
        assert post(viewer_client, {"asset_id": pending.pk}).status_code == 429


def test_search_budget_is_shared_by_every_process_through_the_cache(viewer_client, viewer, catalogue):
    """The counter lives in the throttle cache (Redis here), not in this process:
    what another web process counted there is what this one sees."""
    from django.core.cache import caches

    throttle_cache = caches[SHARED_THROTTLE_CACHE]
    assert type(throttle_cache).__name__ == "RedisCache"
    with assetsearch_settings(THROTTLE_RATES={"search": "5/min", "upload": None}, THROTTLE_CACHE_ALIAS=SHARED_THROTTLE_CACHE):
        assert viewer_client.get("/api/search/?q=red").status_code == 200
        redis = throttle_cache._cache.get_client()
        (key,) = [k.decode().split(":", 2)[-1] for k in redis.keys(f"*assetsearch_throttle_search_{viewer.pk}_*")]
        throttle_cache.incr(key, 4)  # four searches served by another process
        response = viewer_client.get("/api/search/?q=red")
        assert response.status_code == 429 and int(response["Retry-After"]) > 0


def test_anonymous_search_only_when_enabled(catalogue):
    from rest_framework.test import APIClient

    client = APIClient()
    assert client.get("/api/search/?q=a+red+circle").status_code == 401
    with assetsearch_settings(API_ANONYMOUS_SEARCH=True):
        assert len(ids(client.get("/api/search/?q=a+red+circle&limit=3"))) == 3
        assert len(ids(post(client, {"text": "a red circle", "limit": 4}))) == 4
        assert client.post("/api/assets/", {"image": image_file()}, format="multipart").status_code == 401
