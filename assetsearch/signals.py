"""Signal handlers: they enqueue work and clean files up, after commit.

Files follow their asset's row, whatever the path (the API, the admin, the
ORM, a queryset's bulk delete, a cascade): once the transaction commits, a
deleted asset's file and thumbnails are removed, and so is the file a
replacement superseded; a transaction that rolls back leaves no newly
stored file behind. Thumbnails are named after their original's stored
name (:mod:`assetsearch.thumbnails`), so they go with it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from django.db import transaction

from .conf import app_settings
from .models import Asset, ModerationConcept
from .tasks import request_embedding, request_rescore
from .thumbnails import get_thumbnail_names


def asset_saving(sender: type[Asset], instance: Asset, raw: bool = False, **kwargs: Any) -> None:
    if raw or not instance.has_new_file:
        return
    # The file is written to storage while the row is saved: undo that if the row never commits.
    on_rollback(lambda: _delete_stored_upload(instance))


def asset_saved(sender: type[Asset], instance: Asset, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if raw:  # loaddata: the fixture's state is what it is
        return
    previous = instance.stored_file
    instance.stored_file = instance.image.name
    if previous is not None and previous != instance.image.name:
        delete_files_on_commit(instance, previous)
    if app_settings.AUTO_EMBED and instance.file_changed:
        request_embedding([instance.pk])


def asset_deleted(sender: type[Asset], instance: Asset, **kwargs: Any) -> None:
    delete_files_on_commit(instance, instance.image.name)


def concept_saved(sender: type[ModerationConcept], instance: ModerationConcept, raw: bool = False, **kwargs: Any) -> None:
    if raw or not instance.enabled:
        return
    request_rescore(instance)


# File lifecycle -----------------------------------------------------------


def delete_files_on_commit(asset: Asset, name: str) -> None:
    """After commit, delete ``asset``'s stored file ``name`` and its thumbnails."""
    storage = asset.image.storage
    names = [name, *get_thumbnail_names(name)] if name else []

    def delete() -> None:
        for stored in names:
            storage.delete(stored)

    transaction.on_commit(delete)


def _delete_stored_upload(asset: Asset) -> None:
    if asset.image and asset.image._committed:  # stored before the rollback
        asset.image.storage.delete(asset.image.name)


class _RollbackGuard:
    """Runs ``cleanup`` when the transaction that registered it rolls back, and never otherwise.

    Django has no rollback hook, but a callback given to ``on_commit`` is
    dropped unrun when its transaction (or savepoint) rolls back. This object
    is such a callback: run at commit, it disarms its finalizer; dropped
    unrun, it is collected (at once: nothing else refers to it) and the
    finalizer runs ``cleanup``.
    """

    def __init__(self, cleanup: Callable[[], None]) -> None:
        self._finalizer = weakref.finalize(self, cleanup)

    def __call__(self) -> None:
        self._finalizer.detach()


def on_rollback(cleanup: Callable[[], None]) -> None:
    """Run ``cleanup`` if the current transaction rolls back (nothing outside a transaction)."""
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(_RollbackGuard(cleanup))
