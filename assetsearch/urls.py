"""URLs of assetsearch: include them at the site root.

    path("", include("assetsearch.urls")),

``api/...``: the REST API (needs ``rest_framework``, ``rest_framework.authtoken``
for token authentication, ``drf_spectacular`` and, for offline Swagger UI,
``drf_spectacular_sidecar`` in INSTALLED_APPS). ``assets/<id>/original/`` and
``assets/<id>/thumbnail/``: an asset's file and its JPEG thumbnails, with the
API's permissions and the visibility of search (the only way the app's files
are meant to be served; see :mod:`assetsearch.files`).
"""

from __future__ import annotations

from django.urls import include, path, re_path

from .api.exceptions import NotFoundView
from .api.views import AssetOriginalView, AssetThumbnailView

app_name = "assetsearch"

urlpatterns = [
    path("api/", include("assetsearch.api.urls")),
    path("assets/<int:pk>/original/", AssetOriginalView.as_view(), name="asset-original"),
    path("assets/<int:pk>/thumbnail/", AssetThumbnailView.as_view(), name="asset-thumbnail"),
    # Anything else under assets/ (ids like "0.5") is the API's JSON 404, as under api/.
    re_path(r"^assets/(?P<path>.*)$", NotFoundView.as_view(), name="asset-file-not-found"),
]
