"""The REST API's URLs; ``assetsearch.urls`` mounts them under ``api/``."""

from __future__ import annotations

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from .exceptions import NotFoundView
from .health import HealthView
from .schema import AssetSearchSchemaView
from .views import AssetViewSet, ModerationConceptViewSet, ModerationFlagViewSet, ModerationQueryView, SearchView, SwaggerView

router = SimpleRouter()
router.register("assets", AssetViewSet, basename="asset")
router.register("moderation/concepts", ModerationConceptViewSet, basename="moderation-concept")
router.register("moderation/flags", ModerationFlagViewSet, basename="moderation-flag")

urlpatterns = [
    *router.urls,
    path("search/", SearchView.as_view(), name="search"),
    path("moderation/query/", ModerationQueryView.as_view(), name="moderation-query"),
    path("health/", HealthView.as_view(), name="health"),
    path("schema/", AssetSearchSchemaView.as_view(), name="schema"),
    path("docs/", SwaggerView.as_view(), name="docs"),
    # Last: anything else under api/ (unknown routes, ids like 0.5) is the API's JSON 404.
    re_path(r"^(?P<path>.*)$", NotFoundView.as_view(), name="not-found"),
]
