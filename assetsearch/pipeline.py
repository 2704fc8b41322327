"""The embedding pipeline: enqueue work, embed in batches, record the outcome.

Flow: an asset is saved with a new file -> after commit, its id is sent to
the broker (:func:`assetsearch.tasks.enqueue_embedding`) -> a worker runs
:func:`embed_assets` (decode, encode in one batch, upsert vectors, score
the moderation concepts) -> the asset is ``ready`` or ``failed`` with a
readable message.

Nothing is lost when a part misbehaves: a broker that is down leaves the
asset ``pending`` for :func:`assetsearch.tasks.sweep_pending`; a worker that
dies mid-task gets the message redelivered (late acks); a file that is not
an image, or a model that cannot be loaded, fails once, with the reason,
and is not retried; transient errors
(database, storage I/O) are retried with backoff by the task.

This module is the core of that flow and knows nothing of Celery:
:mod:`assetsearch.tasks` sends the work and calls it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from django.db import transaction
from django.db.models import F, Q

from .conf import app_settings
from .decoding import map_in_order
from .encoders import get_encoder
from .exceptions import ModelUnavailable
from .files import MISSING_FILE_MESSAGE
from .images import InvalidImage, decode_for_model
from .models import Asset, AssetEmbedding, EmbeddingStatus
from .moderation import score_new_assets

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


def store_assets(assets: Sequence[Asset]) -> list[int]:
    """Store new assets with one INSERT and one full-text UPDATE; returns the new ids.

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
    return ids


def embed_assets(asset_ids: Sequence[int], *, alias: str = "default", force: bool = False) -> EmbedResult:
    """Embed the given assets with one batched model call and store the vectors.

    Skips assets whose stored vector (same model) was made from the same
    bytes, unless ``force``. Only the default encoder's run changes the
    assets' embedding status.
    """
    encoder = get_encoder(alias)
    result = EmbedResult()
    assets = {asset.pk: asset for asset in Asset.objects.filter(pk__in=asset_ids)}
    result.missing = [pk for pk in asset_ids if pk not in assets]
    stored = dict(
        AssetEmbedding.objects.for_model(encoder.key).filter(asset__in=list(assets)).values_list("asset_id", "content_hash")
    )
    todo = []
    for asset in assets.values():
        if not force and asset.content_hash and stored.get(asset.pk) == asset.content_hash:
            result.unchanged.append(asset.pk)
        else:
            todo.append(asset)
    Asset.objects.filter(pk__in=[a.pk for a in todo]).update(embedding_attempts=F("embedding_attempts") + 1)
    if todo:
        try:
            encoder.warm_up(texts=False)
        except ModelUnavailable as exc:
            # Not transient: retrying fails the same way until the configuration changes
            # (then `assetsearch_reembed --failed`); failed assets are not swept.
            result.failed.update(dict.fromkeys([asset.pk for asset in todo], str(exc)))
            todo = []

    # Decode (and prepare) on every core; encode each batch as soon as it is decoded.
    side = encoder.image_size

    def read(asset: Asset) -> object:
        with asset.image.open("rb") as file:
            return encoder.prepare_image(decode_for_model(file, side))

    prepared, decoded, batches = [], [], []
    for asset, future in zip(todo, map_in_order(read, todo)):
        try:
            prepared.append(future.result())
        except InvalidImage as exc:
            result.failed[asset.pk] = str(exc)
        except FileNotFoundError:
            result.failed[asset.pk] = MISSING_FILE_MESSAGE
        else:
            decoded.append(asset)
            if len(prepared) == encoder.batch_size:
                batches.append(encoder.embed_prepared(prepared))
                prepared = []
    if prepared:
        batches.append(encoder.embed_prepared(prepared))

    if decoded:
        vectors = np.concatenate(batches)
        AssetEmbedding.objects.bulk_create(
            [
                AssetEmbedding(asset=asset, model_key=encoder.key, vector=vector, content_hash=asset.content_hash)
                for asset, vector in zip(decoded, vectors)
            ],
            update_conflicts=True,
            unique_fields=["asset", "model_key"],
            update_fields=["vector", "content_hash", "created_at"],
        )
        result.embedded = [asset.pk for asset in decoded]

    if alias == "default":
        # Flags and status in one transaction: no reader ever sees a ready
        # asset whose moderation flags are not there yet.
        # An unchanged vector of an asset that is not ready (its file came back
        # to bytes embedded before) may predate a concept: it is scored too.
        to_score = result.embedded + [pk for pk in result.unchanged if assets[pk].embedding_status != EmbeddingStatus.READY]
        with transaction.atomic():
            if to_score:
                score_new_assets(to_score)
            _record_outcome(assets, result)
    return result


def _unchanged_since_read(assets: dict[int, Asset], pks: Iterable[int]) -> Q:
    """Rows whose file was not replaced while we worked (a replaced file has its own task)."""
    condition = Q(pk__in=[])
    for pk in pks:
        condition |= Q(pk=pk, content_hash=assets[pk].content_hash)
    return condition


def _record_outcome(assets: dict[int, Asset], result: EmbedResult) -> None:
    done = result.embedded + result.unchanged
    if done:  # one UPDATE for the batch
        Asset.objects.filter(_unchanged_since_read(assets, done)).exclude(
            embedding_status=EmbeddingStatus.READY
        ).set_status(EmbeddingStatus.READY)
    for pk, message in result.failed.items():
        Asset.objects.filter(_unchanged_since_read(assets, [pk])).set_status(EmbeddingStatus.FAILED, message)


def give_up(asset_ids: Sequence[int], error: BaseException) -> None:
    """Mark assets failed after the last retry of a transient error."""
    message = f"Gave up after {app_settings.MAX_RETRIES} retries: {type(error).__name__}: {error}"
    Asset.objects.filter(pk__in=asset_ids).set_status(EmbeddingStatus.FAILED, message)
