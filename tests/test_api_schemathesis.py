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

import json
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qs

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.parameters import ParameterLocation
from schemathesis.transport.serialization import Binary
from werkzeug.sansio.multipart import Data, MultipartEncoder, State

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
FORM_MEDIA_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    """Django's request signals would close the test's connection (it is inside
    the test transaction); its own test client disconnects them the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def _multipart_as_clients_send_it(monkeypatch) -> None:
    """Werkzeug (schemathesis' WSGI transport) encodes an empty form value as a part with no body
    at all, which Django's parser drops: ``tags=""`` would arrive as no ``tags``. requests, curl
    and browsers send the empty body (a CRLF); so does this."""
    send_event = MultipartEncoder.send_event

    def send_with_empty_bodies(self, event):
        if isinstance(event, Data) and self.state == State.DATA_START and not event.data:
            self.state = State.DATA
            return b"\r\n"
        return send_event(self, event)

    monkeypatch.setattr(MultipartEncoder, "send_event", send_with_empty_bodies)


@dataclass
class FuzzSetup:
    token: str
    ids: dict[str, list[int]]  # real ids of each kind, for generated ids to point at

    def point_at_real_objects(self, case) -> None:
        """Generated ids almost never exist: send about half of them to real objects.

        A search by an unknown ``asset_id`` or a review of unknown flag ids is
        a documented 400, so schema-valid requests name real ones.
        """
        # Deletes take the spare asset: the others stay for searches by asset_id to name.
        kind = "concept" if "/moderation/concepts/" in case.path else "spare" if case.method == "DELETE" else "asset"
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
    """An admin's token; two embedded assets, a spare one to delete, a concept and a flag for generated ids to point at."""
    admin = django_user_model.objects.create_superuser("fuzzer", "fuzzer@example.com", "pw")
    with assetsearch_settings(AUTO_EMBED=False):
        assets = [Asset.objects.create(image=image_file(scene(colour=c), seed=i), title=c, tags=[c]) for i, c in enumerate(["red", "blue"])]
        spare = Asset.objects.create(image=image_file(scene(colour="green"), seed=3), title="spare")
    embed_assets([a.pk for a in assets])
    concept = ModerationConcept.objects.create(name="fuzz", prompts=["a red circle"])
    flag = ModerationFlag.objects.create(asset=assets[0], concept=concept, score=0.9)
    ids = {"asset": [a.pk for a in assets], "spare": [spare.pk], "concept": [concept.pk], "flag": [flag.pk]}
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


def form_negation_reads_valid(case, response) -> bool:
    """Whether a negative form body is, as the server reads it, valid: a JSON type form data cannot carry.

    Form data is text, and a list is its repeated parts: ``tags={}`` or ``tags=5`` goes out as one
    part reading ``{}`` or ``5``, byte for byte the valid ``tags=["{}"]``. Schemathesis reads a
    sent form field as one value, never a list, so it would demand a refusal the server cannot
    make. Such a case skips negative_data_rejection alone; a body that reads invalid still needs its 400.
    """
    meta = case.meta
    media_type = (case.media_type or "").split(";")[0]
    if meta is None or not meta.generation.mode.is_negative or media_type not in FORM_MEDIA_TYPES:
        return False
    if any(c.mode.is_negative for location, c in meta.components.items() if location != ParameterLocation.BODY):
        return False
    body = case.operation.get_body_for_media_type(case.media_type)
    properties = body.resolved_schema.get("properties", {})
    validator = body.get_validator()
    fields = sent_form_fields(response, media_type)
    if None in fields:  # a part name the parser cannot read back: no verdict
        return False
    sent: dict[str, object] = {}
    for name, texts in fields.items():
        kinds = properties.get(name, {}).get("type")
        if None in texts:  # a file or a typed part: what was generated (a file stands as any string)
            value = case.body.get(name)
            sent[name] = "file" if isinstance(value, (Binary, bytes)) else value
        elif "array" in (kinds if isinstance(kinds, list) else [kinds]):
            sent[name] = texts
        else:  # the text, or what it parses to (a number, a boolean), whichever fits
            sent[name] = texts[0]
            if any(error.instance_path[:1] == [name] for error in validator.iter_errors(sent)):
                try:
                    sent[name] = json.loads(texts[0])
                except ValueError:
                    pass
    return body.is_valid(sent)


def sent_form_fields(response, media_type: str) -> dict[str, list[str | None]]:
    """Each field of the sent form body and its texts, in order (``None`` for a file or typed part)."""
    content = response.request.body or b""
    content = content.encode() if isinstance(content, str) else content
    if media_type == "application/x-www-form-urlencoded":
        return parse_qs(content.decode("ascii", errors="replace"), keep_blank_values=True)
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {response.request.headers['Content-Type']}\r\n\r\n".encode() + content)
    fields: dict[str, list[str | None]] = {}
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        text = payload.decode(errors="replace") if part.get_filename() is None and "content-type" not in part else None
        fields.setdefault(part.get_param("name", header="content-disposition"), []).append(text)
    return fields


def call_and_check(case, token: str):
    """Send ``case`` as the admin and run every check on the answer (see :func:`form_negation_reads_valid`)."""
    headers = {"Authorization": f"Token {token}"}
    response = case.call(headers=headers)
    validate(case, response, headers=headers)  # the authentication checks resend it without them
    return response


def validate(case, response, **kwargs) -> None:
    checks = ALL_CHECKS
    if form_negation_reads_valid(case, response):
        checks = [check for check in ALL_CHECKS if check.__name__ != "negative_data_rejection"]
    case.validate_response(response, checks=checks, **kwargs)
    assert_error_shape(response)


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
    call_and_check(case, fuzz_setup.token)


class APIWorkflow(schema.as_state_machine()):  # type: ignore[misc]
    """Sequences along the inferred links, as the admin."""

    fuzz: FuzzSetup

    def before_call(self, case):
        self.fuzz.point_at_real_objects(case)

    def get_call_kwargs(self, case):
        return {"headers": {"Authorization": f"Token {self.fuzz.token}"}}

    def validate_response(self, response, case, additional_checks=None, **kwargs):
        validate(case, response, headers=kwargs.get("headers"))


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
