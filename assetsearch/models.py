"""Assets, index entries and moderation.

An :class:`Asset` is the app's own image model: one registered model among
those a site indexes (:mod:`assetsearch.indexes`). Every indexed object, an
asset or a host's ``Photo``, has one :class:`IndexEntry` per encoder alias,
keyed by (content type, object id, encoder): its vector, the content hash it
was made from and its pipeline status. Vectors of different aliases are
never compared, and a new model can be backfilled beside the old one while
search keeps using the old until ``SEARCH_ENCODER`` is switched.

Vectors are stored as ``halfvec`` of any dimension: a 512-d one is 1,032
bytes, which stays in the heap row (a ``vector(512)`` is 2,056 bytes, over
the ~2 kB in-row limit, and is moved to TOAST, slowing exact scans), at
equal recall (see the benchmark figures in the README). Each alias gets its
own partial HNSW index over ``vector::halfvec(<its dimension>)``
(:mod:`assetsearch.index`).
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey, GenericRelation
from django.contrib.contenttypes.models import ContentType
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from pgvector.django import HalfVectorField

from .constants import (
    CONTENT_HASH_LENGTH,
    DEFAULT_CONCEPT_THRESHOLD,
    MAX_CONCEPT_NAME_LENGTH,
    MAX_ENCODER_ALIAS_LENGTH,
    MAX_FILE_NAME,
    MAX_FILE_PATH_LENGTH,
    MAX_MIME_TYPE_LENGTH,
    MAX_MODEL_KEY_LENGTH,
    MAX_PROMPT_LENGTH,
    MAX_TAG_LENGTH,
    MAX_TITLE_LENGTH,
    MODERATE_PERMISSION,
    ConceptAction,
    EmbeddingStatus,
    FlagStatus,
)
from .conf import app_settings
from .files import clean_client_name, new_original_name
from .images import InvalidImage, content_hash, inspect_image
from .querysets import AssetQuerySet, ConceptQuerySet, FlagQuerySet, IndexEntryQuerySet

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

    # Its vectors and pipeline state (one entry per encoder alias); deleted with it.
    index_entries = GenericRelation("IndexEntry", related_query_name="asset")

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
    #: Set by save(): a new file with other bytes than the stored ones.
    file_changed: bool = False
    #: An entry state given to the constructor (``Asset(embedding_status=...)``,
    #: fixtures and tests): written to the search alias's entry by save().
    _entry_state: dict[str, Any] | None = None

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
        """Hash and inspect a newly assigned file; True if its bytes differ from the stored ones.

        Records the client's file name, content hash, size, dimensions and
        MIME type (which names the stored file). A file that is not an image
        is kept anyway: the worker records why it cannot be embedded. Does
        nothing (False) when no new file is assigned. Whether the asset is
        embedded again is decided by its index entry
        (:func:`assetsearch.pipeline.note_changes`), from the content hash.
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
        return changed

    def save(self, *args: Any, **kwargs: Any) -> None:
        # A newly assigned file (create or replace) is read before it is
        # stored; the post_save handler marks the entry pending and enqueues.
        new_file = self.has_new_file
        self.file_changed = self.read_new_file()
        update_fields = kwargs.get("update_fields")
        if new_file and update_fields is not None:
            kwargs["update_fields"] = {*update_fields, *FILE_FIELDS}
        # A new file is stored during the save: one transaction with the row,
        # so a failed save takes the file back (assetsearch.signals).
        with transaction.atomic() if new_file or self._entry_state else nullcontext():
            super().save(*args, **kwargs)
            update_fields = kwargs.get("update_fields")
            if update_fields is None or {"title", "description", "tags"} & set(update_fields):
                Asset.objects.filter(pk=self.pk).update_search_documents()
            entries = IndexEntry.objects.for_objects(Asset, [self.pk]).search_alias()
            if self._entry_state:
                entries.set_state(**self._entry_state)
                self._entry_state = None
            # The state as of this save (pending after a new file), before a worker changes it.
            self.forget_entry()
            self.__dict__["index_entry"] = entries.first()

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        super().refresh_from_db(*args, **kwargs)
        self.forget_entry()

    def forget_entry(self) -> None:
        """Drop the entry read (or prefetched) for this instance: the next read sees the database."""
        self.__dict__.pop("index_entry", None)
        self.__dict__.pop("prefetched_entries", None)

    # The search alias's entry, read once per instance: the embedding state
    # the API and the admin show. Prefetch with AssetQuerySet.with_entry().
    @property
    def index_entry(self) -> IndexEntry | None:
        if "index_entry" not in self.__dict__:
            if "prefetched_entries" in self.__dict__:
                entry = self.__dict__.pop("prefetched_entries")[:1]
                self.__dict__["index_entry"] = entry[0] if entry else None
            else:
                self.__dict__["index_entry"] = (
                    IndexEntry.objects.for_objects(Asset, [self.pk]).search_alias().first() if self.pk else None
                )
        return self.__dict__["index_entry"]

    def _entry_value(self, name: str, default: Any) -> Any:
        entry = self.index_entry
        return getattr(entry, name) if entry is not None else default

    def _set_entry_value(self, name: str, value: Any) -> None:
        self._entry_state = {**(self._entry_state or {}), name: value}

    embedding_status = property(
        lambda self: self._entry_value("status", EmbeddingStatus.PENDING), lambda self, v: self._set_entry_value("status", v)
    )
    embedding_error = property(lambda self: self._entry_value("error", ""), lambda self, v: self._set_entry_value("error", v))
    embedding_attempts = property(lambda self: self._entry_value("attempts", 0), lambda self, v: self._set_entry_value("attempts", v))
    embedding_status_changed_at = property(
        lambda self: self._entry_value("status_changed_at", self.created_at),
        lambda self, v: self._set_entry_value("status_changed_at", v),
    )


