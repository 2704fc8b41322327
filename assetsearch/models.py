"""Assets and their embeddings.

An :class:`Asset` is an image with editorial metadata. Its vectors live in
:class:`AssetEmbedding`, one row per (asset, model): vectors of different
models are never compared, and a new model can be backfilled beside the old
one while search keeps using the old until the switch.

Vectors are stored as ``halfvec(512)``: 1,032 bytes, which stays in the heap
row (a ``vector(512)`` is 2,056 bytes, over the ~2 kB in-row limit, and is
moved to TOAST, slowing exact scans) and halves the HNSW index, at equal
recall (see the benchmark figures in the README).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import connection, models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from pgvector import HalfVector
from pgvector.django import CosineDistance, HalfVectorField, HnswIndex

from .images import InvalidImage, content_hash, inspect_image

VECTOR_DIMENSIONS = 512


def asset_upload_to(instance: Asset, filename: str) -> str:
    # A random folder keeps names unique without Django appending suffixes.
    return f"assetsearch/{timezone.now():%Y/%m}/{uuid.uuid4().hex[:12]}/{filename}"


class EmbeddingStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    READY = "ready", _("Ready")
    FAILED = "failed", _("Failed")


class AssetQuerySet(models.QuerySet["Asset"]):
    def pending(self) -> AssetQuerySet:
        return self.filter(embedding_status=EmbeddingStatus.PENDING)

    def failed(self) -> AssetQuerySet:
        return self.filter(embedding_status=EmbeddingStatus.FAILED)

    def ready(self) -> AssetQuerySet:
        return self.filter(embedding_status=EmbeddingStatus.READY)

    def missing_embedding(self, model_key: str) -> AssetQuerySet:
        """Assets with no vector from ``model_key`` (new, failed or stale)."""
        return self.exclude(embeddings__model_key=model_key)

    def stale_embedding(self, model_key: str) -> AssetQuerySet:
        """Assets whose file changed since their ``model_key`` vector was made."""
        return self.filter(embeddings__model_key=model_key).exclude(
            embeddings__content_hash=models.F("content_hash")
        )

    def update_search_documents(self) -> int:
        """Recompute the full-text documents (after bulk edits that bypass save())."""
        from .conf import app_settings

        config = app_settings.FULL_TEXT_CONFIG
        tags = models.Func(models.F("tags"), models.Value(" "), function="array_to_string", output_field=models.TextField())
        return self.update(
            search_document=SearchVector("title", weight="A", config=config)
            + SearchVector(tags, weight="B", config=config)
            + SearchVector("description", weight="C", config=config)
        )

    def set_status(self, status: str, error: str = "") -> int:
        return self.update(embedding_status=status, embedding_error=error, embedding_status_changed_at=timezone.now())


class Asset(models.Model):
    image = models.ImageField(_("image"), upload_to=asset_upload_to, max_length=255)
    title = models.CharField(_("title"), max_length=255, blank=True)
    description = models.TextField(_("description"), blank=True)
    tags = ArrayField(models.CharField(max_length=64), verbose_name=_("tags"), default=list, blank=True)

    content_hash = models.CharField(_("content hash"), max_length=64, blank=True, db_index=True, editable=False)
    width = models.PositiveIntegerField(_("width"), null=True, blank=True, editable=False)
    height = models.PositiveIntegerField(_("height"), null=True, blank=True, editable=False)
    mime_type = models.CharField(_("MIME type"), max_length=50, blank=True, editable=False)
    file_size = models.PositiveBigIntegerField(_("file size"), null=True, blank=True, editable=False)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uploaded by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assetsearch_assets",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    embedding_status = models.CharField(
        _("embedding status"),
        max_length=16,
        choices=EmbeddingStatus.choices,
        default=EmbeddingStatus.PENDING,
        db_index=True,
        editable=False,
    )
    embedding_status_changed_at = models.DateTimeField(_("status changed at"), default=timezone.now, editable=False)
    embedding_error = models.TextField(_("embedding error"), blank=True, editable=False)
    embedding_attempts = models.PositiveSmallIntegerField(_("embedding attempts"), default=0, editable=False)

    # Full-text document over title (A), tags (B) and description (C), for hybrid search.
    search_document = SearchVectorField(null=True, editable=False)

    objects = AssetQuerySet.as_manager()

    class Meta:
        verbose_name = _("asset")
        verbose_name_plural = _("assets")
        ordering = ["-created_at", "-id"]
        permissions = [("moderate_asset", "Can review moderation flags and see hidden assets")]
        indexes = [
            GinIndex(fields=["tags"], name="assetsearch_asset_tags_gin"),
            GinIndex(fields=["search_document"], name="assetsearch_asset_fts_gin"),
        ]

    def __str__(self) -> str:
        return self.title or self.image.name.rsplit("/", 1)[-1]

    @property
    def has_new_file(self) -> bool:
        """A file was assigned (create or replace) and is not in storage yet."""
        return bool(self.image) and not self.image._committed

    def read_new_file(self) -> bool:
        """Hash and inspect a newly assigned file; True if it needs embedding.

        Records content hash, size, dimensions and MIME type, and resets the
        embedding state unless the bytes are the ones already embedded. A file
        that is not an image is kept anyway: the worker records why it cannot
        be embedded. Does nothing (False) when no new file is assigned.
        """
        if not self.has_new_file:
            return False
        new_hash = content_hash(self.image.file)
        changed = new_hash != self.content_hash or self._state.adding
        self.content_hash = new_hash
        self.file_size = self.image.size
        try:
            info = inspect_image(self.image.file)
        except InvalidImage:
            self.width = self.height = None
            self.mime_type = ""
        else:
            self.width, self.height, self.mime_type = info.width, info.height, info.mime_type
        if changed:
            self.embedding_status = EmbeddingStatus.PENDING
            self.embedding_status_changed_at = timezone.now()
            self.embedding_error = ""
            self.embedding_attempts = 0
        return changed

    def save(self, *args: Any, **kwargs: Any) -> None:
        # A newly assigned file (create or replace) is read before it is
        # stored; the post_save handler enqueues embedding when file_changed.
        new_file = self.has_new_file
        self.file_changed = self.read_new_file()
        update_fields = kwargs.get("update_fields")
        if new_file and update_fields is not None:
            kwargs["update_fields"] = {*update_fields, *FILE_FIELDS}
        super().save(*args, **kwargs)
        update_fields = kwargs.get("update_fields")
        if update_fields is None or {"title", "description", "tags"} & set(update_fields):
            Asset.objects.filter(pk=self.pk).update_search_documents()


# What read_new_file() sets: saved with the file even when update_fields names only "image".
FILE_FIELDS = (
    "content_hash", "file_size", "width", "height", "mime_type",
    "embedding_status", "embedding_status_changed_at", "embedding_error", "embedding_attempts",
)


class EmbeddingQuerySet(models.QuerySet["AssetEmbedding"]):
    def for_model(self, model_key: str) -> EmbeddingQuerySet:
        return self.filter(model_key=model_key)

    def sample_vectors(self, model_key: str, size: int) -> np.ndarray:
        """About ``size`` of ``model_key``'s vectors, drawn at random, as an (n, d) array.

        ``TABLESAMPLE SYSTEM`` reads a random share of the table's pages, so
        a sample of a million rows costs what it costs on a thousand (ORDER
        BY random() would read and sort them all). Only for statistics: rows
        on one page come together.
        """
        table = self.model._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
            estimated_rows = cursor.fetchone()[0]
        # Twice what is needed, as other models' rows share the pages; all
        # of a small or never-analysed table (reltuples < 0).
        percent = 100.0 if estimated_rows <= 0 else min(100.0, 200.0 * size / estimated_rows)
        rows = self.raw(
            f'SELECT id, vector FROM "{table}" TABLESAMPLE SYSTEM (%s) WHERE model_key = %s LIMIT %s',
            [percent, model_key, size],
        )
        vectors = [np.asarray(row.vector, dtype=np.float32) for row in rows]
        return np.stack(vectors) if vectors else np.empty((0, VECTOR_DIMENSIONS), dtype=np.float32)

    def nearest(self, vector: Sequence[float], model_key: str, *, exact: bool = False) -> EmbeddingQuerySet:
        """This model's vectors ordered by cosine distance to ``vector``, annotated ``distance``.

        Slice it (``[:k]``) so the HNSW index can serve the ORDER BY ... LIMIT.
        ``exact`` orders by an expression the index cannot serve (``distance
        + 0``): an exact scan, which may still use the other indexes, e.g. to
        reach a few filtered rows.
        """
        query = HalfVector(np.asarray(vector, dtype=np.float32))
        distance = CosineDistance("vector", query)
        if exact:
            distance = distance + models.Value(0.0)
        return self.for_model(model_key).annotate(distance=distance).order_by("distance", "asset_id")


class AssetEmbedding(models.Model):
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="embeddings")
    model_key = models.CharField(max_length=100)
    vector = HalfVectorField(dimensions=VECTOR_DIMENSIONS)
    # The asset's content hash when this vector was made: a mismatch means stale.
    content_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = EmbeddingQuerySet.as_manager()

    class Meta:
        verbose_name = _("asset embedding")
        verbose_name_plural = _("asset embeddings")
        constraints = [models.UniqueConstraint(fields=["asset", "model_key"], name="assetsearch_one_vector_per_model")]
        indexes = [
            HnswIndex(
                name="assetsearch_embedding_hnsw",
                fields=["vector"],
                m=16,
                ef_construction=64,
                # Must match the distance used in queries, or the planner ignores the index.
                opclasses=["halfvec_cosine_ops"],
            )
        ]

    def __str__(self) -> str:
        return f"{self.asset_id} @ {self.model_key}"


# Moderation ---------------------------------------------------------------


class ConceptAction(models.TextChoices):
    FLAG = "flag", _("Flag for review")
    HIDE = "hide", _("Flag and hide from users without the moderation permission")


class ModerationConcept(models.Model):
    """Something content rules forbid, described in words (see assetsearch.moderation)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    prompts = ArrayField(models.CharField(max_length=200), verbose_name=_("prompts"), help_text=_("What the concept looks like, one phrase each."))
    counter_prompts = ArrayField(
        models.CharField(max_length=200), verbose_name=_("counter-prompts"), default=list, blank=True,
        help_text=_("What it is not (look-alikes); empty uses the neutral prompts."),
    )
    threshold = models.FloatField(_("threshold"), default=0.5, help_text=_("Flag assets whose concept probability is at least this (0-1)."))
    action = models.CharField(_("action"), max_length=8, choices=ConceptAction.choices, default=ConceptAction.FLAG)
    enabled = models.BooleanField(_("enabled"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Progress of the last catalogue re-score.
    rescore_total = models.PositiveIntegerField(default=0, editable=False)
    rescore_done = models.PositiveIntegerField(default=0, editable=False)
    rescored_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("moderation concept")
        verbose_name_plural = _("moderation concepts")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(threshold__gte=0, threshold__lte=1), name="assetsearch_concept_threshold_0_1"),
        ]

    def __str__(self) -> str:
        return self.name


