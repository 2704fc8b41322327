"""Database connections through a real threaded server: bounded, and a restart costs no 500.

gunicorn (gthread, as scripts/run serves the site) runs on the test
database; connections are counted in ``pg_stat_activity``.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from django.conf import settings
from django.db import connection, connections
from rest_framework.authtoken.models import Token

from assetsearch.api.exceptions import RETRY_AFTER_SECONDS
from project import embedded

from .api_helpers import _fresh_throttles, editor, make_user  # noqa: F401  (fixtures)
from .server_helpers import SITE_APPLICATION_NAME, call, database_url, gunicorn_site, upload
from .utils import image_file

pytestmark = pytest.mark.django_db(transaction=True)

WORKERS, THREADS, POOL_SIZE = 2, 8, 3
CLIENTS, REQUESTS = 16, 300


@pytest.fixture(scope="module")
def site(django_db_setup, broker_url, tmp_path_factory):
    """The site under gunicorn: 2 processes x 8 threads, at most 3 pooled connections each."""
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with gunicorn_site(connection.settings_dict, broker_url, settings.MEDIA_ROOT, log,
                       workers=WORKERS, threads=THREADS, pool_size=POOL_SIZE) as base:
        yield base


@pytest.fixture
def token(editor):
    return Token.objects.create(user=editor).key


def backends() -> int:
    """The server's connections to the test database."""
    with psycopg.connect(database_url(connection.settings_dict), autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            [SITE_APPLICATION_NAME],
        ).fetchone()[0]


def test_connections_stay_bounded_under_a_threaded_server(site, token):
    stop = threading.Event()
    peak = [0]

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], backends())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(CLIENTS) as clients:
            statuses = list(clients.map(lambda i: call("GET", f"{site}/api/assets/?limit={1 + i % 5}", token=token)[0], range(REQUESTS)))
    finally:
        stop.set()
        sampler.join()
    assert 500 not in statuses
    assert statuses.count(200) == REQUESTS, {s: statuses.count(s) for s in set(statuses)}
    # 16 requests at a time over 16 server threads, but never more connections than the pools hold.
    assert 0 < peak[0] <= WORKERS * POOL_SIZE, peak[0]
    print(f"{REQUESTS} requests, {CLIENTS} at a time: at most {peak[0]} connections (bound {WORKERS * POOL_SIZE})")


@pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="stops the embedded PostgreSQL")
def test_a_database_outage_is_a_json_503_and_a_restart_costs_no_500(site, token):
    for _ in range(2 * WORKERS):  # every server process holds pooled connections
        assert call("GET", f"{site}/api/assets/", token=token)[0] == 200
    requests = [
        lambda: call("GET", f"{site}/api/assets/", token=token),
        lambda: call("GET", f"{site}/api/search/?q=a+red+circle", token=token),
        lambda: upload(site, token, image_file().read()),
    ]
    embedded.stop_postgres()
    try:
        for request in requests:
            status, headers, body = request()
            assert status == 503, body
            assert headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
            assert body["error"]["code"] == "service_unavailable", body
    finally:
        embedded.start_postgres()
        restarted = time.monotonic()
        # This process's own connections died with the server too: start its pool afresh.
        connections.close_all()
        connection.close_pool()
    statuses: list[int] = []
    while time.monotonic() - restarted < 30 and statuses[-10:] != [200] * 10:
        statuses.append(call("GET", f"{site}/api/assets/", token=token)[0])
    assert 500 not in statuses, statuses
    assert statuses[-10:] == [200] * 10, statuses
    assert set(statuses) <= {200, 503}, statuses
    print(f"database restart: {statuses.count(503)} answer(s) 503 after the restart, then 200s; {len(statuses)} requests in "
          f"{time.monotonic() - restarted:.1f} s")
