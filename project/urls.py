from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from assetsearch.api.throttles import throttle_failed_logins

urlpatterns = [
    # Before the admin's own URLs: failed admin logins are throttled per address.
    path("admin/login/", throttle_failed_logins(admin.site.login)),
    path("admin/", admin.site.urls),
    path("", include("assetsearch.urls")),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
