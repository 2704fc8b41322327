"""The REST API's URLs; ``assetsearch.urls`` mounts them under ``api/``."""

from __future__ import annotations

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from .exceptions import NotFoundView
from .health import HealthView
from .schema import AssetSearchSchemaView
from .views import (
    AssetViewSet, ModerationConceptViewSet, ModerationFlagViewSet, ModerationQueryView, ObjectDuplicatesView, ObjectSimilarView,
    ObjectTagsView, ObjectThumbnailView, SearchView, SwaggerView,
)

router = SimpleRouter()
router.register("assets", AssetViewSet, basename="asset")
router.register("moderation/concepts", ModerationConceptViewSet, basename="moderation-concept")
router.register("moderation/flags", ModerationFlagViewSet, basename="moderation-flag")

urlpatterns = [
    *router.urls,
    path("search/", SearchView.as_view(), name="search"),
    # Any registered model's objects, by "app_label.model_name".
    path("objects/<str:model>/<int:pk>/thumbnail/", ObjectThumbnailView.as_view(), name="object-thumbnail"),
    path("objects/<str:model>/<int:pk>/similar/", ObjectSimilarView.as_view(), name="object-similar"),
    path("objects/<str:model>/<int:pk>/duplicates/", ObjectDuplicatesView.as_view(), name="object-duplicates"),
    path("objects/<str:model>/<int:pk>/tags/", ObjectTagsView.as_view(), name="object-tags"),
    path("moderation/query/", ModerationQueryView.as_view(), name="moderation-query"),
    path("health/", HealthView.as_view(), name="health"),
    path("schema/", AssetSearchSchemaView.as_view(), name="schema"),
    path("docs/", SwaggerView.as_view(), name="docs"),
    # Last: anything else under api/ (unknown routes, ids like 0.5) is the API's JSON 404.
    re_path(r"^(?P<path>.*)$", NotFoundView.as_view(), name="not-found"),
]
