"""What a registered model declares: its image, text, filters, visibility and thumbnails.

A site makes the images it already has searchable by declaring an index for
its model and registering it, the way the admin registers a ``ModelAdmin``::

    # myapp/indexes.py
    from assetsearch.indexes import BaseImageIndex

    class PhotoIndex(BaseImageIndex):
        image_field = "image"
        title_field = "caption"
        text_fields = ["caption"]
        tags_field = "tags"
        date_field = "taken_at"
        filter_fields = ["category"]

    # myapp/apps.py, in ready():
    import assetsearch
    from .indexes import PhotoIndex
    assetsearch.register(Photo, PhotoIndex)

(or ``ASSETSEARCH["INDEXES"] = {"myapp.Photo": "myapp.indexes.PhotoIndex"}``).
From then on every saved photo with a new or changed image is embedded by
the worker, its vector lives in :class:`~assetsearch.models.IndexEntry` (the
host's table is never altered), and ``search(Query(..., models=[Photo]))``
returns photos. Every hook below has a default; override what differs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import IO, Any

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.search import SearchVector
from django.db import models
from django.urls import NoReverseMatch

from .conf import app_settings
from .querysets import hide_flagged, rank_keywords, tag_vocabulary
from .urlreverse import reverse_pk


class BaseImageIndex:
    """How assetsearch indexes one model. Subclass it, set the attributes, override hooks as needed.

    Models need integer primary keys (index entries refer to them by a bigint).
    """

    #: The model's image field (an ``ImageField``/``FileField``); override
    #: :meth:`get_source_key` and :meth:`open_image` for another image source.
    image_field: str | None = "image"
    #: A field (or attribute) naming the object in results; default ``str(obj)``.
    title_field: str | None = None
    #: Fields the hybrid keyword search matches (weights A, B, C, D in order).
    text_fields: Sequence[str] = ()
    #: Tags: an ``ArrayField`` of strings, or a many-to-many / django-taggit
    #: manager whose related model has a ``name``. Filter ``tags``.
    tags_field: str | None = None
    #: A date or datetime field; filters ``created_after`` and ``created_before``.
    date_field: str | None = None
    #: A foreign key to the user who uploaded the object; filter ``uploaded_by``.
    owner_field: str | None = None
    #: A field holding the MIME type; filter ``mime_types``.
    mime_type_field: str | None = None
    #: More fields usable as filters (foreign keys, choices, booleans, dates):
    #: ``Filters(fields={"category": 3})`` or ``{"category": [3, 4]}``.
    filter_fields: Sequence[str] = ()
    #: Whether assetsearch owns the object's files. False for host models:
    #: the app never deletes or replaces a host's file.
    owns_files: bool = False

    def __init__(self, model: type[models.Model]) -> None:
        self.model = model
        opts = model._meta
        #: ``app_label.model_name``: how the API, the commands and the tasks name the model.
        self.label = opts.label_lower

    def __repr__(self) -> str:
        return f"<{type(self).__name__} for {self.label}>"

    # Objects and images ------------------------------------------------------

    def get_queryset(self) -> models.QuerySet:
        """All indexable objects; the pipeline and search start from it."""
        return self.model._default_manager.all()

    def get_source_key(self, obj: models.Model) -> str:
        """A string that changes when the object's image changes (default: the file's storage name); "" means no image."""
        file = getattr(obj, self.image_field) if self.image_field else None
        return (file.name or "") if file else ""

    def get_content_hash(self, obj: models.Model) -> str:
        """The SHA-256 of the image's bytes when the model keeps it (""; the worker hashes the file)."""
        return ""

    def open_image(self, obj: models.Model) -> IO[bytes]:
        """The image, opened for reading in binary mode (the caller closes it)."""
        if not self.image_field:
            raise NotImplementedError(f"{type(self).__name__} sets no image_field: override open_image().")
        return getattr(obj, self.image_field).open("rb")

    def get_storage(self, obj: models.Model) -> Any:
        """The storage the app's own thumbnails of ``obj`` are kept in (the image field's)."""
        if self.image_field:
            return getattr(obj, self.image_field).storage
        from django.core.files.storage import default_storage

        return default_storage

    # Presentation ------------------------------------------------------------

    def get_results_queryset(self) -> models.QuerySet:
        """The queryset a page of results is loaded from (by pk): :meth:`get_queryset` with
        what showing a hit needs prefetched, so a page costs a fixed number of queries."""
        return self.get_queryset()

    def get_title(self, obj: models.Model) -> str:
        if self.title_field:
            return str(getattr(obj, self.title_field) or "") or str(obj)
        return str(obj)

    def thumbnail_url(self, obj: models.Model, size: int | None = None) -> str:
        """A URL of a small rendering of the image (default: the app's thumbnailer, with the API's permissions).

        Hosts with renditions of their own (Wagtail) return those instead.
        """
        from .thumbnails import get_object_thumbnail_url

        return get_object_thumbnail_url(self, obj, size)

    def admin_url(self, obj: models.Model) -> str:
        """The object's change page in the Django admin ("" when it is not registered there)."""
        opts = self.model._meta
        try:
            return reverse_pk(f"admin:{opts.app_label}_{opts.model_name}_change", obj.pk)
        except NoReverseMatch:
            return ""

    def serialize(self, obj: models.Model, context: Mapping[str, Any]) -> dict[str, Any] | None:
        """Extra data for the API's generic hit (``object``); None adds nothing. Override to expose fields."""
        return None

    # Visibility --------------------------------------------------------------

    def visible_to(self, user: Any | None, queryset: models.QuerySet) -> models.QuerySet:
        """The objects of ``queryset`` that ``user`` may see in results.

        Default: nothing without the model's ``view`` permission, and objects
        hidden by a moderation concept only for users with
        ``assetsearch.moderate_asset``. ``user`` None is trusted code (a
        command, a task): everything.
        """
        if user is None:
            return queryset
        opts = self.model._meta
        if not user.has_perm(f"{opts.app_label}.view_{opts.model_name}"):
            return queryset.none()
        return hide_flagged(queryset, user)

    # Filters and keywords ----------------------------------------------------

    def apply_filters(self, queryset: models.QuerySet, filters: Any) -> models.QuerySet:
        """``queryset`` with every given filter (an :class:`assetsearch.search.Filters`) applied;
        a filter on a field the index lacks matches nothing."""
        if filters.tags:
            if not self.tags_field:
                return queryset.none()
            queryset = self.filter_tags(queryset, filters.tags)
        for value, lookup in ((filters.created_after, "gte"), (filters.created_before, "lt")):
            if value:
                if not self.date_field:
                    return queryset.none()
                queryset = queryset.filter(**{f"{self.date_field}__{lookup}": value})
        if filters.mime_types:
            if not self.mime_type_field:
                return queryset.none()
            queryset = queryset.filter(**{f"{self.mime_type_field}__in": list(filters.mime_types)})
        if filters.uploaded_by is not None:
            if not self.owner_field:
                return queryset.none()
            queryset = queryset.filter(**{f"{self.owner_field}_id": filters.uploaded_by})
        for name, value in (filters.fields or {}).items():
            if name not in self.filter_fields:
                return queryset.none()
            if isinstance(value, (list, tuple, set)):
                queryset = queryset.filter(**{f"{name}__in": list(value)})
            else:
                queryset = queryset.filter(**{name: value})
        return queryset

    def filter_tags(self, queryset: models.QuerySet, tags: Sequence[str]) -> models.QuerySet:
        """Objects having all of ``tags``."""
        if isinstance(self.model._meta.get_field(self.tags_field), ArrayField):
            return queryset.filter(**{f"{self.tags_field}__contains": list(tags)})
        for tag in tags:
            queryset = queryset.filter(**{f"{self.tags_field}__name": tag})
        return queryset

    def tag_vocabulary(self, queryset: models.QuerySet | None = None) -> set[str]:
        """The distinct tags of the objects (tag suggestions, filter choices)."""
        if not self.tags_field:
            return set()
        return tag_vocabulary(self.get_queryset() if queryset is None else queryset, self.tags_field)

    def keyword_ranking(self, queryset: models.QuerySet, text: str, *, depth: int) -> list[tuple[int, float]]:
        """``[(pk, score)]`` of the objects matching ``text`` by Postgres full-text search, best first.

        Any significant query word counts, rarer words more
        (:func:`~assetsearch.querysets.rank_keywords`).

        Default: a document built from :attr:`text_fields` on the fly (no
        index: fine for thousands of rows; keep a ``SearchVectorField`` and
        override this for millions, as :class:`AssetIndex` does).
        """
        if not self.text_fields:
            return []
        config = app_settings.FULL_TEXT_CONFIG
        document = None
        for weight, name in zip("ABCD", self.text_fields):
            part = SearchVector(name, weight=weight, config=config)
            document = part if document is None else document + part
        return rank_keywords(queryset.annotate(_document=document), "_document", text, depth=depth)


