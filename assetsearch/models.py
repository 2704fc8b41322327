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

from contextlib import nullcontext
from typing import Any

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from pgvector.django import HalfVectorField, HnswIndex

from .conf import DEFAULTS
from .constants import (
    CONTENT_HASH_LENGTH,
    DEFAULT_CONCEPT_THRESHOLD,
    MAX_CONCEPT_NAME_LENGTH,
    MAX_FILE_NAME,
    MAX_FILE_PATH_LENGTH,
    MAX_MIME_TYPE_LENGTH,
    MAX_MODEL_KEY_LENGTH,
    MAX_PROMPT_LENGTH,
    MAX_TAG_LENGTH,
    MAX_TITLE_LENGTH,
    MODERATE_PERMISSION,
    VECTOR_DIMENSIONS,
    ConceptAction,
    EmbeddingStatus,
    FlagStatus,
)
from .files import clean_client_name, new_original_name
from .images import InvalidImage, content_hash, inspect_image
from .querysets import AssetQuerySet, ConceptQuerySet, EmbeddingQuerySet, FlagQuerySet

# EmbeddingStatus, ConceptAction and FlagStatus stay importable from here (public since the first release).


def asset_upload_to(instance: Asset, filename: str) -> str:
    # The server names the file: the client's name is metadata (original_filename), never a path.
    return new_original_name(instance.mime_type)


class Asset(models.Model):
    image = models.ImageField(_("image"), upload_to=asset_upload_to, max_length=MAX_FILE_PATH_LENGTH)
    title = models.CharField(_("title"), max_length=MAX_TITLE_LENGTH, blank=True)
    description = models.TextField(_("description"), blank=True)
    tags = ArrayField(models.CharField(max_length=MAX_TAG_LENGTH), verbose_name=_("tags"), default=list, blank=True)
    original_filename = models.CharField(
        _("original file name"), max_length=MAX_FILE_NAME, blank=True, editable=False,
        help_text=_("The uploader's name for the file, for display; the stored file is named by the server."),
    )

    content_hash = models.CharField(_("content hash"), max_length=CONTENT_HASH_LENGTH, blank=True, db_index=True, editable=False)
    width = models.PositiveIntegerField(_("width"), null=True, blank=True, editable=False)
    height = models.PositiveIntegerField(_("height"), null=True, blank=True, editable=False)
    mime_type = models.CharField(_("MIME type"), max_length=MAX_MIME_TYPE_LENGTH, blank=True, editable=False)
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
        permissions = [(MODERATE_PERMISSION.split(".", 1)[1], "Can review moderation flags and see hidden assets")]
        indexes = [
            GinIndex(fields=["tags"], name="assetsearch_asset_tags_gin"),
            GinIndex(fields=["search_document"], name="assetsearch_asset_fts_gin"),
        ]

    #: The stored file's name as last read from or written to the database:
    #: what a replacement supersedes (see assetsearch.signals).
    stored_file: str | None = None
    #: Set by save(): the bytes changed, so the asset needs embedding.
    file_changed: bool = False

    def __str__(self) -> str:
        return self.title or self.original_filename or self.image.name.rsplit("/", 1)[-1]

    @classmethod
    def from_db(cls, db: str | None, field_names: Any, values: Any) -> Asset:
        asset = super().from_db(db, field_names, values)
        if "image" in asset.__dict__:
            asset.stored_file = asset.image.name
        return asset

    @property
    def has_new_file(self) -> bool:
        """A file was assigned (create or replace) and is not in storage yet."""
        return bool(self.image) and not self.image._committed

    def read_new_file(self) -> bool:
        """Hash and inspect a newly assigned file; True if it needs embedding.

        Records the client's file name, content hash, size, dimensions and
        MIME type (which names the stored file), and resets the
        embedding state unless the bytes are the ones already embedded. A file
        that is not an image is kept anyway: the worker records why it cannot
        be embedded. Does nothing (False) when no new file is assigned.
        """
        if not self.has_new_file:
            return False
        self.original_filename = clean_client_name(self.image.name or "")
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
        # A new file is stored during the save: one transaction with the row,
        # so a failed save takes the file back (assetsearch.signals).
        with transaction.atomic() if new_file else nullcontext():
            super().save(*args, **kwargs)
            update_fields = kwargs.get("update_fields")
            if update_fields is None or {"title", "description", "tags"} & set(update_fields):
                Asset.objects.filter(pk=self.pk).update_search_documents()


# What read_new_file() sets: saved with the file even when update_fields names only "image".
FILE_FIELDS = (
    "original_filename", "content_hash", "file_size", "width", "height", "mime_type",
    "embedding_status", "embedding_status_changed_at", "embedding_error", "embedding_attempts",
)


class AssetEmbedding(models.Model):
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="embeddings")
    model_key = models.CharField(max_length=MAX_MODEL_KEY_LENGTH)
    vector = HalfVectorField(dimensions=VECTOR_DIMENSIONS)
    # The asset's content hash when this vector was made: a mismatch means stale.
    content_hash = models.CharField(max_length=CONTENT_HASH_LENGTH)
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
                # Built with the settings' defaults; assetsearch_rebuild_index
                # rebuilds it when HNSW_M / HNSW_EF_CONSTRUCTION differ.
                m=DEFAULTS["HNSW_M"],
                ef_construction=DEFAULTS["HNSW_EF_CONSTRUCTION"],
                # Must match the distance used in queries, or the planner ignores the index.
                opclasses=["halfvec_cosine_ops"],
            )
        ]

    def __str__(self) -> str:
        return f"{self.asset_id} @ {self.model_key}"


# Moderation ---------------------------------------------------------------


class ModerationConcept(models.Model):
    """Something content rules forbid, described in words (see assetsearch.moderation)."""

    name = models.CharField(_("name"), max_length=MAX_CONCEPT_NAME_LENGTH, unique=True)
    prompts = ArrayField(models.CharField(max_length=MAX_PROMPT_LENGTH), verbose_name=_("prompts"), help_text=_("What the concept looks like, one phrase each."))
    counter_prompts = ArrayField(
        models.CharField(max_length=MAX_PROMPT_LENGTH), verbose_name=_("counter-prompts"), default=list, blank=True,
        help_text=_("What it is not (look-alikes); empty uses the neutral prompts."),
    )
    threshold = models.FloatField(_("threshold"), default=DEFAULT_CONCEPT_THRESHOLD, help_text=_("Flag assets whose concept probability is at least this (0-1)."))
    action = models.CharField(_("action"), max_length=8, choices=ConceptAction.choices, default=ConceptAction.FLAG)
    enabled = models.BooleanField(_("enabled"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Progress of the last catalogue re-score.
    rescore_total = models.PositiveIntegerField(default=0, editable=False)
    rescore_done = models.PositiveIntegerField(default=0, editable=False)
    rescored_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ConceptQuerySet.as_manager()

    class Meta:
        verbose_name = _("moderation concept")
        verbose_name_plural = _("moderation concepts")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(threshold__gte=0, threshold__lte=1), name="assetsearch_concept_threshold_0_1"),
        ]

    def __str__(self) -> str:
        return self.name


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
