"""Every answer under /api/ is the JSON error envelope: unknown routes and bugs.

Outages of the database, through a real server: tests/test_connections.py.
"""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from assetsearch.api.exceptions import RETRY_AFTER_SECONDS

from .api_helpers import _fresh_throttles, editor, editor_client, error_of, make_user  # noqa: F401  (fixtures)
from .error_urls import SECRET

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/nothing-here/"),
        ("get", "/api/assets/0.5/"),
        ("get", "/api/assets/abc/similar/"),
        ("delete", "/api/assets/1e3/"),
        ("post", "/api/nothing-here/"),
        ("get", "/api/nothing-here"),  # no slash, and no route with one either
    ],
)
def test_unknown_routes_and_non_integer_ids_are_json_404s(editor_client, method, path):
    response = getattr(editor_client, method)(path)
    assert response.status_code == 404, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert error_of(response)["code"] == "not_found"


def test_a_route_without_its_trailing_slash_still_redirects(editor_client):
    response = editor_client.get("/api/assets?limit=2")
    assert response.status_code == 301
    assert response["Location"] == "/api/assets/?limit=2"


@override_settings(ROOT_URLCONF="tests.error_urls")
@pytest.mark.parametrize("path", ["/api/broken/", "/api/broken-plain/"])
def test_a_bug_is_a_json_500_that_tells_nothing_of_the_internals(path, caplog):
    response = Client(raise_request_exception=False).get(path)
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    error = error_of(response)
    assert error["code"] == "server_error"
    assert SECRET not in response.content.decode() and "Traceback" not in response.content.decode()


@override_settings(ROOT_URLCONF="tests.error_urls")
def test_a_database_error_outside_the_api_views_is_a_json_503():
    response = Client(raise_request_exception=False).get("/api/database-down-plain/")
    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert error_of(response)["code"] == "service_unavailable"
    assert SECRET not in response.content.decode()


def test_pages_outside_the_api_keep_the_sites_own_errors(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_a_body_django_refuses_is_a_400_not_a_500(editor_client):
    fields = "&".join(f"field{i}=1" for i in range(1500))  # over DATA_UPLOAD_MAX_NUMBER_FIELDS
    response = editor_client.post("/api/search/", data=fields, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400, response.content[:300]
    assert error_of(response)["code"] == "parse_error"
