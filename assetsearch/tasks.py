"""Celery's face of assetsearch: the tasks, and every function that sends one.

Tasks take ids, never instances or bytes, and call the core
(:mod:`assetsearch.pipeline`, :mod:`assetsearch.moderation`); ``@shared_task``
because a reusable app cannot import the host project's Celery app. The
rest of the app sends work only through the ``enqueue_*`` / ``request_*``
functions here, which never raise when the broker is down: the work stays
recorded in the database (index entries ``pending``) and
:func:`sweep_pending` sends it later.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from celery import current_app, shared_task
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, InterfaceError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from . import moderation, pipeline
from .conf import app_settings
from .constants import EmbeddingStatus
from .models import Asset, IndexEntry, ModerationConcept
from .registry import get_index, get_indexes, is_registered

logger = logging.getLogger(__name__)

# Errors worth retrying: the database or the storage backend hiccuped.
TRANSIENT_ERRORS = (DatabaseError, InterfaceError, ConnectionError, TimeoutError, OSError)

# How long a send waits for a broker that does not answer (about a second in
# all): a request must not hang on it, and nothing is lost by giving up.
SEND_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


# Tasks --------------------------------------------------------------------


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def embed_objects_task(self, label: str, object_ids: list[int], alias: str | None = None, force: bool = False) -> dict:
    try:
        return pipeline.embed_objects(label, object_ids, alias=alias, force=force).as_dict()
    except TRANSIENT_ERRORS as exc:
        if self.request.retries >= app_settings.MAX_RETRIES:
            pipeline.give_up(label, object_ids, alias, exc)
            raise
        raise self.retry(exc=exc, countdown=2 ** self.request.retries, max_retries=app_settings.MAX_RETRIES)


@shared_task
def embed_assets_task(asset_ids: list[int], alias: str | None = None, force: bool = False) -> bool:
    """Messages queued by the previous release (assets only): sent on as :func:`embed_objects_task`."""
    return enqueue_embedding(asset_ids, model=Asset, alias=alias, force=force)


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


def enqueue_embedding(
    object_ids: Sequence[int], *, model: Any = None, alias: str | None = None, force: bool = False
) -> bool:
    """Send ids of ``model`` (a model, an instance's class or a label; default Asset) to the workers,
    in batches of ``BATCH_SIZE``; False if the broker could not be reached.

    Never raises: the entries stay ``pending`` and the sweep sends them later.
    """
    label = get_index(model or Asset).label
    alias = alias or app_settings.SEARCH_ENCODER
    for ids in pipeline.chunked(object_ids, app_settings.get_embedding_batch_size()):
        if not send(embed_objects_task, [label, ids], {"alias": alias, "force": force}, queue=app_settings.QUEUE):
            return False
    return True


def request_embedding(object_ids: Sequence[int], *, model: Any = None, alias: str | None = None) -> None:
    """Enqueue the objects' embedding once the current transaction commits (so the worker sees them)."""
    ids = list(object_ids)
    transaction.on_commit(lambda: enqueue_embedding(ids, model=model, alias=alias))


def request_changes(changes: dict[str, list[int]], model: Any) -> None:
    """Request the embedding :func:`~assetsearch.pipeline.note_changes` found needed, per alias."""
    if app_settings.AUTO_EMBED:
        for alias, ids in changes.items():
            request_embedding(ids, model=model, alias=alias)


def create_assets(assets: Sequence[Asset]) -> list[int]:
    """Store new assets in bulk (:func:`~assetsearch.pipeline.store_assets`) and request their embedding."""
    with transaction.atomic():
        ids = pipeline.store_assets(assets)
        if ids:
            request_changes({alias: ids for alias in app_settings.get_indexed_encoders()}, Asset)
    return ids


def requeue_embedding(objects: QuerySet, *, alias: str | None = None) -> tuple[list[int], int, bool]:
    """Embed ``objects`` (a queryset of a registered model) again, from their files: their
    entries become pending first, so a broker that is down leaves them to the sweep.

    Returns their ids, how many were not pending before, and whether they were sent.
    """
    ids = list(objects.values_list("pk", flat=True))
    if not ids:
        return ids, 0, True
    alias = alias or app_settings.SEARCH_ENCODER
    entries = IndexEntry.objects.for_objects(objects.model, ids).for_encoder(alias)
    changed = entries.exclude(status=EmbeddingStatus.PENDING).set_status(EmbeddingStatus.PENDING)
    return ids, changed, enqueue_embedding(ids, model=objects.model, alias=alias, force=True)


def sweep_pending(older_than: timedelta | None = None) -> int:
    """Re-enqueue entries (any model, any alias) pending for longer than ``older_than``
    (``SWEEP_AFTER_SECONDS``); returns how many.

    Catches work whose enqueue failed (broker down) or whose message was lost.
    """
    if older_than is None:
        older_than = timedelta(seconds=app_settings.SWEEP_AFTER_SECONDS)
    stuck = IndexEntry.objects.pending_since(timezone.now() - older_than)
    groups: dict[tuple[int, str], list[int]] = {}
    for content_type_id, alias, object_id in stuck.values_list("content_type_id", "encoder", "object_id"):
        groups.setdefault((content_type_id, alias), []).append(object_id)
    sent = 0
    for (content_type_id, alias), ids in groups.items():
        model = ContentType.objects.get_for_id(content_type_id).model_class()
        if model is None or not is_registered(model):
            continue  # a model no longer indexed: assetsearch_status reports its entries
        if enqueue_embedding(ids, model=model, alias=alias):
            # Restart the clock so the next sweep does not send them again at once.
            stuck.filter(content_type_id=content_type_id, encoder=alias, object_id__in=ids).update(status_changed_at=timezone.now())
            sent += len(ids)
    return sent


def request_rescore(concept: ModerationConcept) -> None:
    """Re-score the catalogue for ``concept`` in the background, after commit.

    If the broker is down, ``manage.py assetsearch_rescore`` does it by hand.
    """
    pk = concept.pk
    transaction.on_commit(lambda: send(rescore_concept_task, [pk]))


def warm_up_sender() -> None:
    """Make the first send cost what any other does: finalize the Celery app and open a pooled broker connection.

    A web process's first upload otherwise pays for them in its request
    (about 75 ms on 2 cores: the app's task registry, the broker transport's
    import, the connection). Call it after the process forks (the example
    site's gunicorn hook). A broker that is down now is only logged: sends
    retry, and the sweep sends what they could not.
    """
    try:
        current_app.finalize(auto=True)
        with current_app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, timeout=2)
    except Exception:  # kombu raises many kinds; all mean "not reachable"
        logger.warning("The broker did not answer at start; the first upload connects.", exc_info=True)


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
    from .images import load_decoders

    load_decoders()
    try:
        warm_up()
    except Exception:  # the tasks fail their assets with the same message (ModelUnavailable)
        logger.exception("Could not load the assetsearch encoder at worker start")
    # No database connection here: Celery's Django fixup closes the sockets of
    # the connections a process has at worker_process_init, and a pooled one
    # opened before that would hang the first task (seen with psycopg_pool).


def warm_up_database(sender: Any = None, **kwargs: object) -> None:
    """Open the database connection (and the pool behind it) before the first task, where that task will use it.

    Connected to Celery's ``worker_ready``, which the worker's main process
    sends once it consumes. With the solo and threads pools (``scripts/run``'s
    worker is solo) that process runs the tasks, and its first task used to
    pay for the connection, the pool and the content types: a third of the
    first upload's time to searchable. A prefork worker's tasks run in its
    children, and Celery's Django fixup closes a child's pool around every
    task anyway, so there is nothing to keep warm there. Not at
    ``worker_process_init``: see :func:`warm_up_worker`.
    """
    from django.db import connections

    pool = getattr(sender, "pool", None)
    if pool is None or "prefork" in type(pool).__module__:
        return
    try:
        for index in get_indexes():
            pipeline.content_type_of(index)  # cached per process from now on
        IndexEntry.objects.search_alias().filter(pk=-1).exists()
        ModerationConcept.objects.enabled().exists()
    except Exception:  # a database that is down now is the first task's to retry
        logger.warning("The database did not answer at worker start; the first task connects.", exc_info=True)
    finally:
        connections.close_all()  # back to the pool, where there is one


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
