"""The test stack is real: PostgreSQL with pgvector, a Redis broker, a Celery worker."""

from __future__ import annotations

import io
import uuid

import pytest
import redis
from celery import shared_task
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

from .utils import wait_for


def redis_client(url: str) -> redis.Redis:
    """A redis-py client for a Celery broker URL (``redis+socket://`` is kombu's spelling of a unix socket)."""
    if url.startswith("redis+socket://"):
        return redis.Redis(unix_socket_path=url.removeprefix("redis+socket://").split("?")[0])
    return redis.Redis.from_url(url)


@shared_task
def record_username_task(user_id: int, broker_url: str, key: str) -> None:
    """Read a row the test committed, and answer through Redis (there is no result backend)."""
    username = get_user_model().objects.get(pk=user_id).username
    redis_client(broker_url).set(key, username, ex=300)


@pytest.mark.django_db
def test_database_is_postgresql_with_pgvector():
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        assert int(cursor.fetchone()[0]) >= 150000
        cursor.execute("CREATE EXTENSION IF NOT EXISTS vector")
        cursor.execute("SELECT '[1,2,3]'::vector <=> '[1,2,4]'::vector")
        distance = cursor.fetchone()[0]
    assert isinstance(distance, float)
    assert distance == pytest.approx(1 - 17 / (14**0.5 * 21**0.5))


def test_broker_is_a_real_redis(broker_url):
    client = redis_client(broker_url)
    assert client.ping() is True
    assert client.info("server")["redis_version"]


def test_tasks_are_published_to_that_redis(broker_url):
    from project.celery import app

    assert app.conf.broker_url == broker_url
    client = redis_client(broker_url)
    queue = f"infra-{uuid.uuid4().hex}"  # a queue no worker consumes
    record_username_task.apply_async((0, broker_url, "unused"), queue=queue)
    try:
        assert client.llen(queue) == 1
    finally:
        client.delete(queue, f"_kombu.binding.{queue}")


@pytest.mark.django_db(transaction=True)
def test_task_round_trips_through_the_real_worker(celery_worker, broker_url):
    user = get_user_model().objects.create_user(username=f"infra-{uuid.uuid4().hex[:8]}")
    key = f"infra-test:{uuid.uuid4().hex}"
    record_username_task.delay(user.pk, broker_url, key)
    client = redis_client(broker_url)
    assert wait_for(lambda: client.get(key), timeout=30, message="the worker to run the task") == user.username.encode()


@pytest.mark.django_db
def test_no_migration_is_pending():
    out = io.StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit:
        pytest.fail(f"models have changes without a migration:\n{out.getvalue()}")