class FlagStatus(models.TextChoices):
    OPEN = "open", _("Open")
    CONFIRMED = "confirmed", _("Confirmed")
    DISMISSED = "dismissed", _("Dismissed")


class FlagQuerySet(models.QuerySet["ModerationFlag"]):
    def hiding(self) -> FlagQuerySet:
        """Flags that hide their asset: not dismissed, of an enabled hide-concept."""
        return self.exclude(status=FlagStatus.DISMISSED).filter(concept__enabled=True, concept__action=ConceptAction.HIDE)

    def review(self, status: str, reviewer: Any) -> int:
        return self.update(status=status, reviewer=reviewer, reviewed_at=timezone.now())


class ModerationFlag(models.Model):
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="flags")
    concept = models.ForeignKey(ModerationConcept, on_delete=models.CASCADE, related_name="flags")
    score = models.FloatField(_("score"))
    status = models.CharField(_("status"), max_length=10, choices=FlagStatus.choices, default=FlagStatus.OPEN, db_index=True)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = FlagQuerySet.as_manager()

    class Meta:
        verbose_name = _("moderation flag")
        verbose_name_plural = _("moderation flags")
        ordering = ["-score", "pk"]
        constraints = [models.UniqueConstraint(fields=["asset", "concept"], name="assetsearch_one_flag_per_concept")]

    def __str__(self) -> str:
        return f"{self.concept} on {self.asset} ({self.score:.2f})"
