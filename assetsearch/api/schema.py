"""The API's OpenAPI schema, whatever the host's REST_FRAMEWORK and SPECTACULAR_SETTINGS say.

Three things a host's settings would otherwise decide:

- drf-spectacular's ``@extend_schema`` on a view *method* builds on
  ``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]`` (DRF's own AutoSchema unless the
  host names drf-spectacular's), which breaks schema generation (a 500 at
  ``/api/schema/``, ``drf_spectacular.E001`` in ``check --deploy``). The views
  use :func:`extend_schema` from here, which always builds on drf-spectacular's
  AutoSchema. A class-level ``@extend_schema`` goes above (after)
  ``@extend_schema_view``: it then folds the method schemas into its own,
  which drf-spectacular otherwise rebases on the host's default class.
- drf-spectacular names an enum after its field; two choice sets behind
  fields of one name ("status" of an asset's embedding and of a flag)
  collide and warn, in this API's schema and in a host's. The app's choice
  sets are components named after their class (``EmbeddingStatusEnum``)
  instead (:class:`NamedEnumExtension`).
- ``/api/schema/`` (:class:`AssetSearchSchemaView`) documents this app's
  endpoints only, under its own title and the package's version, with its
  own settings patched over the host's for the request.
"""

from __future__ import annotations

from typing import Any

from django.db.models import TextChoices
from drf_spectacular import utils
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers

from .. import __version__
from ..models import ConceptAction, EmbeddingStatus, FlagStatus

# The app's choice sets, each one schema component.
NAMED_ENUMS: tuple[type[TextChoices], ...] = (EmbeddingStatus, FlagStatus, ConceptAction)

SCHEMA_SETTINGS: dict[str, Any] = {
    "TITLE": "assetsearch API",
    "DESCRIPTION": "Upload images, follow their embedding, and search them by meaning.",
    "VERSION": __version__,
    # Request bodies get components of their own: uploads are ``format: binary`` (so clients and
    # schemathesis send them as files) and ``additionalProperties: false`` is stated where it holds.
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["assetsearch.api.schema.only_assetsearch_endpoints"],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "assetsearch.api.schema.require_bodies_that_need_a_field"],
}


def extend_schema(**kwargs: Any) -> Any:
    """drf-spectacular's ``extend_schema``, built on its AutoSchema whatever the host's DEFAULT_SCHEMA_CLASS.

    The decorator takes its base class from the decorated object's ``schema``
    attribute before it falls back to the setting; view classes have one (the
    API's views set ``schema = AutoSchema()``), view methods are given one here.
    """
    decorate = utils.extend_schema(**kwargs)

    def decorator(target: Any) -> Any:
        if not isinstance(target, type) and getattr(target, "schema", None) is None and "schema" not in getattr(target, "kwargs", {}):
            target.schema = AutoSchema
        return decorate(target)

    return decorator


def only_assetsearch_endpoints(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    """Preprocessing hook: keep the endpoints whose views belong to this app, wherever the host mounts them."""
    return [endpoint for endpoint in endpoints if endpoint[3].cls.__module__.startswith("assetsearch.")]


def require_bodies_that_need_a_field(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: a request body whose schema needs one of some fields (``anyOf`` of
    ``required``, e.g. a search's text, image or asset_id) is itself required; drf-spectacular
    marks a body required only when a field is, so an empty POST would pass for valid."""
    components = result.get("components", {}).get("schemas", {})
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if not body:
                continue
            schemas = [components.get(media["schema"].get("$ref", "").rsplit("/", 1)[-1], {}) for media in body["content"].values()]
            if any(schema.get("anyOf") and all("required" in option for option in schema["anyOf"]) for schema in schemas):
                body["required"] = True
    return result


def get_named_enum(field: Any) -> type[TextChoices] | None:
    """The app's choice set behind ``field``: one of this app's serializers' single-choice fields, not blank or null."""
    if isinstance(field, serializers.MultipleChoiceField) or field.allow_blank or field.allow_null:
        return None
    parent = field.parent  # the serializer holding it (a ListSerializer's root is DRF's own)
    while parent is not None and not type(parent).__module__.startswith("assetsearch."):
        parent = parent.parent
    if parent is None:
        return None
    return next((enum for enum in NAMED_ENUMS if list(field.choices) == list(enum.values)), None)


class NamedEnumExtension(OpenApiSerializerFieldExtension):
    """Schema of a field over one of :data:`NAMED_ENUMS`: a reference to that enum's component."""

    target_class = serializers.ChoiceField
    match_subclasses = True

    @classmethod
    def _matches(cls, target: Any) -> bool:
        return super()._matches(target) and get_named_enum(target) is not None

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        enum = get_named_enum(self.target)
        assert enum is not None
        schema = {
            "type": "string",
            "enum": list(enum.values),
            "description": "\n".join(f"* `{value}` - {label}" for value, label in enum.choices),
        }
        component = ResolvedComponent(name=f"{enum.__name__}Enum", type=ResolvedComponent.SCHEMA, object=enum, schema=schema)
        auto_schema.registry.register_on_missing(component)
        return component.ref


class ModelLabelsExtension(OpenApiSerializerFieldExtension):
    """Schema of the ``model`` parameter: the labels of the models registered when the schema is built."""

    target_class = "assetsearch.api.serializers.ModelChoiceListField"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        from ..registry import get_indexes

        field = self.target
        return {
            "type": "array",
            "items": {"type": "string", "enum": [index.label for index in get_indexes()]},
            "maxItems": field.max_length,
            "description": str(field.help_text),
        }


class AssetSearchSchemaView(SpectacularAPIView):
    """``/api/schema/``: the OpenAPI 3 document of this app's API alone."""

    custom_settings = SCHEMA_SETTINGS
    schema = None  # not an endpoint of the API it documents (nor of the host's schema)
