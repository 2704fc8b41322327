"""URLs of assetsearch: include them at the site root.

    path("", include("assetsearch.urls")),

``api/...``: the REST API (needs ``rest_framework``, ``rest_framework.authtoken``
for token authentication, ``drf_spectacular`` and, for offline Swagger UI,
``drf_spectacular_sidecar`` in INSTALLED_APPS). ``assets/<id>/thumbnail/``:
JPEG thumbnails, with the API's permissions.
"""

from __future__ import annotations

from django.urls import include, path

from .api.views import AssetThumbnailView

app_name = "assetsearch"

urlpatterns = [
    path("api/", include("assetsearch.api.urls")),
    path("assets/<int:pk>/thumbnail/", AssetThumbnailView.as_view(), name="asset-thumbnail"),
]
