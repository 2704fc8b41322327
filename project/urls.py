from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

# No /media/ route, even under DEBUG: the only media are assetsearch's files,
# served with permission checks at assets/<id>/original/ and .../thumbnail/.
urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("assetsearch.urls")),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
