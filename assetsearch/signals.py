"""Signal handlers: they note image changes, enqueue work and clean files up, after commit.

Every registered model (:mod:`assetsearch.registry`) gets the same two
handlers: a save with a new or changed image marks its index entries
pending (in the save's transaction) and enqueues the embedding after
commit; an unchanged image costs one query and sends nothing; a delete
removes its entries (and their moderation flags) and, after commit, the
app's own thumbnails of it, never the host's file; so does a save that
replaces or removes its image, for the old image's thumbnails. Fixture loads
(``raw=True``) are skipped.

The app's own assets also own their files (``AssetIndex.owns_files``):

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

from django.contrib.contenttypes.fields import GenericRelation
from django.db import models, transaction
from django.db.models.signals import post_delete, post_save

from . import pipeline
from .models import Asset, IndexEntry, ModerationConcept
from .registry import get_index
from .tasks import request_changes, request_rescore
from .thumbnails import get_thumbnail_names, host_thumbnail_source, thumbnail_source


def indexed_object_saved(sender: type[models.Model], instance: models.Model, raw: bool = False, **kwargs: Any) -> None:
    if raw:  # loaddata: the fixture's state is what it is
        return
    index = get_index(sender)
    superseded: dict[int, set[str]] = {}
    request_changes(pipeline.note_changes(index, [instance], superseded=superseded), sender)
    if superseded and not index.owns_files:
        # A replaced (or removed) image: the thumbnails of the old one go; the host's files stay.
        sources = [host_thumbnail_source(index, instance.pk, key) for key in superseded.get(instance.pk, ())]
        delete_thumbnails_on_commit(index.get_storage(instance), sources)


def indexed_object_deleted(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    index = get_index(sender)
    if not _cascades_to_entries(sender):
        pipeline.forget(index, [instance.pk])
    if index.owns_files:
        return  # the model's own handlers remove its files and thumbnails (asset_deleted)
    # Only the app's own thumbnails go; the host's file stays where it is.
    delete_thumbnails_on_commit(index.get_storage(instance), [thumbnail_source(instance, index)])


def delete_thumbnails_on_commit(storage: Any, sources: list[str]) -> None:
    """After commit, delete the app's thumbnails (every size) named after each of ``sources``."""
    thumbnails = [name for source in sources for name in get_thumbnail_names(source)]
    if thumbnails:
        transaction.on_commit(lambda: [storage.delete(name) for name in thumbnails])


def _cascades_to_entries(model: type[models.Model]) -> bool:
    """Whether the model's own delete takes its entries (a ``GenericRelation`` to them, as ``Asset`` has)."""
    return any(
        isinstance(f, GenericRelation) and f.related_model is IndexEntry for f in model._meta.private_fields
    )


def connect_index_signals(model: type[models.Model], registered: bool = True) -> None:
    """Connect (or, ``registered`` False, disconnect) the handlers of a registered model (a registry listener)."""
    uid = f"assetsearch.index.{model._meta.label_lower}"
    if registered:
        post_save.connect(indexed_object_saved, sender=model, dispatch_uid=f"{uid}.saved")
        post_delete.connect(indexed_object_deleted, sender=model, dispatch_uid=f"{uid}.deleted")
    else:
        post_save.disconnect(sender=model, dispatch_uid=f"{uid}.saved")
        post_delete.disconnect(sender=model, dispatch_uid=f"{uid}.deleted")


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


def sync_vector_indexes_after_migrate(sender: Any, using: str = "default", plan: Any = None, **kwargs: Any) -> None:
    """After ``migrate``: create the vector index of each indexed alias that lacks one."""
    from .index import sync_vector_indexes

    if using == "default" and IndexEntry._meta.db_table in transaction.get_connection(using).introspection.table_names():
        sync_vector_indexes()
