"""The API's views: declarative; serializers validate, ``search.py`` and ``suggestions.py`` answer.

Every view carries its own authentication, permission, throttle, pagination,
parser and exception-handling classes (:class:`AssetSearchAPIMixin`), so a
host project only includes ``assetsearch.urls``; its ``REST_FRAMEWORK``
defaults do not change how this API behaves.
"""

from __future__ import annotations

import inspect
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponseBase
from django.utils.module_loading import import_string
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema_view
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework import generics, mixins, viewsets
from rest_framework.authentication import BaseAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.fields import CharField, ListField
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.settings import api_settings

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ObjectDoesNotExist

from ..conf import app_settings
from ..files import EXTENSIONS, MISSING_FILE_MESSAGE, UNKNOWN_TYPE, ServedFile, original_file, serve_file
from ..models import Asset, ModerationConcept, ModerationFlag
from ..moderation import moderation_query
from ..registry import NotRegistered, get_index
from ..search import Query, near_duplicates, search, similar_assets
from ..suggestions import suggest_tags
from ..thumbnails import THUMBNAIL_TYPE, thumbnail_file
from . import serializers as s
from .exceptions import exception_handler
from .filters import AssetFilterBackend, FlagFilterBackend
from .permissions import AssetPermission, IndexedReadPermission, ModerationConceptPermission, ModerationPermission
from .schema import extend_schema
from .throttles import AssetSearchThrottle, refund_throttles

