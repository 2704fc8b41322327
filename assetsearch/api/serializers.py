"""Serializers: every input is validated here, before the core sees it or a file is saved.

JSON bodies are typed strictly: a weight sent as ``"0.5"`` or a tag list sent
as ``"red"`` is an error, not a guess. Form data (multipart uploads, query
strings) carries only strings, so there numbers and booleans are parsed
from their text as usual.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from PIL import Image
from rest_framework import serializers
from rest_framework.utils import html
from rest_framework.validators import UniqueValidator

from ..conf import app_settings
from ..images import MIME_TYPES, InvalidImage, decode_for_model
from ..models import Asset, ConceptAction, EmbeddingStatus, FlagStatus, ModerationConcept, ModerationFlag
from ..search import MAX_NEGATIVE_TERMS, MAX_QUERY_CHARS, Filters, Query
from ..thumbnails import check_thumbnail_size, get_thumbnail_url
from .exceptions import PayloadTooLarge

MAX_TAGS = 100
MAX_TAG_LENGTH = 64  # Asset.tags' column width
MAX_DESCRIPTION_LENGTH = 10_000
MAX_OFFSET = 10_000  # as search.py allows
MAX_ID = 2**63 - 1
# Longest file name kept from an upload (the storage path adds ~35 characters; the column holds 255).
MAX_FILE_NAME = 100


# Strict fields ------------------------------------------------------------


def is_form_input(field: serializers.Field) -> bool:
    """True when the whole input is form data or a query string (all values are text)."""
    return html.is_html_input(getattr(field.root, "initial_data", None))


class StrictCharField(serializers.CharField):
    default_error_messages = {"invalid": "Expected a string, got {type}."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid", type=type(data).__name__)
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"wrong_type": "Expected an integer, got {type}."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or (isinstance(data, str) and not is_form_input(self)) or isinstance(data, float):
            self.fail("wrong_type", type=type(data).__name__)
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    default_error_messages = {"wrong_type": "Expected a number, got {type}."}

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or (isinstance(data, str) and not is_form_input(self)):
            self.fail("wrong_type", type=type(data).__name__)
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"wrong_type": "Expected true or false, got {type}."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool) and not is_form_input(self):
            self.fail("wrong_type", type=type(data).__name__)
        return super().to_internal_value(data)


@extend_schema_field({"type": "number", "format": "double", "nullable": True})
class FiniteFloatField(serializers.FloatField):
    """Output only: NaN and infinities become null (JSON has no such numbers)."""

    def to_representation(self, value: Any) -> float | None:
        value = float(value)
        return value if value == value and abs(value) != float("inf") else None


class TagListField(serializers.ListField):
    """A list of tags: stripped, non-empty, at most 64 characters, duplicates dropped."""

    child = StrictCharField(max_length=MAX_TAG_LENGTH)

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", MAX_TAGS)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> list[str]:
        return list(dict.fromkeys(super().to_internal_value(data)))


class RejectUnknownFieldsMixin:
    """Name fields the serializer does not take, rather than ignoring them silently."""

    unknown_field_hints: dict[str, str] = {}

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            known = set(self.fields)  # type: ignore[attr-defined]
            # Form data names nested fields and list items "filters.tags", "tags[0]".
            form = html.is_html_input(data)
            names = {key: re.split(r"[.\[]", key, maxsplit=1)[0] if form else key for key in map(str, data)}
            # The browsable API's forms add the CSRF token and "_content"-style overrides.
            ignored = lambda name: name == "csrfmiddlewaretoken" or name.startswith("_")  # noqa: E731
            unknown = [key for key, name in names.items() if name not in known and not ignored(name)]
            if unknown:
                allowed = ", ".join(name for name, f in self.fields.items() if not f.read_only)  # type: ignore[attr-defined]
                raise serializers.ValidationError(
                    {key: [self.unknown_field_hints.get(key, f"Unknown field; this endpoint takes: {allowed}.")] for key in unknown},
                    code="unknown_field",
                )
        return super().to_internal_value(data)  # type: ignore[misc]


# Uploaded images ----------------------------------------------------------


class ImageUploadField(serializers.FileField):
    """An uploaded image, checked in full before anything is saved.

    Over ``MAX_UPLOAD_BYTES``: 413. Not an image, an unsupported format, over
    ``MAX_IMAGE_PIXELS`` (checked from the header, before decoding) or
    truncated: 400 ``invalid_image``. With ``decode=True`` the value is the
    decoded image (what search embeds), else the file.
    """

    def __init__(self, *, decode: bool = False, **kwargs: Any) -> None:
        self.decode = decode
        kwargs.setdefault("allow_empty_file", False)
        kwargs.setdefault("use_url", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> UploadedFile | Image.Image:
        file = super().to_internal_value(data)
        limit = app_settings.MAX_UPLOAD_BYTES
        if file.size > limit:
            raise PayloadTooLarge(f"The file is {file.size:,} bytes; the limit is {limit:,} bytes.")
        try:
            image = decode_for_model(file)
        except InvalidImage as exc:
            raise serializers.ValidationError(str(exc), code="invalid_image") from exc
        finally:
            file.seek(0)
        if self.decode:
            return image
        stem, ext = os.path.splitext(os.path.basename(file.name))
        file.name = (stem[:MAX_FILE_NAME] or "image") + ext[:10]
        return file


# Assets -------------------------------------------------------------------


class EmbeddingStateSerializer(serializers.Serializer):
    """Where the asset is in the embedding pipeline; poll until ``status`` is not ``pending``."""

    status = serializers.ChoiceField(source="embedding_status", choices=EmbeddingStatus.choices, read_only=True)
    error = serializers.CharField(source="embedding_error", read_only=True, help_text="Why embedding failed, if it did.")
    attempts = serializers.IntegerField(source="embedding_attempts", read_only=True)
    changed_at = serializers.DateTimeField(source="embedding_status_changed_at", read_only=True)


class AssetSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    """An asset; its editorial metadata (title, description, tags) is writable."""

    title = StrictCharField(max_length=255, allow_blank=True, required=False)
    description = StrictCharField(max_length=MAX_DESCRIPTION_LENGTH, allow_blank=True, required=False, trim_whitespace=False)
    tags = TagListField(required=False)
    image_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    embedding = EmbeddingStateSerializer(source="*", read_only=True)

    unknown_field_hints = {"image": "The file cannot be changed here; replace it with PUT /api/assets/<id>/file/."}

    class Meta:
        model = Asset
        fields = [
            "id", "title", "description", "tags", "image_url", "thumbnail_url",
            "width", "height", "mime_type", "file_size", "content_hash",
            "uploaded_by", "created_at", "updated_at", "embedding",
        ]
        read_only_fields = [
            "id", "width", "height", "mime_type", "file_size", "content_hash", "uploaded_by", "created_at", "updated_at",
        ]

    def _absolute(self, url: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url

    @extend_schema_field(OpenApiTypes.URI)
    def get_image_url(self, asset: Asset) -> str:
        return self._absolute(asset.image.url)

    @extend_schema_field(OpenApiTypes.URI)
    def get_thumbnail_url(self, asset: Asset) -> str:
        return self._absolute(get_thumbnail_url(asset))


class AssetUploadSerializer(AssetSerializer):
    """A new asset: the image file (multipart) and optional metadata."""

    image = ImageUploadField(write_only=True, help_text="The image file (JPEG, PNG, GIF, WebP, BMP or TIFF).")

    unknown_field_hints: dict[str, str] = {}

    class Meta(AssetSerializer.Meta):
        fields = [*AssetSerializer.Meta.fields, "image"]


class AssetFileSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    """A replacement file for an asset; the asset is embedded again."""

    image = ImageUploadField(write_only=True, help_text="The new image file.")

    class Meta:
        model = Asset
        fields = ["image"]

    def update(self, instance: Asset, validated_data: dict[str, Any]) -> Asset:
        instance.image = validated_data["image"]
        # save() sees a new file: new hash, status pending, embedding queued after commit.
        instance.save()
        return instance

    def to_representation(self, instance: Asset) -> dict[str, Any]:
        return AssetSerializer(instance, context=self.context).data


# Filters and pages --------------------------------------------------------


class AssetFilterSerializer(serializers.Serializer):
    """Metadata filters, the same for the asset list and every search; all given must hold.

    In a query string, repeat a list parameter (``?tags=red&tags=circle``).
    """

    tags = TagListField(required=False, help_text="The asset has all of these tags.")
    created_after = serializers.DateTimeField(required=False, help_text="Created at or after (ISO 8601).")
    created_before = serializers.DateTimeField(required=False, help_text="Created before (ISO 8601).")
    mime_type = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(MIME_TYPES.values())), required=False, max_length=len(MIME_TYPES),
        help_text="The asset's MIME type is one of these.",
    )
    uploaded_by = StrictIntegerField(required=False, min_value=1, max_value=MAX_ID, help_text="Id of the uploading user.")
    status = serializers.ChoiceField(choices=EmbeddingStatus.choices, required=False, help_text="Embedding status.")

    def get_filters(self) -> Filters:
        return filters_from(self.validated_data)


def filters_from(data: Mapping[str, Any]) -> Filters:
    """The core's :class:`Filters` from validated :class:`AssetFilterSerializer` data."""
    return Filters(
        tags=data.get("tags", ()),
        created_after=data.get("created_after"),
        created_before=data.get("created_before"),
        mime_types=data.get("mime_type", ()),
        uploaded_by=data.get("uploaded_by"),
        status=data.get("status"),
    )


