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
from dataclasses import dataclass

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.transport.serialization import Binary

from assetsearch.constants import MAX_ID
from assetsearch.models import Asset, ModerationConcept, ModerationFlag
from assetsearch.pipeline import embed_assets

from .api_helpers import _fresh_throttles, assetsearch_settings  # noqa: F401  (fixture)
from .utils import image_file, scene

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 12
STATEFUL_EXAMPLES = 8
STATEFUL_STEPS = 6

load_all_checks()
ALL_CHECKS = CHECKS.get_all()
# Whether valid-by-schema data is always accepted and invalid data always
# refused: the schema does not yet state every rule the serializers enforce
# (issue 14, finding 11), so these run in an xfail test of their own.
DATA_CHECKS = {"negative_data_rejection", "positive_data_acceptance"}
CONFORMANCE_CHECKS = [check for check in ALL_CHECKS if check.__name__ not in DATA_CHECKS]


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    """Django's request signals would close the test's connection (it is inside
    the test transaction); its own test client disconnects them the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@dataclass
class FuzzSetup:
    token: str
    ids: dict[str, list[int]]  # real ids of each kind, for generated ids to point at

    def point_at_real_objects(self, case) -> None:
        """Generated ids almost never exist: send about half of them to real objects.

        A search by an unknown ``asset_id`` or a review of unknown flag ids is
        a documented 400, so schema-valid requests name real ones.
        """
        kind = "concept" if "/moderation/concepts/" in case.path else "asset"
        for params, name, target in ((case.path_parameters, "id", kind), (case.query, "concept", "concept")):
            value = (params or {}).get(name)
            if is_id(value) and value % 2 == 0:
                params[name] = self.ids[target][(value // 2) % len(self.ids[target])]
        body = case.body if isinstance(case.body, dict) else {}
        if "image" in body and case.meta is not None and not case.meta.generation.mode.is_negative:
            # A schema cannot say "decodable"; valid requests carry a real image (test_api.py sends hostile files).
            body["image"] = Binary(UPLOAD_SAMPLES[len(case.id) % len(UPLOAD_SAMPLES)])
        if is_id(body.get("asset_id")):
            body["asset_id"] = self.ids["asset"][body["asset_id"] % len(self.ids["asset"])]
        if isinstance(body.get("ids"), list) and body["ids"] and all(is_id(i) for i in body["ids"]):
            body["ids"] = [self.ids["flag"][i % len(self.ids["flag"])] for i in body["ids"]]


def is_id(value: object) -> bool:
    """A valid id (an int >= 1): only those are pointed elsewhere, so an invalid one stays invalid."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


@pytest.fixture
def fuzz_setup(django_user_model) -> FuzzSetup:
    """An admin's token; two embedded assets, a concept and a flag for generated ids to point at."""
    admin = django_user_model.objects.create_superuser("fuzzer", "fuzzer@example.com", "pw")
    with assetsearch_settings(AUTO_EMBED=False):
        assets = [Asset.objects.create(image=image_file(scene(colour=c), seed=i), title=c, tags=[c]) for i, c in enumerate(["red", "blue"])]
    embed_assets([a.pk for a in assets])
    concept = ModerationConcept.objects.create(name="fuzz", prompts=["a red circle"])
    flag = ModerationFlag.objects.create(asset=assets[0], concept=concept, score=0.9)
    ids = {"asset": [a.pk for a in assets], "concept": [concept.pk], "flag": [flag.pk]}
    return FuzzSetup(Token.objects.create(user=admin).key, ids)


@pytest.fixture
def no_throttles() -> Iterator[None]:
    # No throttling: the point is what the handlers do with odd input.
    with assetsearch_settings(THROTTLE_RATES={"search": None, "upload": None}):
        yield


def assert_error_shape(response) -> None:
    if 400 <= response.status_code < 500 and response.headers.get("Content-Type", "").startswith("application/json"):
        body = response.json()
        assert set(body) == {"error"} and {"code", "message", "fields"} == set(body["error"]), body


def png_bytes(colour: str, seed: int) -> bytes:
    return image_file(scene(colour=colour), seed=seed).read()


UPLOAD_SAMPLES = [png_bytes(c, i) for i, c in enumerate(["green", "yellow", "purple"])]
# Generated uploads (format: binary) are real images.
schemathesis.openapi.format("binary", st.sampled_from(UPLOAD_SAMPLES).map(Binary))

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)

# Loaded at collection, from the site's own WSGI application (schema generation reads no database).
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", WSGIHandler())


@schema.parametrize()
@FUZZ_SETTINGS
def test_responses_conform_to_the_schema(case, fuzz_setup, no_throttles):
    fuzz_setup.point_at_real_objects(case)
    response = case.call_and_validate(headers={"Authorization": f"Token {fuzz_setup.token}"}, checks=CONFORMANCE_CHECKS)
    assert_error_shape(response)


@pytest.mark.xfail(
    strict=False,
    reason="issue 14 finding 11, open: some rules the serializers enforce (control characters in tags, "
    "multipart query images, unique concept names, out-of-range dates) are not yet stated in the schema",
)
@schema.parametrize()
@FUZZ_SETTINGS
def test_valid_data_is_accepted_and_invalid_data_refused(case, fuzz_setup, no_throttles):
    fuzz_setup.point_at_real_objects(case)
    case.call_and_validate(headers={"Authorization": f"Token {fuzz_setup.token}"}, checks=[check for check in ALL_CHECKS if check.__name__ in DATA_CHECKS])


class APIWorkflow(schema.as_state_machine()):  # type: ignore[misc]
    """Sequences along the inferred links, as the admin."""

    fuzz: FuzzSetup

    def before_call(self, case):
        self.fuzz.point_at_real_objects(case)

    def get_call_kwargs(self, case):
        return {"headers": {"Authorization": f"Token {self.fuzz.token}"}}

    def validate_response(self, response, case, additional_checks=None, **kwargs):
        case.validate_response(response, checks=CONFORMANCE_CHECKS, headers=kwargs.get("headers"))
        assert_error_shape(response)


def test_stateful_workflows(fuzz_setup, no_throttles):
    APIWorkflow.fuzz = fuzz_setup
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
