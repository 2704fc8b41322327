"""Property-based: requests generated from the served OpenAPI schema never get a 5xx.

Schemathesis reads ``/api/schema/`` from the site's WSGI application and, for
every operation, sends a bounded number of generated requests (valid and
invalid) as an admin, through the whole stack: real authentication, real
Postgres, the real bundled model. Every 4xx must have the API's error shape.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from rest_framework.authtoken.models import Token

from assetsearch.models import Asset
from assetsearch.pipeline import embed_assets

from .api_helpers import _fresh_throttles, assetsearch_settings  # noqa: F401  (fixture)
from .utils import image_file, scene

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 12


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    """Django's request signals would close the test's connection (it is inside
    the test transaction); its own test client disconnects them the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_setup(django_user_model) -> tuple[str, list[int]]:
    """An admin's token, and two embedded assets for generated ids to point at."""
    admin = django_user_model.objects.create_superuser("fuzzer", "fuzzer@example.com", "pw")
    with assetsearch_settings(AUTO_EMBED=False):
        assets = [Asset.objects.create(image=image_file(scene(colour=c), seed=i), title=c, tags=[c]) for i, c in enumerate(["red", "blue"])]
    embed_assets([a.pk for a in assets])
    return Token.objects.create(user=admin).key, [a.pk for a in assets]


# Loaded at collection, from the site's own WSGI application (schema generation reads no database).
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", WSGIHandler())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_request_gets_a_server_error(case, fuzz_setup):
    token, asset_ids = fuzz_setup
    asset_id = (case.path_parameters or {}).get("id")
    if isinstance(asset_id, int) and not isinstance(asset_id, bool) and asset_id % 2 == 0:
        # Generated ids almost never exist; send half of them to real assets.
        case.path_parameters["id"] = asset_ids[(asset_id // 2) % len(asset_ids)]
    # No throttling: the point is what the handlers do with odd input.
    with assetsearch_settings(THROTTLE_RATES={"search": None, "upload": None}):
        response = case.call(headers={"Authorization": f"Token {token}"})
    assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    if 400 <= response.status_code < 500 and response.headers.get("Content-Type", "").startswith("application/json"):
        body = response.json()
        assert set(body) == {"error"} and {"code", "message", "fields"} == set(body["error"]), body
