"""The embedding pipeline: note changes, embed in batches, record the outcome.

Flow, the same for every registered model (:mod:`assetsearch.indexes`): an
object is saved with a new or changed image -> its index entries are marked
``pending`` in the same transaction (:func:`note_changes`) -> after commit,
its id is sent to the broker (:func:`assetsearch.tasks.request_embedding`)
-> a worker runs :func:`embed_objects` (read, decode, encode in one batch,
store the vectors, score the moderation concepts) -> each entry is
``ready`` or ``failed`` with a readable message.

Nothing is lost when a part misbehaves: a broker that is down leaves the
entry ``pending`` for :func:`assetsearch.tasks.sweep_pending`; a worker that
dies mid-task gets the message redelivered (late acks); a file that is not
an image, or a model that cannot be loaded, fails once, with the reason,
and is not retried; transient errors
(database, storage I/O) are retried with backoff by the task.

This module is the core of that flow and knows nothing of Celery:
:mod:`assetsearch.tasks` sends the work and calls it.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import F

from .conf import app_settings
from .constants import EmbeddingStatus
from .decoding import map_in_order
from .encoders import get_encoder
from .exceptions import ModelUnavailable
from .files import MISSING_FILE_MESSAGE
from .images import InvalidImage, decode_for_model
from .models import Asset, IndexEntry, ModerationFlag
from .moderation import score_new_entries
from .registry import get_index

if TYPE_CHECKING:
    from .indexes import BaseImageIndex

T = TypeVar("T")


@dataclass
class EmbedResult:
    embedded: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    missing: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "embedded": self.embedded,
            "unchanged": self.unchanged,
            "failed": {str(k): v for k, v in self.failed.items()},
            "missing": self.missing,
        }


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def content_type_of(index: BaseImageIndex) -> ContentType:
    return ContentType.objects.get_for_model(index.model, for_concrete_model=False)


def note_changes(
    index: BaseImageIndex, objects: Sequence[models.Model], *, superseded: dict[int, set[str]] | None = None,
) -> dict[str, list[int]]:
    """Mark the entries of objects with a new or changed image ``pending``; returns ``{alias: ids}`` to embed.

    For each alias of ``INDEXED_ENCODERS``: an object without an entry, or
    whose image changed (another file name, unless the index knows the bytes
    are the ones embedded; other bytes by the index's content hash), is
    marked; an unchanged image costs nothing more than this one query. An
    object without an image loses its entries. ``superseded``, when given,
    receives ``{pk: source keys}`` of the objects whose source key changed
    (or went): what their app thumbnails were named after.
    """
    content_type = content_type_of(index)
    aliases = app_settings.get_indexed_encoders()
    sources = {obj.pk: index.get_source_key(obj) for obj in objects}
    existing = {
        (e.object_id, e.encoder): e
        for e in IndexEntry.objects.for_objects(index.model, list(sources)).filter(encoder__in=aliases)
        .only("object_id", "encoder", "source_key", "content_hash")
    }
    if superseded is not None:
        for (pk, _), entry in existing.items():
            if entry.source_key and entry.source_key != sources[pk]:
                superseded.setdefault(pk, set()).add(entry.source_key)
    no_image = [pk for pk, key in sources.items() if not key]
    if no_image:
        forget(index, no_image)
    changed: dict[str, list[int]] = {}
    for alias in aliases:
        marked: dict[int, str] = {}
        for obj in objects:
            key = sources[obj.pk]
            if not key:
                continue
            entry = existing.get((obj.pk, alias))
            known = index.get_content_hash(obj)
            same_bytes = bool(known) and known == entry.content_hash if entry else False
            if entry is None or (entry.source_key != key and not same_bytes) or (known and entry.content_hash and not same_bytes):
                marked[obj.pk] = key
            elif entry.source_key != key:  # a new file name, the bytes already embedded
                IndexEntry.objects.filter(pk=entry.pk).update(source_key=key)
        IndexEntry.objects.mark_pending(content_type.pk, alias, marked)
        if marked:
            changed[alias] = list(marked)
    return changed


def forget(index: BaseImageIndex, object_ids: Sequence[int]) -> None:
    """Delete the objects' entries (every alias) and their moderation flags."""
    entries = IndexEntry.objects.for_objects(index.model, object_ids)
    ModerationFlag.objects.filter(entry__in=entries).delete()
    entries.delete()


def store_assets(assets: Sequence[Asset]) -> list[int]:
    """Store new assets with one INSERT, one full-text UPDATE and one entry INSERT; returns the new ids.

    The bulk twin of ``asset.save()`` for imports: each file is hashed,
    inspected and stored as ``save()`` does (:meth:`Asset.read_new_file`).
    No ``post_save`` signals are sent: :func:`assetsearch.tasks.create_assets`
    also requests the embedding.
    """
    for asset in assets:
        asset.read_new_file()
    with transaction.atomic():
        Asset.objects.bulk_create(assets)
        ids = [asset.pk for asset in assets]
        Asset.objects.filter(pk__in=ids).update_search_documents()
        note_changes(get_index(Asset), assets)
    return ids


@dataclass
class _Read:
    """One object the worker reads: its entry, and what it knows of the bytes before reading them."""

    pk: int
    obj: models.Model
    entry: IndexEntry
    current: bool  # the entry holds a vector of this alias's model
    known: str  # the content hash the index knows without reading ("" for host models)
    content_hash: str = ""


_UNCHANGED = object()


def embed_objects(label: str, object_ids: Sequence[int], *, alias: str | None = None, force: bool = False) -> EmbedResult:
    """Embed the given objects of model ``label`` with one batched model call and store the vectors.

    Skips objects whose vector (same alias and model) was made from the same
    bytes, unless ``force``. Each entry of ``alias`` ends ``ready`` or
    ``failed``, unless its image was replaced meanwhile (its own task follows).
    """
    index = get_index(label)
    alias = alias or app_settings.SEARCH_ENCODER
    encoder = get_encoder(alias)
    result = EmbedResult()
    objects = index.get_queryset().in_bulk(list(object_ids))
    result.missing = [pk for pk in object_ids if pk not in objects]
    entries = {e.object_id: e for e in IndexEntry.objects.for_objects(index.model, list(objects)).for_encoder(alias)}
    lacking = {pk: key for pk, obj in objects.items() if pk not in entries and (key := index.get_source_key(obj))}
    if lacking:  # a backfill of objects indexed before this alias (or this registration)
        IndexEntry.objects.mark_pending(content_type_of(index).pk, alias, lacking)
        entries = {e.object_id: e for e in IndexEntry.objects.for_objects(index.model, list(objects)).for_encoder(alias)}
    to_read = []
    for pk, obj in objects.items():
        entry = entries.get(pk)
        if entry is None:  # no image
            continue
        current = entry.vector is not None and entry.model_key == encoder.key and not force
        known = index.get_content_hash(obj)
        if current and known and known == entry.content_hash:
            result.unchanged.append(pk)
        else:
            to_read.append(_Read(pk, obj, entry, current, known))
    IndexEntry.objects.filter(pk__in=[read.entry.pk for read in to_read]).update(attempts=F("attempts") + 1)
    if to_read:
        try:
            encoder.warm_up(texts=False)
        except ModelUnavailable as exc:
            # Not transient: retrying fails the same way until the configuration changes
            # (then `assetsearch_reembed --failed`); failed entries are not swept.
            result.failed.update(dict.fromkeys([read.pk for read in to_read], str(exc)))
            to_read = []

    # Read, hash, decode and prepare on every core; encode each batch as soon as it is decoded.
    side = encoder.image_size

    def read_image(read: _Read) -> object:
        with index.open_image(read.obj) as file:
            if read.known:
                read.content_hash = read.known
                return encoder.prepare_image(decode_for_model(file, side))
            data = file.read()
        read.content_hash = hashlib.sha256(data).hexdigest()
        if read.current and read.content_hash == read.entry.content_hash:
            return _UNCHANGED  # the bytes its vector was made from: nothing to encode
        return encoder.prepare_image(decode_for_model(io.BytesIO(data), side))

    prepared: list[object] = []
    decoded: list[_Read] = []
    batches: list[np.ndarray] = []
    for read, future in zip(to_read, map_in_order(read_image, to_read)):
        try:
            image = future.result()
        except InvalidImage as exc:
            result.failed[read.pk] = str(exc)
        except FileNotFoundError:
            result.failed[read.pk] = MISSING_FILE_MESSAGE
        else:
            if image is _UNCHANGED:
                result.unchanged.append(read.pk)
                continue
            prepared.append(image)
            decoded.append(read)
            if len(prepared) == encoder.batch_size:
                batches.append(encoder.embed_prepared(prepared))
                prepared = []
    if prepared:
        batches.append(encoder.embed_prepared(prepared))

    # Vectors, flags and status in one transaction: no reader ever sees a
    # ready entry whose moderation flags are not there yet. An unchanged
    # vector of an entry that is not ready (its file came back to bytes
    # embedded before) may predate a concept: it is scored too.
    with transaction.atomic():
        if decoded:
            vectors = np.concatenate(batches)
            IndexEntry.objects.store_vectors(
                [(read.entry.pk, read.entry.source_key, vector, read.content_hash) for read, vector in zip(decoded, vectors)],
                encoder.key,
            )
            result.embedded = [read.pk for read in decoded]
        if alias == app_settings.SEARCH_ENCODER:
            to_score = result.embedded + [pk for pk in result.unchanged if entries[pk].status != EmbeddingStatus.READY]
            if to_score:
                score_new_entries([entries[pk].pk for pk in to_score])
        _record_outcome(entries, result)
    return result


def _unchanged_since_read(entries: dict[int, IndexEntry], pks: Iterable[int]) -> models.Q:
    """Entries not marked for another file while we worked (a replaced image has its own task)."""
    condition = models.Q(pk__in=[])
    for pk in pks:
        condition |= models.Q(pk=entries[pk].pk, source_key=entries[pk].source_key)
    return condition


def _record_outcome(entries: dict[int, IndexEntry], result: EmbedResult) -> None:
    if result.unchanged:  # one UPDATE for the batch
        IndexEntry.objects.filter(_unchanged_since_read(entries, result.unchanged)).exclude(
            status=EmbeddingStatus.READY
        ).set_status(EmbeddingStatus.READY)
    for pk, message in result.failed.items():
        IndexEntry.objects.filter(_unchanged_since_read(entries, [pk])).set_status(EmbeddingStatus.FAILED, message)


def embed_assets(asset_ids: Sequence[int], *, alias: str | None = None, force: bool = False) -> EmbedResult:
    """:func:`embed_objects` for assets (the name of earlier releases)."""
    return embed_objects(get_index(Asset).label, asset_ids, alias=alias, force=force)


def give_up(label: str, object_ids: Sequence[int], alias: str | None, error: BaseException) -> None:
    """Mark entries failed after the last retry of a transient error."""
    message = f"Gave up after {app_settings.MAX_RETRIES} retries: {type(error).__name__}: {error}"
    entries = IndexEntry.objects.for_objects(get_index(label).model, object_ids)
    entries.for_encoder(alias or app_settings.SEARCH_ENCODER).set_status(EmbeddingStatus.FAILED, message)