ERROR_DESCRIPTIONS = {
    400: "Invalid input: the message says what, `fields` says where.",
    401: "Not authenticated (send a token or a session cookie).",
    403: "Authenticated, but without the permission this needs.",
    404: "No such asset (or one hidden from you), or no such concept.",
    409: "The asset has no embedding yet; retry when its embedding status is ready.",
    413: "The file is larger than MAX_UPLOAD_BYTES.",
    429: "Too many requests; see the Retry-After header.",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Schema entries for error responses, all with the one error shape."""
    return {code: OpenApiResponse(s.ErrorSerializer, description=ERROR_DESCRIPTIONS[code]) for code in codes}


READ_ERRORS = (401, 403, 429)
CONCEPT_NAME_TAKEN = OpenApiResponse(s.ErrorSerializer, description="Another concept has this name (`conflict`).")
# What the original-file view may answer with.
ORIGINAL_TYPES = [*EXTENSIONS, UNKNOWN_TYPE]


class AssetPagination(LimitOffsetPagination):
    """``limit``/``offset`` pages; a bad value is a 400, not silently clamped."""

    def paginate_queryset(self, queryset: QuerySet[Asset], request: Request, view: Any = None) -> list[Asset]:
        page = s.PageSerializer(data=request.query_params)
        page.is_valid(raise_exception=True)
        self.default_limit = app_settings.PAGE_SIZE
        self.max_limit = app_settings.MAX_PAGE_SIZE
        self.page_limit, self.page_offset = page.get_limit(), page.get_offset()
        return super().paginate_queryset(queryset, request, view)

    def get_limit(self, request: Request) -> int:
        return self.page_limit

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        bounds = s.page_parameter_bounds()
        for parameter in parameters:
            minimum, maximum = bounds[parameter["name"]]
            parameter["schema"] = {**parameter["schema"], "minimum": minimum, "maximum": maximum}
        return parameters

    def get_offset(self, request: Request) -> int:
        return self.page_offset


class AssetSearchAPIMixin:
    """The API's policies, set on the view rather than taken from REST_FRAMEWORK."""

    permission_classes = [AssetPermission]
    throttle_classes = [AssetSearchThrottle]
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer]
    pagination_class = AssetPagination
    filter_backends: list[type] = []  # our own backends (.filters), never the host's defaults
    schema = AutoSchema()
    throttle_scope: str | None = None
    request: Request
    #: The serializer of the query string, by action (viewsets) or method
    #: (views). A parameter it does not name is a 400, like an unknown JSON
    #: field; an action not listed takes no parameters.
    query_serializer_classes: dict[str, type[BaseSerializer]] = {}

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        self.check_query_parameters(request)

    def get_query_serializer_class(self) -> type[BaseSerializer] | None:
        return self.query_serializer_classes.get(getattr(self, "action", None) or self.request.method.lower())

    def check_query_parameters(self, request: Request) -> None:
        """Refuse query parameters the endpoint does not take (``format`` picks a renderer), and
        empty values where an empty string is not a value (``?status=``, ``?limit=``).

        A method the endpoint does not serve is left to its 405.
        """
        if getattr(self, request.method.lower(), None) is None:
            return
        serializer_class = self.get_query_serializer_class()
        fields = serializer_class().fields if serializer_class is not None else {}
        unknown = [name for name in request.query_params if name not in fields and name != api_settings.URL_FORMAT_OVERRIDE]
        if unknown:
            raise s.unknown_names_error(unknown, list(fields), "query parameter")
        empty = [
            name for name, values in request.query_params.lists()
            # Text and list fields say why themselves ("may not be blank", "the query text is empty").
            if name in fields and "" in values and not isinstance(fields[name], (CharField, ListField))
        ]
        if empty:
            raise ValidationError({name: ["This parameter may not be empty."] for name in empty}, code="blank")

    def validated_query(self) -> BaseSerializer:
        """The query string, validated by this action's query serializer."""
        serializer_class = self.get_query_serializer_class()
        assert serializer_class is not None, "validated_query() needs a query serializer for this action"
        return self.validated(serializer_class, self.request.query_params)

    def get_authenticators(self) -> list[BaseAuthentication]:
        return [import_string(path)() for path in app_settings.API_AUTHENTICATION_CLASSES]

    def get_exception_handler(self) -> Any:
        return exception_handler

    def finalize_response(self, request: Request, response: HttpResponseBase, *args: Any, **kwargs: Any) -> HttpResponseBase:
        refund_throttles(request, response)  # "not embedded yet" answers cost no budget
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]

    def get_visible_assets(self) -> QuerySet[Asset]:
        """The assets this user may see (moderation hides some from users without its permission)."""
        return Asset.objects.visible_to(self.request.user).select_related("uploaded_by").with_entry()

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "visible": self.get_visible_assets()}  # type: ignore[misc]

    def validated(self, serializer_class: type[BaseSerializer], data: Any) -> BaseSerializer:
        serializer = serializer_class(data=data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return serializer


@extend_schema(tags=["assets"])
@extend_schema_view(
    list=extend_schema(
        summary="List assets",
        parameters=[s.AssetFilterSerializer],
        responses={200: s.AssetSerializer(many=True), **errors(400, *READ_ERRORS)},
    ),
    retrieve=extend_schema(summary="Get an asset", responses={200: s.AssetSerializer, **errors(*READ_ERRORS, 404)}),
    create=extend_schema(
        summary="Upload an image",
        description="Multipart upload. The asset is returned at once with `embedding.status` "
        "`pending`; poll `GET /api/assets/<id>/` until it is `ready` (or `failed`, with `embedding.error`).",
        request={"multipart/form-data": s.AssetUploadSerializer},
        responses={201: s.AssetSerializer, **errors(400, 401, 403, 413, 429)},
    ),
    update=extend_schema(summary="Edit an asset's metadata", responses={200: s.AssetSerializer, **errors(400, 401, 403, 404)}),
    partial_update=extend_schema(summary="Edit some of an asset's metadata", responses={200: s.AssetSerializer, **errors(400, 401, 403, 404)}),
    destroy=extend_schema(summary="Delete an asset and its file", responses={204: None, **errors(401, 403, 404)}),
)
class AssetViewSet(AssetSearchAPIMixin, viewsets.ModelViewSet):
    """Assets: upload, list and filter, edit metadata, replace the file, delete."""

    serializer_class = s.AssetSerializer
    filter_backends = [AssetFilterBackend]
    queryset = Asset.objects.none()  # for the schema; get_queryset() is what counts
    query_serializer_classes = {
        "list": s.AssetListQuerySerializer,
        "similar": s.SimilarQuerySerializer,
        "duplicates": s.DuplicatesQuerySerializer,
        "tags": s.TagQuerySerializer,
    }

    def get_queryset(self) -> QuerySet[Asset]:
        return self.get_visible_assets()

    def get_serializer_class(self) -> type[BaseSerializer]:
        action = self.action
        if action == "metadata" and self.request.method == "POST":
            action = "create"  # OPTIONS describes POST with a request clone
        return {"create": s.AssetUploadSerializer, "replace_file": s.AssetFileSerializer}.get(action, s.AssetSerializer)

    @property
    def throttle_scope(self) -> str | None:  # type: ignore[override]
        if self.action in ("create", "replace_file"):
            return "upload"
        if self.action in ("similar", "duplicates", "tags"):
            return "search"
        return None

    def perform_create(self, serializer: BaseSerializer) -> None:
        user = self.request.user
        serializer.save(uploaded_by=user if user.is_authenticated else None)

    @extend_schema(
        summary="Replace an asset's file",
        description="Multipart. The asset goes back to `pending` and is embedded again.",
        request={"multipart/form-data": s.AssetFileSerializer},
        responses={200: s.AssetSerializer, **errors(400, 401, 403, 404, 413, 429)},
    )
    @action(detail=True, methods=["put"], url_path="file", parser_classes=[MultiPartParser, FormParser])
    def replace_file(self, request: Request, pk: str | None = None) -> Response:
        # The superseded file and thumbnails are removed after commit (assetsearch.signals).
        serializer = self.get_serializer(self.get_object(), data=request.data)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)

    @extend_schema(
        summary="Assets that look like this one",
        parameters=[s.SimilarQuerySerializer],
        responses={200: s.SearchResultsSerializer, **errors(400, *READ_ERRORS, 404, 409)},
    )
    @action(detail=True, methods=["get"])
    def similar(self, request: Request, pk: str | None = None) -> Response:
        asset = self.get_object()
        params = self.validated_query()
        results = similar_assets(
            asset.pk, limit=params.get_limit(), offset=params.get_offset(), filters=params.get_filters(),
            visible=self.get_visible_assets(), **params.get_search_scope(),
        )
        return Response(s.SearchResultsSerializer(results, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Near-duplicates of this asset",
        parameters=[s.DuplicatesQuerySerializer],
        responses={200: s.DuplicatesSerializer, **errors(400, *READ_ERRORS, 404, 409)},
    )
    @action(detail=True, methods=["get"])
    def duplicates(self, request: Request, pk: str | None = None) -> Response:
        asset = self.get_object()
        serializer = self.validated_query()
        params = serializer.validated_data
        threshold = params.get("threshold", app_settings.DUPLICATE_THRESHOLD)
        hits = near_duplicates(
            asset.pk, threshold=threshold, limit=params["limit"], visible=self.get_visible_assets(), **serializer.get_search_scope()
        )
        data = {"threshold": threshold, "results": hits}
        return Response(s.DuplicatesSerializer(data, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Suggested tags for this asset",
        parameters=[s.TagQuerySerializer],
        responses={200: s.TagSuggestionsSerializer, **errors(400, *READ_ERRORS, 404, 409)},
    )
    @action(detail=True, methods=["get"])
    def tags(self, request: Request, pk: str | None = None) -> Response:
        asset = self.get_object()
        params = self.validated_query().validated_data
        suggestions = suggest_tags(
            asset.pk, limit=params["limit"], include_existing=params["include_existing"], visible=self.get_visible_assets()
        )
        return Response(s.TagSuggestionsSerializer({"results": suggestions}).data)


class SearchView(AssetSearchAPIMixin, generics.GenericAPIView):
    """Search assets by meaning: text, an image, an asset, or a mix."""

    throttle_scope = "search"
    serializer_class = s.SearchQuerySerializer
    query_serializer_classes = {"get": s.SimpleSearchSerializer}

    def get_queryset(self) -> QuerySet[Asset]:
        return self.get_visible_assets()

    def is_read_only_request(self, request: Request) -> bool:
        return True  # searching by POST reads, like GET

    @extend_schema(
        operation_id="search_text",
        tags=["search"],
        summary="Search by text",
        parameters=[s.SimpleSearchSerializer],
        responses={200: s.SearchResultsSerializer, **errors(400, *READ_ERRORS)},
    )
    def get(self, request: Request) -> Response:
        params = self.validated_query()
        return self.respond(params.get_query())

    @extend_schema(
        operation_id="search",
        tags=["search"],
        summary="Search with every option",
        description=inspect.cleandoc(s.SearchQuerySerializer.__doc__ or ""),
        request={"application/json": s.SearchQueryJSONSerializer, "multipart/form-data": s.SearchQuerySerializer},
        responses={200: s.SearchResultsSerializer, **errors(400, *READ_ERRORS, 409, 413)},
    )
    def post(self, request: Request) -> Response:
        params = self.validated(s.SearchQuerySerializer, request.data)
        return self.respond(params.get_query())

    def respond(self, query: Any) -> Response:
        return Response(s.SearchResultsSerializer(search(query), context=self.get_serializer_context()).data)


class AssetFileView(AssetSearchAPIMixin, generics.GenericAPIView):
    """Base of the views that send an asset's file: visibility checked like search, then
    :func:`assetsearch.files.serve_file` (true type, nosniff, CSP, the ``FILE_SERVING`` backend)."""

    queryset = Asset.objects.none()
    pagination_class = None

    def get_queryset(self) -> QuerySet[Asset]:
        return self.get_visible_assets()

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[Any, str]:
        # The success response is a file whatever the Accept header says; errors are JSON.
        return JSONRenderer(), JSONRenderer.media_type

    def get_file(self, asset: Asset) -> ServedFile:
        """The file of ``asset`` this view sends."""
        raise NotImplementedError

    def get(self, request: Request, pk: int) -> HttpResponseBase:
        asset = self.get_object()  # 404 for an asset hidden from this user
        try:
            return serve_file(request._request, self.get_file(asset))
        except FileNotFoundError:
            raise NotFound(MISSING_FILE_MESSAGE) from None


@extend_schema_view(
    get=extend_schema(
        tags=["assets"],
        summary="The original file of an asset",
        description="Sent with its detected type, `X-Content-Type-Options: nosniff` and a CSP that allows nothing.",
        responses={
            **{(200, mime): OpenApiResponse(OpenApiTypes.BINARY, description="The file as uploaded.") for mime in ORIGINAL_TYPES},
            304: OpenApiResponse(description="Not modified (If-None-Match)."),
            **errors(401, 403, 404, 429),
        },
    )
)
class AssetOriginalView(AssetFileView):
    """An asset's original file, for users who may see the asset."""

    def get_file(self, asset: Asset) -> ServedFile:
        return original_file(asset)


@extend_schema_view(
    get=extend_schema(
        tags=["assets"],
        summary="Thumbnail of an asset",
        parameters=[s.ThumbnailQuerySerializer],
        responses={
            (200, THUMBNAIL_TYPE): OpenApiResponse(OpenApiTypes.BINARY, description="A JPEG at most `size` pixels a side."),
            304: OpenApiResponse(description="Not modified (If-None-Match)."),
            **errors(400, 401, 403, 404, 429),
        },
    )
)
class AssetThumbnailView(AssetFileView):
    """A JPEG thumbnail of an asset, made on first request and cached in storage."""

    serializer_class = s.ThumbnailQuerySerializer
    query_serializer_classes = {"get": s.ThumbnailQuerySerializer}

    def get_file(self, asset: Asset) -> ServedFile:
        size = self.validated_query().validated_data.get("size")
        return thumbnail_file(asset, size)


# Any registered model --------------------------------------------------------


class IndexedObjectView(AssetSearchAPIMixin, generics.GenericAPIView):
    """Base of ``/api/objects/<app_label.model_name>/<id>/...``: the object, if its index lets the user see it.

    Reads need an authenticated user (or ``API_ANONYMOUS_SEARCH``); what the
    user sees is the model's index's ``visible_to`` (default: the model's
    ``view`` permission, moderation hiding).
    """

    permission_classes = [IndexedReadPermission]
    throttle_scope = "search"
    pagination_class = None
    serializer_class: type[BaseSerializer]

    def get_query_serializer_class(self) -> type[BaseSerializer] | None:
        return self.serializer_class  # each view takes its serializer's query parameters (and only those)

    def get_index(self) -> Any:
        try:
            return get_index(self.kwargs["model"])
        except NotRegistered as exc:
            raise NotFound(str(exc).strip('"')) from None

    def get_queryset(self) -> QuerySet:
        index = self.get_index()
        return index.visible_to(self.request.user, index.get_queryset())

    def get_object(self) -> Any:
        try:
            return self.get_queryset().get(pk=int(self.kwargs["pk"]))
        except (ObjectDoesNotExist, ValueError):
            raise NotFound("No such object (or it is hidden from you).") from None

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "visible": self.get_queryset()}

    def get_scope(self, params: Any) -> dict[str, Any]:
        """Which models a query from this object searches (its own, or the ``model`` parameter's), as whom."""
        user = self.request.user if self.request.user.is_authenticated else AnonymousUser()
        return {"models": [self.get_index().model], **params.get_search_scope(), "user": user}


@extend_schema(tags=["objects"])
class ObjectThumbnailView(IndexedObjectView):
    """A JPEG thumbnail of any registered object, made on first request and kept in its storage."""

    serializer_class = s.ThumbnailQuerySerializer

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[Any, str]:
        return JSONRenderer(), JSONRenderer.media_type

    @extend_schema(
        summary="Thumbnail of an indexed object",
        parameters=[s.ThumbnailQuerySerializer],
        responses={
            (200, THUMBNAIL_TYPE): OpenApiResponse(OpenApiTypes.BINARY, description="A JPEG at most `size` pixels a side."),
            304: OpenApiResponse(description="Not modified (If-None-Match)."),
            **errors(400, 401, 403, 404, 429),
        },
    )
    def get(self, request: Request, model: str, pk: int) -> HttpResponseBase:
        obj = self.get_object()  # 404 for an object hidden from this user
        size = self.validated_query().validated_data.get("size")
        try:
            return serve_file(request._request, thumbnail_file(obj, size, self.get_index()))
        except FileNotFoundError:
            raise NotFound(MISSING_FILE_MESSAGE) from None


@extend_schema(tags=["objects"])
class ObjectSimilarView(IndexedObjectView):
    """Objects that look like this one (of its model, or of the ``model`` parameter's)."""

    serializer_class = s.SimilarQuerySerializer

    @extend_schema(
        summary="Objects that look like this one",
        parameters=[s.SimilarQuerySerializer],
        responses={200: s.SearchResultsSerializer, **errors(400, *READ_ERRORS, 404, 409)},
    )
    def get(self, request: Request, model: str, pk: int) -> Response:
        obj = self.get_object()
        params = self.validated_query()
        query = Query(like=obj, limit=params.get_limit(), offset=params.get_offset(), filters=params.get_filters(), **self.get_scope(params))
        results = search(query)
        return Response(s.SearchResultsSerializer(results, context=self.get_serializer_context()).data)


@extend_schema(tags=["objects"])
class ObjectDuplicatesView(IndexedObjectView):
    """Near-duplicates of this object."""

    serializer_class = s.DuplicatesQuerySerializer

    @extend_schema(
        summary="Near-duplicates of this object",
        parameters=[s.DuplicatesQuerySerializer],
        responses={200: s.DuplicatesSerializer, **errors(400, *READ_ERRORS, 404, 409)},
    )
    def get(self, request: Request, model: str, pk: int) -> Response:
        obj = self.get_object()
        serializer = self.validated_query()
        params = serializer.validated_data
        threshold = params.get("threshold", app_settings.DUPLICATE_THRESHOLD)
        hits = near_duplicates(like=obj, threshold=threshold, limit=params["limit"], **self.get_scope(serializer))
        data = {"threshold": threshold, "results": hits}
        return Response(s.DuplicatesSerializer(data, context=self.get_serializer_context()).data)


@extend_schema(tags=["objects"])
class ObjectTagsView(IndexedObjectView):
    """Suggested tags for this object, from its model's tags and TAG_LABELS."""

    serializer_class = s.TagQuerySerializer

    @extend_schema(
        summary="Suggested tags for this object",
        parameters=[s.TagQuerySerializer],
        responses={200: s.TagSuggestionsSerializer, **errors(400, *READ_ERRORS, 404, 409)},
    )
    def get(self, request: Request, model: str, pk: int) -> Response:
        obj = self.get_object()
        params = self.validated_query().validated_data
        suggestions = suggest_tags(
            obj=obj, limit=params["limit"], include_existing=params["include_existing"], visible=self.get_queryset()
        )
        return Response(s.TagSuggestionsSerializer({"results": suggestions}).data)


# Moderation ---------------------------------------------------------------

MODERATION_READ_ERRORS = (401, 403, 429)
CONCEPT_NAME_TAKEN = OpenApiResponse(s.ErrorSerializer, description="Another concept has this name (`conflict`).")


@extend_schema(tags=["moderation"])
class ModerationQueryView(AssetSearchAPIMixin, generics.GenericAPIView):
    """Ad-hoc moderation query: assets ranked by the concept probability of free text."""

    permission_classes = [ModerationPermission]
    throttle_scope = "search"
    serializer_class = s.ModerationQuerySerializer
    query_serializer_classes = {"get": s.ModerationQuerySerializer}
    pagination_class = None

    def get_queryset(self) -> QuerySet[Asset]:
        return self.get_visible_assets()

    @extend_schema(
        summary="Rank assets by a concept described in words",
        parameters=[s.ModerationQuerySerializer],
        responses={200: s.ModerationResultsSerializer, **errors(400, *MODERATION_READ_ERRORS)},
    )
    def get(self, request: Request) -> Response:
        params = self.validated_query()
        hits = moderation_query(
            params.validated_data["q"], counter_prompts=params.validated_data.get("counter", ()),
            limit=params.get_limit(), offset=params.get_offset(), visible=self.get_visible_assets(),
        )
        return Response(s.ModerationResultsSerializer({"results": hits}, context=self.get_serializer_context()).data)


@extend_schema(tags=["moderation"])
@extend_schema_view(
    list=extend_schema(summary="List moderation concepts", responses={200: s.ModerationConceptSerializer(many=True), **errors(400, *MODERATION_READ_ERRORS)}),
    retrieve=extend_schema(summary="Get a moderation concept", responses={200: s.ModerationConceptSerializer, **errors(*MODERATION_READ_ERRORS, 404)}),
    create=extend_schema(
        summary="Create a moderation concept",
        description="An enabled concept re-scores the catalogue in the background; follow `rescore`.",
        responses={201: s.ModerationConceptSerializer, **errors(400, 401, 403, 429), 409: CONCEPT_NAME_TAKEN},
    ),
    update=extend_schema(
        summary="Replace a moderation concept",
        responses={200: s.ModerationConceptSerializer, **errors(400, 401, 403, 404, 429), 409: CONCEPT_NAME_TAKEN},
    ),
    partial_update=extend_schema(
        summary="Change a moderation concept",
        description="Saving an enabled concept re-scores the catalogue in the background; follow `rescore`.",
        responses={200: s.ModerationConceptSerializer, **errors(400, 401, 403, 404, 429), 409: CONCEPT_NAME_TAKEN},
    ),
)
class ModerationConceptViewSet(
    AssetSearchAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
    mixins.UpdateModelMixin, viewsets.GenericViewSet,
):
    """Moderation concepts; the ``post_save`` signal queues the re-score of an enabled one."""

    permission_classes = [ModerationConceptPermission]
    parser_classes = [JSONParser]
    serializer_class = s.ModerationConceptSerializer
    queryset = ModerationConcept.objects.order_by("name")
    query_serializer_classes = {"list": s.PageSerializer}


@extend_schema(tags=["moderation"])
@extend_schema_view(
    list=extend_schema(
        summary="List moderation flags, highest score first",
        parameters=[s.FlagFilterSerializer],
        responses={200: s.ModerationFlagSerializer(many=True), **errors(400, *MODERATION_READ_ERRORS)},
    ),
)
class ModerationFlagViewSet(AssetSearchAPIMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Flags raised by the concepts, and their bulk review."""

    permission_classes = [ModerationPermission]
    serializer_class = s.ModerationFlagSerializer
    filter_backends = [FlagFilterBackend]
    queryset = ModerationFlag.objects.none()  # for the schema; get_queryset() is what counts
    query_serializer_classes = {"list": s.FlagListQuerySerializer}

    def get_queryset(self) -> QuerySet[ModerationFlag]:
        flags = ModerationFlag.objects.select_related("entry__content_type", "concept").prefetch_related("entry__content_object")
        return flags.order_by("-score", "-created_at", "-pk")

    def get_serializer_class(self) -> type[BaseSerializer]:
        return s.FlagReviewSerializer if self.action == "review" else s.ModerationFlagSerializer

    @extend_schema(
        summary="Review flags in bulk",
        description="Sets `status` on every flag in `ids`, with you as reviewer and now as `reviewed_at`. "
        "Unknown ids are a 400 naming them; nothing is changed then.",
        request=s.FlagReviewSerializer,
        responses={200: s.FlagReviewResultSerializer, **errors(400, 401, 403, 429)},
    )
    @action(detail=False, methods=["post"], parser_classes=[JSONParser])
    def review(self, request: Request) -> Response:
        data = self.validated(s.FlagReviewSerializer, request.data).validated_data
        updated = ModerationFlag.objects.filter(pk__in=data["ids"]).review(data["status"], request.user)
        return Response(s.FlagReviewResultSerializer({"updated": updated, "status": data["status"]}).data)


class SwaggerView(SpectacularSwaggerView):
    """Swagger UI, from drf-spectacular-sidecar's bundled files when it is installed (works offline)."""

    url_name = "assetsearch:schema"
    schema = None  # a page, not an endpoint of the API

    @staticmethod
    def _swagger_ui_resource(filename: str) -> str:
        from django.apps import apps

        if apps.is_installed("drf_spectacular_sidecar"):
            from django.templatetags.static import static

            return static(f"drf_spectacular_sidecar/swagger-ui-dist/{filename}")
        return SpectacularSwaggerView._swagger_ui_resource(filename)

    @staticmethod
    def _swagger_ui_favicon() -> str:
        from django.apps import apps

        if apps.is_installed("drf_spectacular_sidecar"):
            from django.templatetags.static import static

            return static("drf_spectacular_sidecar/swagger-ui-dist/favicon-32x32.png")
        return SpectacularSwaggerView._swagger_ui_favicon()