class AssetIndex(BaseImageIndex):
    """The app's own :class:`~assetsearch.models.Asset`: registered like any host model."""

    image_field = "image"
    title_field = "title"
    text_fields = ("title", "tags", "description")
    tags_field = "tags"
    date_field = "created_at"
    owner_field = "uploaded_by"
    mime_type_field = "mime_type"
    owns_files = True

    def get_queryset(self) -> models.QuerySet:
        # No select_related("uploaded_by"): a hit shows the uploader's id only, which the row has.
        return self.model._default_manager.all()

    def get_results_queryset(self) -> models.QuerySet:
        return self.get_queryset().with_entry()  # each hit shows its embedding state

    def get_content_hash(self, obj: models.Model) -> str:
        return obj.content_hash  # hashed by Asset.save()

    def visible_to(self, user: Any | None, queryset: models.QuerySet) -> models.QuerySet:
        # The API and the admin check the asset permissions themselves
        # (anonymous search may be allowed): only moderation hides assets.
        return queryset if user is None else hide_flagged(queryset, user)

    def thumbnail_url(self, obj: models.Model, size: int | None = None) -> str:
        from .thumbnails import get_thumbnail_url

        return get_thumbnail_url(obj, size)

    def keyword_ranking(self, queryset: models.QuerySet, text: str, *, depth: int) -> list[tuple[int, float]]:
        # The document is kept in an indexed column (Asset.search_document).
        return rank_keywords(queryset, "search_document", text, depth=depth)
