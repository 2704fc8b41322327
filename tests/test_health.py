"""Health checks (``assetsearch.health``, ``GET /api/health/``) against the real services.

"Worker down" is a queue no worker consumes (the session's worker keeps
running for the other tests) and a broker that does not answer.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from assetsearch.models import Asset, IndexEntry

from .api_helpers import admin, admin_client, assetsearch_settings, error_of, make_user, viewer, viewer_client  # noqa: F401  (fixtures)
from .utils import image_file

pytestmark = pytest.mark.django_db(transaction=True)


def health(client: APIClient) -> tuple[int, dict]:
    response = client.get("/api/health/")
    return response.status_code, response.json()


def test_all_ok_with_the_worker_up(celery_worker, admin_client):
    status, body = health(admin_client)
    assert status == 200, body
    checks = body["checks"]
    assert body["status"] == "ok", checks
    assert {name: check["status"] for name, check in checks.items()} == dict.fromkeys(
        ["database", "broker", "worker", "model", "pending"], "ok"
    )
    assert checks["database"]["details"]["pgvector"]
    assert checks["worker"]["details"]["queue"] == "celery"
    assert len(checks["worker"]["details"]["workers"]) >= 1
    assert checks["model"]["details"]["model"].startswith("assetsearch-demo:")


def test_no_worker_on_the_queue_is_an_error_within_the_timeout(celery_worker, admin_client):
    with assetsearch_settings(QUEUE="assetsearch-nobody-consumes", HEALTH_TIMEOUT=0.5):
        started = time.monotonic()
        status, body = health(admin_client)
        took = time.monotonic() - started
    assert status == 503
    assert body["status"] == "error"
    worker = body["checks"]["worker"]
    assert worker["status"] == "error"
    assert "No worker consumes the queue 'assetsearch-nobody-consumes'" in worker["message"]
    assert body["checks"]["database"]["status"] == "ok" and body["checks"]["broker"]["status"] == "ok"
    assert took < 3


def test_a_broker_that_does_not_answer_is_an_error(admin_client, tmp_path):
    from celery import Celery

    from project.celery import app

    # The site's Celery app, pointed at a Redis that is not there.
    Celery("down", broker=f"redis+socket://{tmp_path}/no-redis.sock", set_as_current=True)
    try:
        with assetsearch_settings(HEALTH_TIMEOUT=0.5):
            status, body = health(admin_client)
    finally:
        app.set_current()
    assert status == 503
    assert body["checks"]["broker"]["status"] == "error"
    assert "does not answer" in body["checks"]["broker"]["message"]
    assert body["checks"]["worker"]["status"] == "error"


def test_old_pending_work_is_a_warning(celery_worker, admin_client):
    with assetsearch_settings(AUTO_EMBED=False):
        asset = Asset.objects.create(image=image_file(), title="stuck")
    IndexEntry.objects.for_objects(Asset, [asset.pk]).update(status_changed_at=timezone.now() - timedelta(hours=1))
    with assetsearch_settings(HEALTH_PENDING_WARN_SECONDS=600):
        status, body = health(admin_client)
    assert (status, body["status"]) == (200, "warning"), body["checks"]["worker"]
    pending = body["checks"]["pending"]
    assert pending["status"] == "warning"
    assert pending["details"]["pending"] == 1 and pending["details"]["oldest_pending_age_s"] >= 3600
    assert "more than 600 s" in pending["message"]


def test_a_missing_checkpoint_is_an_error(celery_worker, admin_client, tmp_path):
    with assetsearch_settings(ENCODERS={"default": {"MODEL": "ViT-B-32", "PRETRAINED": str(tmp_path / "missing.pt")}}):
        status, body = health(admin_client)
    assert status == 503
    assert body["checks"]["model"]["status"] == "error"
    assert "missing.pt does not exist" in body["checks"]["model"]["message"]


def test_only_staff_or_the_health_token(celery_worker, viewer_client):
    assert error_of(APIClient().get("/api/health/"))["code"] == "not_authenticated"
    assert viewer_client.get("/api/health/").status_code == 403
    with assetsearch_settings(HEALTH_TOKEN="s3cret-monitor"):
        assert APIClient().get("/api/health/", HTTP_AUTHORIZATION="Bearer s3cret-monitor").status_code == 200
        assert APIClient().get("/api/health/", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    # No token configured: a Bearer header opens nothing.
    assert APIClient().get("/api/health/", HTTP_AUTHORIZATION="Bearer ").status_code == 401