class PageSerializer(serializers.Serializer):
    """``limit`` (1 to ``MAX_PAGE_SIZE``, default ``PAGE_SIZE``) and ``offset`` (0 to 10,000)."""

    limit = StrictIntegerField(required=False, help_text="Results per page (1 to MAX_PAGE_SIZE, default PAGE_SIZE: 20 and 100 unless configured).")
    offset = StrictIntegerField(required=False, default=0, help_text="Results to skip (0 to 10000).")

    def validate_limit(self, value: int) -> int:
        maximum = app_settings.MAX_PAGE_SIZE
        if not 1 <= value <= maximum:
            raise serializers.ValidationError(f"limit must be between 1 and {maximum}, not {value}.", code="invalid_page")
        return value

    def validate_offset(self, value: int) -> int:
        if not 0 <= value <= MAX_OFFSET:
            raise serializers.ValidationError(f"offset must be between 0 and {MAX_OFFSET}, not {value}.", code="invalid_page")
        return value

    def get_limit(self) -> int:
        return self.validated_data.get("limit") or app_settings.PAGE_SIZE

    def get_offset(self) -> int:
        return self.validated_data.get("offset", 0)


# Search input -------------------------------------------------------------


def search_visibility(visible: QuerySet[Asset] | None) -> QuerySet[Asset] | None:
    """What to pass as ``Query.visible``: the visible assets, or None when that is all of them.

    None spares the search a count of the visible rows (it weighs an exact
    scan against the index whenever a restriction is given).
    """
    return visible if visible is not None and visible.query.where else None


