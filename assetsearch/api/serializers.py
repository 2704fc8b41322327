"""Serializers: every input is validated here, before the core sees it or a file is saved.

The fields are strict about JSON types (:mod:`assetsearch.api.fields`); the
bounds are :mod:`assetsearch.constants` and the settings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.functional import cached_property
from rest_framework import serializers
from rest_framework.utils import html
from rest_framework.validators import UniqueValidator

from ..conf import app_settings
from ..constants import (
    DEFAULT_DUPLICATES_LIMIT,
    DEFAULT_NEGATIVE_WEIGHT,
    DEFAULT_TAG_SUGGESTIONS,
    DEFAULT_WEIGHT,
    MAX_CONCEPT_NAME_LENGTH,
    MAX_DESCRIPTION_LENGTH,
    MAX_ID,
    MAX_LIST_LIMIT,
    MAX_NEGATIVE_TERMS,
    MAX_OFFSET,
    MAX_PROMPT_LENGTH,
    MAX_QUERY_CHARS,
    MAX_MODEL_LABEL_LENGTH,
    MAX_SEARCH_MODELS,
    MAX_REVIEW_IDS,
    MAX_TITLE_LENGTH,
    MAX_WEIGHT,
    RERANK_TOP_N_MAX,
    RERANK_TOP_N_MIN,
    ConceptAction,
    EmbeddingStatus,
    FlagStatus,
)
from ..files import get_original_url
from ..images import MIME_TYPES
from ..models import Asset, ModerationConcept, ModerationFlag
from ..registry import get_index, get_indexes
from ..search import Filters, Query
from ..thumbnails import get_thumbnail_sizes, get_thumbnail_url
from .fields import (
    NON_BLANK_QUERY,
    FiniteFloatField,
    ImageUploadField,
    JSONPartMixin,
    PromptListField,
    QueryTextField,
    StrictBooleanField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
    TagListField,
)


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
                allowed = [name for name, f in self.fields.items() if not f.read_only]  # type: ignore[attr-defined]
                raise unknown_names_error(unknown, allowed, "field", self.unknown_field_hints)
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictRequestSchema(OpenApiSerializerExtension):
    """The schema of serializers that refuse unknown fields says so (``additionalProperties: false``),
    plus any ``schema_extra`` they declare (e.g. which fields are needed together)."""

    target_class = RejectUnknownFieldsMixin
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema = {**schema, "additionalProperties": False, **getattr(self.target, "schema_extra", {})}
        return schema


def unknown_names_error(
    unknown: list[str], allowed: list[str], kind: str, hints: Mapping[str, str] | None = None
) -> serializers.ValidationError:
    """The 400 for fields or query parameters an endpoint does not take, naming each and what it takes."""
    takes = f"this endpoint takes: {', '.join(allowed)}." if allowed else "this endpoint takes none."
    return serializers.ValidationError(
        {name: [(hints or {}).get(name, f"Unknown {kind}; {takes}")] for name in unknown}, code="unknown_field"
    )


# Assets -------------------------------------------------------------------


class EmbeddingStateSerializer(serializers.Serializer):
    """Where the asset is in the embedding pipeline; poll until ``status`` is not ``pending``."""

    status = serializers.ChoiceField(source="embedding_status", choices=EmbeddingStatus.choices, read_only=True)
    error = serializers.CharField(source="embedding_error", read_only=True, help_text="Why embedding failed, if it did.")
    attempts = serializers.IntegerField(source="embedding_attempts", read_only=True)
    changed_at = serializers.DateTimeField(source="embedding_status_changed_at", read_only=True)


class AssetSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    """An asset; its editorial metadata (title, description, tags) is writable."""

    title = StrictCharField(max_length=MAX_TITLE_LENGTH, allow_blank=True, required=False)
    description = StrictCharField(max_length=MAX_DESCRIPTION_LENGTH, allow_blank=True, required=False, trim_whitespace=False)
    tags = TagListField(required=False)
    image_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    embedding = EmbeddingStateSerializer(source="*", read_only=True)

    unknown_field_hints = {"image": "The file cannot be changed here; replace it with PUT /api/assets/<id>/file/."}

    class Meta:
        model = Asset
        fields = [
            "id", "title", "description", "tags", "image_url", "thumbnail_url", "original_filename",
            "width", "height", "mime_type", "file_size", "content_hash",
            "uploaded_by", "created_at", "updated_at", "embedding",
        ]
        read_only_fields = [
            "id", "original_filename", "width", "height", "mime_type", "file_size", "content_hash", "uploaded_by", "created_at", "updated_at",
        ]

    def _absolute(self, url: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url

    @extend_schema_field(OpenApiTypes.URI)
    def get_image_url(self, asset: Asset) -> str:
        return self._absolute(get_original_url(asset))

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


class AssetFilterSerializer(JSONPartMixin, serializers.Serializer):
    """Metadata filters, the same for the asset list and every search; all given must hold.

    In a query string, repeat a list parameter (``?tags=red&tags=circle``).
    """

    tags = TagListField(required=False, help_text="The asset has all of these tags.")
    created_after = serializers.DateTimeField(required=False, help_text="Created at or after (ISO 8601).")
    created_before = serializers.DateTimeField(required=False, help_text="Created before (ISO 8601).")
    mime_type = serializers.ListField(
        source="mime_types",
        child=serializers.ChoiceField(choices=sorted(MIME_TYPES.values())), required=False, max_length=len(MIME_TYPES),
        help_text="The asset's MIME type is one of these.",
    )
    uploaded_by = StrictIntegerField(required=False, min_value=1, max_value=MAX_ID, help_text="Id of the uploading user.")
    status = serializers.ChoiceField(choices=EmbeddingStatus.choices, required=False, help_text="Embedding status.")

    def get_filters(self) -> Filters:
        return Filters.from_data(self.validated_data)


class PageBoundMin(MinValueValidator):
    code = "invalid_page"


class PageBoundMax(MaxValueValidator):
    code = "invalid_page"


def page_parameter_bounds() -> dict[str, tuple[int, int]]:
    """``{name: (minimum, maximum)}`` of the page parameters (``MAX_PAGE_SIZE`` is read now: a setting)."""
    return {"limit": (1, app_settings.MAX_PAGE_SIZE), "offset": (0, MAX_OFFSET)}


def page_bounds(name: str) -> list[Any]:
    """Validators of a page parameter: the ``invalid_page`` error, and ``minimum``/``maximum`` in the schema."""
    minimum, maximum = page_parameter_bounds()[name]
    message = f"{name} must be between {minimum} and {maximum}, not %(value)s."
    return [PageBoundMin(minimum, message=message), PageBoundMax(maximum, message=message)]


class ModelChoiceListField(serializers.ListField):
    """``model``: registered models by ``app_label.model_name`` (repeat the parameter for several)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("child", StrictCharField(max_length=MAX_MODEL_LABEL_LENGTH))
        kwargs.setdefault("max_length", MAX_SEARCH_MODELS)
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "Registered models to search, as app_label.model_name (repeatable); default: assets only.")
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> list[str]:
        if isinstance(data, str):
            data = [data]
        labels = super().to_internal_value(data)
        if len(labels) > MAX_SEARCH_MODELS:  # counted as given, before repeats are merged
            raise serializers.ValidationError(f"At most {MAX_SEARCH_MODELS} models.", code="max_length")
        known = [index.label for index in get_indexes()]
        unknown = [label for label in labels if label not in known]  # exactly as the schema's enum spells them
        if unknown:
            raise serializers.ValidationError(
                f"Unknown model(s): {', '.join(unknown)}; indexed: {', '.join(known)}.", code="unknown_model"
            )
        return list(dict.fromkeys(labels))


