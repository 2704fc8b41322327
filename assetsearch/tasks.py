"""Celery's face of assetsearch: the tasks, and every function that sends one.

Tasks take ids, never instances or bytes, and call the core
(:mod:`assetsearch.pipeline`, :mod:`assetsearch.moderation`); ``@shared_task``
because a reusable app cannot import the host project's Celery app. The
rest of the app sends work only through the ``enqueue_*`` / ``request_*``
functions here, which never raise when the broker is down: the work stays
recorded in the database (assets ``pending``) and :func:`sweep_pending`
sends it later.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from celery import current_app, shared_task
from django.db import DatabaseError, InterfaceError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from . import moderation, pipeline
from .conf import app_settings
from .constants import EmbeddingStatus
from .models import Asset, ModerationConcept

logger = logging.getLogger(__name__)

# Errors worth retrying: the database or the storage backend hiccuped.
TRANSIENT_ERRORS = (DatabaseError, InterfaceError, ConnectionError, TimeoutError, OSError)

# How long a send waits for a broker that does not answer (about a second in
# all): a request must not hang on it, and nothing is lost by giving up.
SEND_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


# Tasks --------------------------------------------------------------------


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def embed_assets_task(self, asset_ids: list[int], alias: str = "default", force: bool = False) -> dict:
    try:
        return pipeline.embed_assets(asset_ids, alias=alias, force=force).as_dict()
    except TRANSIENT_ERRORS as exc:
        if self.request.retries >= app_settings.MAX_RETRIES:
            pipeline.give_up(asset_ids, exc)
            raise
        raise self.retry(exc=exc, countdown=2 ** self.request.retries, max_retries=app_settings.MAX_RETRIES)


@shared_task
def sweep_pending_task() -> int:
    if queued_messages():  # queued work holds the pending assets; see queued_messages()
        return 0
    return sweep_pending()


@shared_task(acks_late=True)
def rescore_concept_task(concept_id: int) -> dict:
    counts = moderation.rescore_concept(concept_id)
    return {"flagged": counts.flagged, "cleared": counts.cleared}


# Sending work -------------------------------------------------------------


def send(task: Any, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None, *, queue: str | None = None) -> bool:
    """Send ``task(*args, **kwargs)`` to the broker; False (logged) if it could not be reached."""
    options: dict[str, Any] = {"retry_policy": SEND_RETRY_POLICY}
    if queue:
        options["queue"] = queue
    try:
        task.apply_async(args=list(args), kwargs=kwargs or {}, **options)
    except Exception:  # the broker's client raises many kinds; all mean "not sent"
        logger.warning("Could not send %s; it is sent again later.", task.name, exc_info=True)
        return False
    return True


def enqueue_embedding(asset_ids: Sequence[int], *, alias: str = "default", force: bool = False) -> bool:
    """Send ids to the workers, in batches of ``BATCH_SIZE``; False if the broker could not be reached.

    Never raises: the assets stay ``pending`` and the sweep sends them later.
    """
    for ids in pipeline.chunked(asset_ids, app_settings.get_embedding_batch_size()):
        if not send(embed_assets_task, [ids], {"alias": alias, "force": force}, queue=app_settings.QUEUE):
            return False
    return True


def request_embedding(asset_ids: Sequence[int]) -> None:
    """Enqueue the assets' embedding once the current transaction commits (so the worker sees them)."""
    ids = list(asset_ids)
    transaction.on_commit(lambda: enqueue_embedding(ids))


def create_assets(assets: Sequence[Asset]) -> list[int]:
    """Store new assets in bulk (:func:`~assetsearch.pipeline.store_assets`) and request their embedding."""
    with transaction.atomic():
        ids = pipeline.store_assets(assets)
        if ids and app_settings.AUTO_EMBED:
            request_embedding(ids)
    return ids


def requeue_embedding(assets: QuerySet[Asset]) -> tuple[list[int], int, bool]:
    """Embed ``assets`` again, from their files: they become pending first, so a
    broker that is down leaves them to the sweep.

    Returns their ids, how many were not pending before, and whether they were sent.
    """
    ids = list(assets.values_list("pk", flat=True))
    if not ids:
        return ids, 0, True
    changed = Asset.objects.filter(pk__in=ids).exclude(embedding_status=EmbeddingStatus.PENDING).set_status(EmbeddingStatus.PENDING)
    return ids, changed, enqueue_embedding(ids, force=True)


def sweep_pending(older_than: timedelta | None = None) -> int:
    """Re-enqueue assets pending for longer than ``older_than`` (``SWEEP_AFTER_SECONDS``); returns how many.

    Catches work whose enqueue failed (broker down) or whose message was lost.
    """
    if older_than is None:
        older_than = timedelta(seconds=app_settings.SWEEP_AFTER_SECONDS)
    ids = list(Asset.objects.pending_since(timezone.now() - older_than).values_list("pk", flat=True))
    if ids and enqueue_embedding(ids):
        # Restart the clock so the next sweep does not send them again at once.
        Asset.objects.filter(pk__in=ids).pending().update(embedding_status_changed_at=timezone.now())
        return len(ids)
    return 0


def request_rescore(concept: ModerationConcept) -> None:
    """Re-score the catalogue for ``concept`` in the background, after commit.

    If the broker is down, ``manage.py assetsearch_rescore`` does it by hand.
    """
    pk = concept.pk
    transaction.on_commit(lambda: send(rescore_concept_task, [pk]))


def broker_reachable() -> bool:
    """Whether the Celery broker answers right now (one quick connection attempt)."""
    try:
        with current_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, timeout=2)
    except Exception:  # kombu raises many kinds; all mean "not reachable"
        return False
    return True


def warm_up_worker(**kwargs: object) -> None:
    """Load the default encoder as each worker process starts, so the first upload does not wait for it.

    Connected to Celery's ``worker_process_init`` in ``AppConfig.ready()``.
    """
    from .encoders import warm_up

    try:
        warm_up()
    except Exception:  # the tasks fail their assets with the same message (ModelUnavailable)
        logger.exception("Could not load the assetsearch encoder at worker start")


def queued_messages(queue: str | None = None) -> int | None:
    """Messages waiting (not yet taken by a worker) in the embedding queue.

    The sweep re-enqueues assets that stayed pending too long. While embedding
    messages are still queued, those assets are most likely in them (a big
    import, a worker catching up), and re-sending them would only pile
    duplicates behind the originals; so the sweep waits for the queue to
    drain (0) or for the broker to say nothing. None when the broker cannot
    tell: unreachable, or the queue was never declared (no worker has
    consumed from it yet).
    """
    name = queue or app_settings.QUEUE or current_app.conf.task_default_queue
    try:
        with current_app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1)
            return int(connection.default_channel.queue_declare(queue=name, passive=True).message_count)
    except Exception:  # the broker's client raises many kinds; all mean "cannot tell"
        logger.debug("Could not read the depth of queue %r", name, exc_info=True)
        return None
