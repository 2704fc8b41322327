from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from assetsearch.api.throttles import throttle_failed_logins

# No /media/ route, even under DEBUG: the only media are assetsearch's files,
# served with permission checks at assets/<id>/original/ and .../thumbnail/.
urlpatterns = [
    # Before the admin's own URLs: failed admin logins are throttled per address.
    path("admin/login/", throttle_failed_logins(admin.site.login)),
    path("admin/", admin.site.urls),
    path("", include("assetsearch.urls")),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