class ModelsMixin(serializers.Serializer):
    """The ``model`` parameter: which registered models a search covers."""

    model = ModelChoiceListField()

    def get_search_scope(self) -> dict[str, Any]:
        """``models`` and ``user`` for the :class:`Query`: the given models, seen as the request's user."""
        labels = self.validated_data.get("model")
        if not labels:
            return {}
        request = self.context.get("request")
        return {"models": labels, "user": getattr(request, "user", None)}


class PageSerializer(serializers.Serializer):
    """``limit`` (1 to ``MAX_PAGE_SIZE``, default ``PAGE_SIZE``) and ``offset`` (0 to ``MAX_OFFSET``)."""

    limit = StrictIntegerField(required=False, help_text="Results per page (1 to MAX_PAGE_SIZE, default PAGE_SIZE).")
    offset = StrictIntegerField(required=False, default=0, help_text="Results to skip.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # MAX_PAGE_SIZE is a setting: the bounds (and the schema's) are read per request.
        for name in ("limit", "offset"):
            self.fields[name].validators = page_bounds(name)

    def get_limit(self) -> int:
        return self.validated_data.get("limit") or app_settings.PAGE_SIZE

    def get_offset(self) -> int:
        return self.validated_data.get("offset", 0)

    def get_page(self) -> dict[str, int]:
        return {"limit": self.get_limit(), "offset": self.get_offset()}


# Search input -------------------------------------------------------------


def _visible(serializer: serializers.Serializer) -> Any:
    return serializer.context.get("visible")


class SimpleSearchSerializer(ModelsMixin, PageSerializer, AssetFilterSerializer):
    """``GET /api/search/``: text search from the query string, with the metadata filters."""

    q = QueryTextField(max_length=MAX_QUERY_CHARS, help_text="What to look for, in words.")
    hybrid = StrictBooleanField(required=False, default=False, help_text="Fuse with full-text search on title, tags and description.")

    def get_query(self) -> Query:
        data = self.validated_data
        return Query.from_data(
            {"text": data["q"], "hybrid": data["hybrid"], "filters": data, **self.get_page(), "visible": _visible(self), **self.get_search_scope()}
        )


class SearchQuerySerializer(RejectUnknownFieldsMixin, ModelsMixin, PageSerializer):
    """``POST /api/search/``: every search mode, as JSON, or multipart when it carries an image.

    Give at least one of ``text``, ``image`` and ``asset_id`` (else 400
    ``empty_query``); ``text``, when given, is not whitespace only. The query vector
    is ``normalise(text_weight * text + image_weight * image + asset_weight *
    asset - negative_weight * mean(negative))``. In multipart, filters are
    sent as ``filters.tags``, ``filters.status``, ...
    """

    text = StrictCharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=MAX_QUERY_CHARS, validators=[NON_BLANK_QUERY],
        help_text="Describe what to find (one of text, image and asset_id is needed).",
    )
    image = ImageUploadField(required=False, decode=True, help_text="Find images like this one (multipart only; one of text, image and asset_id is needed).")
    asset_id = StrictIntegerField(required=False, min_value=1, max_value=MAX_ID, help_text="Find assets like this one (one of text, image and asset_id is needed).")
    negative = serializers.ListField(
        child=StrictCharField(max_length=MAX_QUERY_CHARS),
        required=False,
        max_length=MAX_NEGATIVE_TERMS,
        help_text="Terms to steer away from.",
    )
    text_weight = StrictFloatField(required=False, min_value=0, max_value=MAX_WEIGHT, default=DEFAULT_WEIGHT)
    image_weight = StrictFloatField(required=False, min_value=0, max_value=MAX_WEIGHT, default=DEFAULT_WEIGHT)
    asset_weight = StrictFloatField(required=False, min_value=0, max_value=MAX_WEIGHT, default=DEFAULT_WEIGHT)
    negative_weight = StrictFloatField(required=False, min_value=0, max_value=MAX_WEIGHT, default=DEFAULT_NEGATIVE_WEIGHT)
    filters = AssetFilterSerializer(required=False)
    hybrid = StrictBooleanField(required=False, default=False, help_text="Fuse with full-text search (needs text).")
    min_score = StrictFloatField(required=False, allow_null=True, min_value=-1, max_value=1, help_text="Drop results less similar than this.")
    exact = StrictBooleanField(required=False, default=False, help_text="Scan exactly instead of using the index (slower).")
    rerank = serializers.ChoiceField(
        choices=[], required=False, allow_blank=True, default="",
        help_text='Reorder the top candidates with a reranker: "true" for DEFAULT_RERANKER, or a RERANKERS alias; empty or "false": no reranking.',
    )
    rerank_top_n = StrictIntegerField(
        required=False, allow_null=True, min_value=RERANK_TOP_N_MIN, max_value=RERANK_TOP_N_MAX,
        help_text="How many top candidates to rerank (default RERANK_TOP_N).",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # RERANKERS is a setting: the choices (and the schema's enum) are read per request.
        rerank = self.fields["rerank"]
        rerank.choices = ["false", "true", *app_settings.RERANKERS]
        rerank.error_messages["invalid_choice"] = f"Unknown reranker '{{input}}'; configured: {', '.join(app_settings.RERANKERS) or 'none'}."

    def validate_rerank(self, value: str) -> bool | str:
        return {"": False, "false": False, "true": True}.get(value, value)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if not (data.get("text") or data.get("image") is not None or data.get("asset_id") is not None):
            raise serializers.ValidationError("Give text, an image or an asset to search with.", code="empty_query")
        return data

    def validate_asset_id(self, value: int) -> int:
        visible = _visible(self)
        if not (visible if visible is not None else Asset.objects.all()).filter(pk=value).exists():
            raise serializers.ValidationError(f"There is no asset with id {value}.", code="unknown_asset")
        return value

    def get_query(self) -> Query:
        data = {key: value for key, value in self.validated_data.items() if key != "model"}
        return Query.from_data({**data, **self.get_page(), "visible": _visible(self), **self.get_search_scope()})

    # "One of text, image and asset_id", for the schema (validate() enforces it).
    schema_extra = {
        "anyOf": [
            {"required": ["text"], "properties": {"text": {"minLength": 1}}},
            {"required": ["image"]},
            {"required": ["asset_id"]},
        ]
    }


class SearchQueryJSONSerializer(SearchQuerySerializer):
    """``POST /api/search/`` as JSON: every field but the image (send an image as multipart)."""

    image = None  # type: ignore[assignment]
    schema_extra = {"anyOf": SearchQuerySerializer.schema_extra["anyOf"][::2]}


class SimilarQuerySerializer(ModelsMixin, PageSerializer, AssetFilterSerializer):
    """Query parameters of ``GET /api/assets/<id>/similar/``."""


class AssetListQuerySerializer(PageSerializer, AssetFilterSerializer):
    """Query parameters of ``GET /api/assets/``: a page and the filters."""


class DuplicatesQuerySerializer(ModelsMixin, serializers.Serializer):
    threshold = StrictFloatField(required=False, min_value=0, max_value=1, help_text="Cosine similarity at or above which an object is a candidate (default DUPLICATE_THRESHOLD); a candidate is listed when its pixels are a re-encoded, resized or lightly cropped copy (DUPLICATE_PIXEL_TOLERANCE).")
    limit = StrictIntegerField(required=False, default=DEFAULT_DUPLICATES_LIMIT, min_value=1, max_value=MAX_LIST_LIMIT)


class TagQuerySerializer(serializers.Serializer):
    limit = StrictIntegerField(required=False, default=DEFAULT_TAG_SUGGESTIONS, min_value=1, max_value=MAX_LIST_LIMIT)
    include_existing = StrictBooleanField(required=False, default=False, help_text="Also suggest tags the asset already has.")


class ThumbnailQuerySerializer(serializers.Serializer):
    size = serializers.ChoiceField(choices=[], required=False, help_text="Longest side in pixels; one of THUMBNAIL_SIZES (default THUMBNAIL_DEFAULT_SIZE).")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # THUMBNAIL_SIZES is a setting: the choices (and the schema's enum) are read per request.
        size = self.fields["size"]
        size.choices = get_thumbnail_sizes()
        size.error_messages["invalid_choice"] = f"Thumbnail size {{input}} is not offered; use one of {', '.join(map(str, size.choices))}."


# Search output ------------------------------------------------------------


class IndexedObjectMixin(serializers.Serializer):
    """The generic shape of any registered object: ``model``, ``id``, ``title``, URLs, and its index's ``object`` data."""

    model = serializers.SerializerMethodField(help_text="app_label.model_name of the object.")
    id = serializers.SerializerMethodField(help_text="The object's primary key.")
    title = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    admin_url = serializers.SerializerMethodField(help_text="The object's Django admin page; null when it has none.")
    object = serializers.SerializerMethodField(help_text="What the model's index exposes (BaseImageIndex.serialize); null if nothing.")
    asset = serializers.SerializerMethodField(help_text="The asset, when the object is one (the shape of GET /api/assets/<id>/); null otherwise.")

    object_source = "object"

    def _object(self, hit: Any) -> Any:
        return getattr(hit, self.object_source)

    def _absolute(self, url: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None and url else url

    def get_model(self, hit: Any) -> str:
        return get_index(self._object(hit)).label

    def get_id(self, hit: Any) -> int:
        return self._object(hit).pk

    def get_title(self, hit: Any) -> str:
        obj = self._object(hit)
        return get_index(obj).get_title(obj)

    @extend_schema_field(OpenApiTypes.URI)
    def get_thumbnail_url(self, hit: Any) -> str:
        obj = self._object(hit)
        return self._absolute(get_index(obj).thumbnail_url(obj))

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_admin_url(self, hit: Any) -> str | None:
        obj = self._object(hit)
        return self._absolute(get_index(obj).admin_url(obj)) or None

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_object(self, hit: Any) -> dict[str, Any] | None:
        obj = self._object(hit)
        return get_index(obj).serialize(obj, self.context)

    @cached_property
    def _asset_serializer(self) -> AssetSerializer:
        # One serializer for the page: a ModelSerializer builds its fields per instance.
        return AssetSerializer(context=self.context)

    @extend_schema_field(AssetSerializer(allow_null=True))
    def get_asset(self, hit: Any) -> dict[str, Any] | None:
        obj = self._object(hit)
        return self._asset_serializer.to_representation(obj) if isinstance(obj, Asset) else None


class SearchHitSerializer(IndexedObjectMixin):
    rank = serializers.IntegerField(help_text="1-based over the whole result list, not the page.")
    score = FiniteFloatField(help_text="Cosine similarity to the query vector, -1 to 1; null for a hybrid hit that has no vector.")
    fused_score = FiniteFloatField(help_text="Reciprocal-rank-fusion score (hybrid search only).")
    match = FiniteFloatField(help_text="A query of several parts: how well the hit answers all of them, the weighted mean of each part's z-score in the catalogue capped at COMPOSE_PART_CAP, which orders the vector results; null for one part.")
    part_scores = serializers.DictField(child=serializers.FloatField(), help_text="Similarity to each query part alone (text, image, asset, negative) when the query has several.")
    part_ranks = serializers.DictField(child=serializers.IntegerField(), help_text="Rank in each list that contributed (vector, keyword).")


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

class ModerationQuerySerializer(PageSerializer):
    """``GET /api/moderation/query/``: assets ranked by the concept score of free text."""

    q = QueryTextField(max_length=MAX_PROMPT_LENGTH, help_text="The concept, in words (\"violent scene\").")
    counter = PromptListField(required=False, help_text="What it is not (repeat the parameter); default: the MODERATION_LOOKALIKES labels of the model nearest the concept, or MODERATION_NEUTRAL_PROMPTS where it declares none.")


class ModerationHitSerializer(IndexedObjectMixin):
    rank = serializers.IntegerField(help_text="1-based over the whole result list, not the page.")
    score = FiniteFloatField(help_text="Concept probability, 0 to 1.")


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
        max_length=MAX_CONCEPT_NAME_LENGTH, validators=[UniqueValidator(ModerationConcept.objects.all(), message="A concept with this name exists.")],
        help_text="Unique: a name another concept has is a 409 `conflict`.",
    )
    prompts = PromptListField(allow_empty=False, min_length=1)
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
    concept = StrictIntegerField(required=False, min_value=1, max_value=MAX_ID, help_text="Id of the concept (an unknown one matches no flag).")



class FlagListQuerySerializer(PageSerializer, FlagFilterSerializer):
    """Query parameters of ``GET /api/moderation/flags/``: a page and the filters."""


class ModerationFlagSerializer(serializers.ModelSerializer):
    asset = serializers.SerializerMethodField(help_text="The flagged asset; null when the object is of another model (see `model`, `object_id`).")
    model = serializers.SerializerMethodField(help_text="app_label.model_name of the flagged object.")
    object_id = serializers.IntegerField(source="entry.object_id", read_only=True)
    concept_name = serializers.CharField(source="concept.name", read_only=True)

    class Meta:
        model = ModerationFlag
        fields = ["id", "asset", "model", "object_id", "concept", "concept_name", "score", "status", "reviewer", "reviewed_at", "created_at"]
        read_only_fields = fields

    @extend_schema_field(AssetSerializer(allow_null=True))
    def get_asset(self, flag: ModerationFlag) -> dict[str, Any] | None:
        asset = flag.asset
        return AssetSerializer(asset, context=self.context).data if asset is not None else None

    def get_model(self, flag: ModerationFlag) -> str:
        content_type = flag.entry.content_type
        return f"{content_type.app_label}.{content_type.model}"


class FlagReviewSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """``POST /api/moderation/flags/review/``: set the status of some flags (and their reviewer, now)."""

    ids = serializers.ListField(
        child=StrictIntegerField(min_value=1, max_value=MAX_ID), allow_empty=False, min_length=1, max_length=MAX_REVIEW_IDS,
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

