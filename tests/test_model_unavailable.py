"""A model whose weights cannot be loaded is an error a person sees, at once.

The broken configuration is real: open_clip's ViT-B-32 with its
``laion2b_s34b_b79k`` weights, which are not in this machine's (emptied)
Hugging Face cache, and downloads are off (``ALLOW_MODEL_DOWNLOAD`` False,
the default). Nothing about the encoder is mocked: the real worker runs the
real load, and it fails.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import huggingface_hub.constants
import pytest
from django.contrib.messages import get_messages
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from assetsearch.encoders import get_encoder
from assetsearch.exceptions import ModelUnavailable
from assetsearch.models import Asset, EmbeddingStatus
from assetsearch.tasks import sweep_pending

from .api_helpers import (  # noqa: F401  (fixtures)
    _fresh_throttles,
    assetsearch_settings,
    error_of,
    make_user,
    viewer,
    viewer_client,
)
from .utils import image_file, wait_for

UNREACHABLE = {"default": {"MODEL": "ViT-B-32", "PRETRAINED": "laion2b_s34b_b79k"}}
MESSAGE = (
    "model ViT-B-32/laion2b_s34b_b79k could not be loaded: weights not found in the Hugging Face or open_clip cache "
    "and no network (ASSETSEARCH['ALLOW_MODEL_DOWNLOAD'] is off); see README 'The model'"
)


@pytest.fixture
def empty_hub_cache(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty Hugging Face cache, so the weights are missing whatever this machine has downloaded."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HOME", str(tmp_path))  # open_clip's URL weights cache, ~/.cache/clip


@pytest.fixture
def unreachable_weights(empty_hub_cache: None) -> Iterator[None]:
    with assetsearch_settings(ENCODERS=UNREACHABLE):
        yield


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_worker_fails_the_asset_with_the_reason_once_and_reembed_failed_recovers_it(empty_hub_cache: None) -> None:
    with assetsearch_settings(ENCODERS=UNREACHABLE):
        asset = Asset.objects.create(image=image_file(), title="needs a model")
        wait_for(lambda: Asset.objects.get(pk=asset.pk).embedding_status != EmbeddingStatus.PENDING, timeout=60)
        asset.refresh_from_db()
        assert asset.embedding_status == EmbeddingStatus.FAILED
        assert asset.embedding_error == MESSAGE
        assert asset.embedding_attempts == 1  # one task run, not retried
        assert sweep_pending(older_than=timedelta(0)) == 0  # failed is not pending: never re-sent
        time.sleep(1)
        asset.refresh_from_db()
        assert (asset.embedding_status, asset.embedding_attempts) == (EmbeddingStatus.FAILED, 1)

    # The configuration is fixed (back to the bundled model): re-queue the failed assets.
    call_command("assetsearch_reembed", "--failed", verbosity=0)
    wait_for(lambda: Asset.objects.get(pk=asset.pk).embedding_status == EmbeddingStatus.READY, timeout=60)
    asset.refresh_from_db()
    assert asset.embedding_error == ""


@pytest.mark.django_db
def test_search_answers_a_json_503_with_the_reason_at_once(unreachable_weights: None, viewer_client: Any) -> None:
    import open_clip  # noqa: F401 - torch's import is a once-per-process cost that any model pays; what is timed is the rest

    for attempt in range(2):  # the second answer comes from the remembered failure
        started = time.perf_counter()
        response = viewer_client.get("/api/search/", {"q": "a red circle"})
        elapsed = time.perf_counter() - started
        assert response.status_code == 503, response.content
        assert error_of(response) == {"code": "service_unavailable", "message": MESSAGE, "fields": {}}
        assert response["Retry-After"]
        assert elapsed < 2, f"attempt {attempt} took {elapsed:.1f} s"


@pytest.mark.django_db
def test_the_failure_is_remembered_for_model_retry_seconds(unreachable_weights: None) -> None:
    encoder = get_encoder()
    with pytest.raises(ModelUnavailable) as first:
        encoder.warm_up()
    with pytest.raises(ModelUnavailable) as second:
        encoder.warm_up()
    assert second.value is first.value  # not loaded again
    with assetsearch_settings(ENCODERS=UNREACHABLE, MODEL_RETRY_SECONDS=0):
        with pytest.raises(ModelUnavailable) as third:
            get_encoder().warm_up()
    assert third.value is not first.value and str(third.value) == MESSAGE


@pytest.mark.django_db
def test_admin_search_shows_the_reason_instead_of_a_500(unreachable_weights: None, django_user_model: Any) -> None:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw"))
    response = client.get(reverse("admin:assetsearch_asset_changelist"), {"q": "a red circle"})
    assert response.status_code == 200
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        f"Semantic search did not run: {MESSAGE} Showing keyword matches."
    ]


def deploy_check_ids() -> list[str]:
    return [message.id for message in run_checks(include_deployment_checks=True, databases=[])]


def test_check_deploy_warns_when_the_weights_are_missing(unreachable_weights: None) -> None:
    messages = [m for m in run_checks(include_deployment_checks=True, databases=[]) if m.id == "assetsearch.W011"]
    assert len(messages) == 1
    assert "ViT-B-32/laion2b_s34b_b79k" in messages[0].msg and "weights not found" in messages[0].msg
    with assetsearch_settings(ENCODERS=UNREACHABLE, ALLOW_MODEL_DOWNLOAD=True):
        assert "assetsearch.W011" not in deploy_check_ids()


def test_check_deploy_is_quiet_for_the_bundled_model() -> None:
    assert "assetsearch.W011" not in deploy_check_ids()


def test_doctor_probes_the_bundled_model(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("assetsearch_doctor")
    out = capsys.readouterr().out
    assert f"default: ok: model assetsearch-demo/bundled, key {get_encoder().key}, 512-d" in out


def test_doctor_fails_with_the_reason_for_unreachable_weights(unreachable_weights: None, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(CommandError) as failure:
        call_command("assetsearch_doctor")
    assert f"default: {MESSAGE}" in str(failure.value)
    assert "FAILED" in capsys.readouterr().err
