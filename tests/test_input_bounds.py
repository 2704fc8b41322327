"""Inputs that cannot blow up: bounded weights everywhere (API, admin, Python), a checked
query vector, unknown query parameters refused, and a schema that states every limit."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from django.test import Client

from assetsearch.constants import MAX_WEIGHT
from assetsearch.models import Asset
from assetsearch.pipeline import embed_assets
from assetsearch.search import Query, SearchError, check_query_vector, nearest, search

from .admin_helpers import staff
from .api_helpers import _fresh_throttles, admin, admin_client, assetsearch_settings, error_of, make_user  # noqa: F401
from .utils import image_file, scene

pytestmark = pytest.mark.django_db

WEIGHTS = ["text_weight", "image_weight", "asset_weight", "negative_weight"]


@pytest.fixture
def asset() -> Asset:
    with assetsearch_settings(AUTO_EMBED=False):
        asset = Asset.objects.create(image=image_file(scene(colour="red"), seed=1), title="red circle", tags=["red"])
    embed_assets([asset.pk])
    return asset


@pytest.mark.parametrize("weight", WEIGHTS)
@pytest.mark.parametrize("value", [1e300, MAX_WEIGHT * 1.01, -0.1, math.inf, math.nan])
def test_python_queries_refuse_weights_out_of_bounds(weight, value):
    with pytest.raises(SearchError, match=f"weight must be a finite number from 0 to {MAX_WEIGHT:g}"):
        Query(text="a red circle", **{weight: value}).clean()


@pytest.mark.parametrize("vector", [[math.nan] * 512, [math.inf] * 512, [1e300] * 512, [0.0] * 512])
def test_a_vector_that_is_not_finite_or_is_zero_never_reaches_sql(vector, asset):
    with pytest.raises(SearchError):
        check_query_vector(np.array(vector))
    with pytest.raises(SearchError):
        nearest(vector)
    # float32 overflow of a finite float64 vector is caught too.
    assert np.allclose(np.linalg.norm(check_query_vector(np.full(512, 1e30))), 1.0)


def test_the_largest_weights_still_search(asset):
    hits = search(Query(text="a red circle", asset_id=asset.pk, negative=["blue"], **{w: MAX_WEIGHT for w in WEIGHTS if w != "image_weight"})).hits
    assert all(math.isfinite(hit.score) for hit in hits)


@pytest.mark.parametrize("weight", WEIGHTS)
def test_admin_visual_search_shows_a_form_error_for_1e300_weights(weight, asset):
    client = Client()
    client.force_login(staff("weights-admin", superuser=True))
    response = client.get("/admin/assetsearch/asset/visual-search/", {"text": "a red circle", "asset": asset.pk, weight: "1e300"})
    assert response.status_code == 200
    assert response.context["results"] is None
    assert f"less than or equal to {MAX_WEIGHT}" in str(response.context["form"].errors[weight])


def test_api_1e300_weights_in_multipart_are_400(admin_client, asset):
    for weight in WEIGHTS:
        response = admin_client.post("/api/search/", {"text": "a red circle", weight: "1e300"}, format="multipart")
        assert response.status_code == 400, response.content
        assert weight in error_of(response)["fields"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/assets/?colour=red",
        "/api/assets/{id}/?expand=1",
        "/api/search/?q=red&lmit=5",
        "/api/assets/{id}/similar/?q=red",
        "/api/assets/{id}/tags/?limit=3&offset=1",
        "/api/assets/{id}/duplicates/?treshold=0.5",
        "/api/moderation/concepts/?name=x",
        "/api/moderation/flags/?asset=1",
        "/api/moderation/query/?q=red&counter_prompts=x",
        "/assets/{id}/thumbnail/?size=128&width=3",
    ],
)
def test_unknown_query_parameters_are_400_naming_them(admin_client, asset, path):
    response = admin_client.get(path.format(id=asset.pk))
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == "invalid"
    (name,) = error["fields"]
    assert name in path and "Unknown query parameter" in error["fields"][name][0], error


def test_unknown_query_parameters_on_writes_and_known_ones_still_work(admin_client, asset):
    response = admin_client.post("/api/search/?debug=1", {"text": "red"}, format="json")
    assert response.status_code == 400 and "debug" in error_of(response)["fields"]
    assert admin_client.get(f"/api/assets/?tags=red&limit=5&offset=0&format=json").status_code == 200
    assert admin_client.get(f"/assets/{asset.pk}/thumbnail/?size=128").status_code == 200


def test_the_schema_states_the_limits(client):
    schema = client.get("/api/schema/?format=json").json()

    def parameter(path: str, name: str) -> dict:
        return next(p["schema"] for p in schema["paths"][path]["get"]["parameters"] if p["name"] == name)

    for path in ["/api/assets/", "/api/search/", "/api/moderation/flags/", "/api/moderation/concepts/"]:
        assert (parameter(path, "limit")["minimum"], parameter(path, "limit")["maximum"]) == (1, 100), path
        assert (parameter(path, "offset")["minimum"], parameter(path, "offset")["maximum"]) == (0, 10_000), path
    assert parameter("/assets/{id}/thumbnail/", "size")["enum"] == [128, 256, 512]
    q = parameter("/api/search/", "q")
    assert q["maxLength"] == 1000
    assert [bool(re.search(q["pattern"], text)) for text in ["a red circle", " x ", "", "   ", "red\x00"]] == [True, True, False, False, False]
    def request_body(media_type: str) -> dict:
        ref = schema["paths"]["/api/search/"]["post"]["requestBody"]["content"][media_type]["schema"]["$ref"]
        return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]

    body = request_body("application/json")
    assert body["additionalProperties"] is False and "image" not in body["properties"]
    assert [alternative["required"] for alternative in body["anyOf"]] == [["text"], ["asset_id"]]
    for weight in WEIGHTS:
        assert (body["properties"][weight]["minimum"], body["properties"][weight]["maximum"]) == (0, MAX_WEIGHT)
    multipart = request_body("multipart/form-data")
    assert [alternative["required"] for alternative in multipart["anyOf"]] == [["text"], ["image"], ["asset_id"]]
    assert "one of text, image and asset_id" in multipart["properties"]["text"]["description"]
    with assetsearch_settings(MAX_PAGE_SIZE=50, THUMBNAIL_SIZES=[64, 128]):
        schema = client.get("/api/schema/?format=json").json()
        assert parameter("/api/assets/", "limit")["maximum"] == 50
        assert parameter("/assets/{id}/thumbnail/", "size")["enum"] == [64, 128]


@pytest.mark.parametrize(
    "params, field",
    [({"asset": str(10**30)}, "asset"), ({"text": "red", "tags": ",".join(["t"] * 101)}, "tags"), ({"text": "red", "tags": "x" * 65}, "tags")],
)
def test_admin_visual_search_bounds_every_number_and_list(params, field, asset):
    client = Client()
    client.force_login(staff("bounds-admin", superuser=True))
    response = client.get("/admin/assetsearch/asset/visual-search/", params)
    assert response.status_code == 200 and response.context["results"] is None
    assert response.context["form"].errors[field]