# What read_new_file() sets: saved with the file even when update_fields names only "image".
FILE_FIELDS = ("original_filename", "content_hash", "file_size", "width", "height", "mime_type")


class IndexEntry(models.Model):
    """One object's vector for one encoder alias, and where it is in the pipeline.

    The object is any registered model's row (:mod:`assetsearch.indexes`),
    referred to by content type and integer id; the host's table is never
    altered. ``source_key`` is the file (name) the entry was last marked
    for, ``content_hash`` the bytes its vector was made from: a new name
    with the same bytes needs no new vector.
    """

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.PositiveBigIntegerField()
    content_object = GenericForeignKey("content_type", "object_id")
    encoder = models.CharField(_("encoder"), max_length=MAX_ENCODER_ALIAS_LENGTH)
    # The model (BaseEncoder.key) that made the vector: another key under the same alias is stale.
    model_key = models.CharField(_("model"), max_length=MAX_MODEL_KEY_LENGTH, blank=True)
    # Any dimension: each alias has a partial HNSW index at its own dimension.
    vector = HalfVectorField(null=True, blank=True)
    source_key = models.CharField(_("source"), max_length=MAX_FILE_PATH_LENGTH, blank=True)
    content_hash = models.CharField(_("content hash"), max_length=CONTENT_HASH_LENGTH, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=EmbeddingStatus.choices, default=EmbeddingStatus.PENDING)
    status_changed_at = models.DateTimeField(_("status changed at"), default=timezone.now)
    error = models.TextField(_("error"), blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    embedded_at = models.DateTimeField(_("embedded at"), null=True, blank=True)

    objects = IndexEntryQuerySet.as_manager()

    class Meta:
        verbose_name = _("index entry")
        verbose_name_plural = _("index entries")
        constraints = [
            models.UniqueConstraint(fields=["content_type", "object_id", "encoder"], name="assetsearch_one_entry_per_encoder")
        ]
        indexes = [
            # The sweep and the health check: pending entries by age.
            models.Index(fields=["status", "status_changed_at"], name="assetsearch_entry_status"),
            models.Index(fields=["encoder", "content_type", "status"], name="assetsearch_entry_model_status"),
        ]

    def __str__(self) -> str:
        return f"{self.content_type_id}:{self.object_id} @ {self.encoder}"


# Moderation ---------------------------------------------------------------


class ModerationConcept(models.Model):
    """Something content rules forbid, described in words (see assetsearch.moderation)."""

    name = models.CharField(_("name"), max_length=MAX_CONCEPT_NAME_LENGTH, unique=True)
    prompts = ArrayField(models.CharField(max_length=MAX_PROMPT_LENGTH), verbose_name=_("prompts"), help_text=_("What the concept looks like, one phrase each."))
    counter_prompts = ArrayField(
        models.CharField(max_length=MAX_PROMPT_LENGTH), verbose_name=_("counter-prompts"), default=list, blank=True,
        help_text=_("What it is not (look-alikes); empty uses the model's labels nearest the prompts, or the neutral prompts."),
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
    """A concept's score on one indexed object (its search-alias entry): any registered model can be flagged and hidden."""

    entry = models.ForeignKey(IndexEntry, on_delete=models.CASCADE, related_name="flags")
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
        constraints = [models.UniqueConstraint(fields=["entry", "concept"], name="assetsearch_one_flag_per_entry")]

    def __str__(self) -> str:
        return f"{self.concept} on {self.entry} ({self.score:.2f})"

    @property
    def content_object(self) -> models.Model | None:
        """The flagged object (an asset, a host's photo, ...)."""
        return self.entry.content_object

    @property
    def asset(self) -> Asset | None:
        """The flagged asset, when the flag is on an asset."""
        obj = self.content_object
        return obj if isinstance(obj, Asset) else None

    @asset.setter
    def asset(self, asset: Asset) -> None:
        # ModerationFlag(asset=...) of earlier releases: the flag goes on the asset's search-alias entry.
        entries = IndexEntry.objects.for_objects(Asset, [asset.pk]).search_alias()
        self.entry = entries.first() or IndexEntry.objects.create(
            content_type=ContentType.objects.get_for_model(Asset), object_id=asset.pk, encoder=app_settings.SEARCH_ENCODER,
            source_key=asset.image.name or "",
        )