def _visible(serializer: serializers.Serializer) -> QuerySet[Asset] | None:
    return search_visibility(serializer.context.get("visible"))


class SimpleSearchSerializer(PageSerializer, AssetFilterSerializer):
    """``GET /api/search/``: text search from the query string, with the metadata filters."""

    q = StrictCharField(max_length=MAX_QUERY_CHARS, allow_blank=True, help_text="What to look for, in words.")
    hybrid = StrictBooleanField(required=False, default=False, help_text="Fuse with full-text search on title, tags and description.")

    def validate_q(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("The query text is empty.", code="empty_query")
        return value

    def get_query(self) -> Query:
        return Query(
            text=self.validated_data["q"],
            hybrid=self.validated_data["hybrid"],
            filters=self.get_filters(),
            limit=self.get_limit(),
            offset=self.get_offset(),
            visible=_visible(self),
        )


class SearchQuerySerializer(RejectUnknownFieldsMixin, PageSerializer):
    """``POST /api/search/``: every search mode, as JSON, or multipart when it carries an image.

    Give at least one of ``text``, ``image`` and ``asset_id``; the query vector
    is ``normalise(text_weight * text + image_weight * image + asset_weight *
    asset - negative_weight * mean(negative))``. In multipart, filters are
    sent as ``filters.tags``, ``filters.status``, ...
    """

    text = StrictCharField(required=False, allow_blank=True, max_length=MAX_QUERY_CHARS, help_text="Describe what to find.")
    image = ImageUploadField(required=False, decode=True, help_text="Find images like this one (multipart only).")
    asset_id = StrictIntegerField(required=False, min_value=1, max_value=MAX_ID, help_text="Find assets like this one.")
    negative = serializers.ListField(
        child=StrictCharField(max_length=MAX_QUERY_CHARS),
        required=False,
        max_length=MAX_NEGATIVE_TERMS,
        help_text="Terms to steer away from.",
    )
    text_weight = StrictFloatField(required=False, min_value=0, default=1.0)
    image_weight = StrictFloatField(required=False, min_value=0, default=1.0)
    asset_weight = StrictFloatField(required=False, min_value=0, default=1.0)
    negative_weight = StrictFloatField(required=False, min_value=0, default=0.5)
    filters = AssetFilterSerializer(required=False)
    hybrid = StrictBooleanField(required=False, default=False, help_text="Fuse with full-text search (needs text).")
    min_score = StrictFloatField(required=False, allow_null=True, min_value=-1, max_value=1, help_text="Drop results less similar than this.")
    exact = StrictBooleanField(required=False, default=False, help_text="Scan exactly instead of using the index (slower).")
    rerank = serializers.CharField(
        required=False, allow_blank=True, default="",
        help_text='Reorder the top candidates with a reranker: "true" for DEFAULT_RERANKER, or a RERANKERS alias; empty: no reranking.',
    )
    rerank_top_n = StrictIntegerField(required=False, allow_null=True, min_value=2, max_value=100, help_text="How many top candidates to rerank (default RERANK_TOP_N).")

    def validate_rerank(self, value: str) -> bool | str:
        from ..conf import app_settings

        if value in ("", "false"):
            return False
        if value == "true":
            return True
        if value not in app_settings.RERANKERS:
            raise serializers.ValidationError(f"Unknown reranker {value!r}; configured: {', '.join(app_settings.RERANKERS) or 'none'}.")
        return value

    def validate_asset_id(self, value: int) -> int:
        visible = _visible(self)
        if not (visible if visible is not None else Asset.objects.all()).filter(pk=value).exists():
            raise serializers.ValidationError(f"There is no asset with id {value}.", code="unknown_asset")
        return value

    def get_query(self) -> Query:
        data = self.validated_data
        return Query(
            text=data.get("text", ""),
            image=data.get("image"),
            asset_id=data.get("asset_id"),
            negative=data.get("negative", ()),
            text_weight=data["text_weight"],
            image_weight=data["image_weight"],
            asset_weight=data["asset_weight"],
            negative_weight=data["negative_weight"],
            filters=filters_from(data.get("filters", {})),
            hybrid=data["hybrid"],
            min_score=data.get("min_score"),
            exact=data["exact"],
            rerank=data["rerank"],
            rerank_top_n=data.get("rerank_top_n"),
            limit=self.get_limit(),
            offset=self.get_offset(),
            visible=_visible(self),
        )


class SimilarQuerySerializer(PageSerializer, AssetFilterSerializer):
    """Query parameters of ``GET /api/assets/<id>/similar/``."""


class DuplicatesQuerySerializer(serializers.Serializer):
    threshold = StrictFloatField(required=False, min_value=0, max_value=1, help_text="Cosine similarity at or above which an asset counts as a duplicate (default DUPLICATE_THRESHOLD).")
    limit = StrictIntegerField(required=False, default=50, min_value=1, max_value=100)


class TagQuerySerializer(serializers.Serializer):
    limit = StrictIntegerField(required=False, default=10, min_value=1, max_value=100)
    include_existing = StrictBooleanField(required=False, default=False, help_text="Also suggest tags the asset already has.")


class ThumbnailQuerySerializer(serializers.Serializer):
    size = StrictIntegerField(required=False, help_text="Longest side in pixels; one of THUMBNAIL_SIZES (default 128, 256, 512).")

    def validate_size(self, value: int) -> int:
        try:
            return check_thumbnail_size(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc


# Search output ------------------------------------------------------------


class SearchHitSerializer(serializers.Serializer):
    rank = serializers.IntegerField(help_text="1-based over the whole result list, not the page.")
    score = FiniteFloatField(help_text="Cosine similarity to the query vector, -1 to 1; null for a hybrid hit that has no vector.")
    fused_score = FiniteFloatField(help_text="Reciprocal-rank-fusion score (hybrid search only).")
    part_scores = serializers.DictField(child=serializers.FloatField(), help_text="Similarity to each query part alone (text, image, asset, negative) when the query has several.")
    part_ranks = serializers.DictField(child=serializers.IntegerField(), help_text="Rank in each list that contributed (vector, keyword).")
    asset = AssetSerializer()


class RerankOutcomeSerializer(serializers.Serializer):
    reranker = serializers.CharField(help_text="The RERANKERS alias used.")
    applied = serializers.BooleanField(help_text="False: it failed or timed out and the vector order was kept.")
    fallback = serializers.CharField(help_text="Why the vector order was kept (empty when applied).")
    repaired = serializers.ListField(child=serializers.CharField(), help_text="What the guardrails fixed in the reranker's answer.")
    reasons = serializers.DictField(child=serializers.CharField(), help_text="Per asset id, the reranker's reason (e.g. for its top pick).")
    took_ms = serializers.FloatField()


class SearchResultsSerializer(serializers.Serializer):
    results = SearchHitSerializer(source="hits", many=True)
    rerank = RerankOutcomeSerializer(allow_null=True, required=False, help_text="Present when reranking was asked for.")
    strategy = serializers.CharField(help_text='"index", "exact", "hybrid:index" or "hybrid:exact".')
    notices = serializers.ListField(child=serializers.CharField(), help_text="Things the client should know (e.g. the text was truncated).")
    took_ms = serializers.FloatField()


class TagSuggestionSerializer(serializers.Serializer):
    tag = serializers.CharField()
    score = serializers.FloatField(help_text="Cosine similarity of the tag's prompt and the image.")
    probability = serializers.FloatField(help_text="Softmax over the vocabulary at the model's temperature.")


class TagSuggestionsSerializer(serializers.Serializer):
    results = TagSuggestionSerializer(many=True)


class DuplicatesSerializer(serializers.Serializer):
    threshold = serializers.FloatField()
    results = SearchHitSerializer(many=True)


# Moderation ---------------------------------------------------------------

MAX_PROMPTS = 50
MAX_PROMPT_LENGTH = 200  # ModerationConcept.prompts' column width
MAX_REVIEW_IDS = 1000


class PromptListField(serializers.ListField):
    """Prompts: non-blank phrases of at most 200 characters, duplicates dropped."""

    child = StrictCharField(max_length=MAX_PROMPT_LENGTH)

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", MAX_PROMPTS)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> list[str]:
        return list(dict.fromkeys(super().to_internal_value(data)))


class ModerationQuerySerializer(PageSerializer):
    """``GET /api/moderation/query/``: assets ranked by the concept score of free text."""

    q = StrictCharField(max_length=MAX_PROMPT_LENGTH, allow_blank=True, help_text="The concept, in words (\"violent scene\").")
    counter = PromptListField(required=False, help_text="What it is not (repeat the parameter); default MODERATION_NEUTRAL_PROMPTS.")

    def validate_q(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("The query text is empty.", code="empty_query")
        return value


class ModerationHitSerializer(serializers.Serializer):
    rank = serializers.IntegerField(help_text="1-based over the whole result list, not the page.")
    score = FiniteFloatField(help_text="Concept probability, 0 to 1.")
    asset = AssetSerializer()


class ModerationResultsSerializer(serializers.Serializer):
    results = ModerationHitSerializer(many=True)


class RescoreProgressSerializer(serializers.Serializer):
    """Progress of the last catalogue re-score (run in the background when an enabled concept is saved)."""

    total = serializers.IntegerField(source="rescore_total", read_only=True)
    done = serializers.IntegerField(source="rescore_done", read_only=True)
    finished_at = serializers.DateTimeField(source="rescored_at", read_only=True, allow_null=True)


class ModerationConceptSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    """A moderation concept; saving an enabled one re-scores the catalogue in the background."""

    name = StrictCharField(
        max_length=100, validators=[UniqueValidator(ModerationConcept.objects.all(), message="A concept with this name exists.")],
    )
    prompts = PromptListField(allow_empty=False)
    counter_prompts = PromptListField(required=False)
    threshold = StrictFloatField(required=False, min_value=0, max_value=1)
    action = serializers.ChoiceField(choices=ConceptAction.choices, required=False)
    enabled = StrictBooleanField(required=False)
    rescore = RescoreProgressSerializer(source="*", read_only=True)

    class Meta:
        model = ModerationConcept
        fields = [
            "id", "name", "prompts", "counter_prompts", "threshold", "action", "enabled",
            "rescore", "created_at", "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]


class FlagFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=FlagStatus.choices, required=False, help_text="Review status.")
    concept = StrictIntegerField(required=False, min_value=1, max_value=MAX_ID, help_text="Id of the concept.")

    def validate_concept(self, value: int) -> int:
        if not ModerationConcept.objects.filter(pk=value).exists():
            raise serializers.ValidationError(f"There is no concept with id {value}.", code="unknown_concept")
        return value

    def apply(self, queryset: QuerySet[ModerationFlag]) -> QuerySet[ModerationFlag]:
        data = self.validated_data
        if "status" in data:
            queryset = queryset.filter(status=data["status"])
        if "concept" in data:
            queryset = queryset.filter(concept_id=data["concept"])
        return queryset


class ModerationFlagSerializer(serializers.ModelSerializer):
    asset = AssetSerializer(read_only=True)
    concept_name = serializers.CharField(source="concept.name", read_only=True)

    class Meta:
        model = ModerationFlag
        fields = ["id", "asset", "concept", "concept_name", "score", "status", "reviewer", "reviewed_at", "created_at"]
        read_only_fields = fields


class FlagReviewSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """``POST /api/moderation/flags/review/``: set the status of some flags (and their reviewer, now)."""

    ids = serializers.ListField(
        child=StrictIntegerField(min_value=1, max_value=MAX_ID), allow_empty=False, max_length=MAX_REVIEW_IDS,
        help_text="Ids of the flags.",
    )
    status = serializers.ChoiceField(choices=FlagStatus.choices, help_text="The new status.")

    def validate_ids(self, value: list[int]) -> list[int]:
        ids = list(dict.fromkeys(value))
        known = set(ModerationFlag.objects.filter(pk__in=ids).values_list("pk", flat=True))
        unknown = [pk for pk in ids if pk not in known]
        if unknown:
            raise serializers.ValidationError(
                f"There are no flags with these ids: {', '.join(map(str, unknown))}.", code="unknown_flag"
            )
        return ids


class FlagReviewResultSerializer(serializers.Serializer):
    updated = serializers.IntegerField(help_text="How many flags were updated.")
    status = serializers.CharField()


# Errors (schema only) -----------------------------------------------------


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, for programs: invalid, invalid_image, empty_query, unknown_asset, not_found, ...")
    message = serializers.CharField(help_text="For people.")
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), help_text="Messages per field path (validation errors).")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()

