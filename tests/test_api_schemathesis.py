"""Property-based: the served OpenAPI schema tells the truth, by every schemathesis check.

Schemathesis reads ``/api/schema/`` from the site's WSGI application and, for
every operation, sends a bounded number of generated requests (valid and
invalid) as an admin, through the whole stack: real authentication, real
Postgres, the real bundled model. Every check runs: no server error, status
codes, content types, headers and bodies as documented, valid requests
accepted and invalid ones rejected, unsupported methods, authentication
enforced, deleted resources gone. A stateful run then follows the links
schemathesis infers between operations (upload -> get -> edit -> delete).
Every 4xx must also have the API's error shape.
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
from schemathesis.checks import CHECKS, load_all_checks

from assetsearch.models import Asset
from assetsearch.pipeline import embed_assets

from .api_helpers import _fresh_throttles, assetsearch_settings  # noqa: F401  (fixture)
from .utils import image_file, scene

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 12
STATEFUL_EXAMPLES = 8
STATEFUL_STEPS = 6

load_all_checks()
ALL_CHECKS = CHECKS.get_all()


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


@pytest.fixture
def no_throttles() -> Iterator[None]:
    # No throttling: the point is what the handlers do with odd input.
    with assetsearch_settings(THROTTLE_RATES={"search": None, "upload": None}):
        yield


def assert_error_shape(response) -> None:
    if 400 <= response.status_code < 500 and response.headers.get("Content-Type", "").startswith("application/json"):
        body = response.json()
        assert set(body) == {"error"} and {"code", "message", "fields"} == set(body["error"]), body


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
def test_every_check_passes(case, fuzz_setup, no_throttles):
    token, asset_ids = fuzz_setup
    asset_id = (case.path_parameters or {}).get("id")
    if isinstance(asset_id, int) and not isinstance(asset_id, bool) and asset_id % 2 == 0:
        # Generated ids almost never exist; send half of them to real assets.
        case.path_parameters["id"] = asset_ids[(asset_id // 2) % len(asset_ids)]
    response = case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=ALL_CHECKS)
    assert_error_shape(response)


class APIWorkflow(schema.as_state_machine()):  # type: ignore[misc]
    """Sequences along the inferred links, as the admin."""

    token = ""

    def get_call_kwargs(self, case):
        return {"headers": {"Authorization": f"Token {self.token}"}}

    def validate_response(self, response, case, additional_checks=None, **kwargs):
        case.validate_response(response, checks=ALL_CHECKS, headers=kwargs.get("headers"))
        assert_error_shape(response)


def test_stateful_workflows(fuzz_setup, no_throttles):
    APIWorkflow.token = fuzz_setup[0]
    APIWorkflow.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )
