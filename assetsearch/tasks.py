"""Celery tasks: thin wrappers that call :mod:`assetsearch.pipeline`.

Tasks take ids, never instances or bytes. ``@shared_task`` because a
reusable app cannot import the host project's Celery app.
"""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError, InterfaceError

from . import broker, pipeline
from .conf import app_settings

# Errors worth retrying: the database or the storage backend hiccuped.
TRANSIENT_ERRORS = (DatabaseError, InterfaceError, ConnectionError, TimeoutError, OSError)


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
    if broker.queued_messages():  # queued work holds the pending assets; see assetsearch.broker
        return 0
    return pipeline.sweep_pending()


@shared_task(acks_late=True)
def rescore_concept_task(concept_id: int) -> dict:
    from .moderation import rescore_concept

    counts = rescore_concept(concept_id)
    return {"flagged": counts.flagged, "cleared": counts.cleared}
