"""URLs of the Wagtail integration; :mod:`.wagtail_hooks` mounts them in the Wagtail admin."""

from __future__ import annotations

from django.urls import path
from wagtail.images import get_image_model
from wagtail.images.views.chooser import viewset as wagtail_image_chooser

from . import views

app_name = "assetsearch_wagtail"

urlpatterns = [
    path("visual-search/", views.VisualSearchView.as_view(), name="visual_search"),
    path("moderation/", views.ModerationQueueView.as_view(), name="moderation_queue"),
    path("moderation/query/", views.ModerationQueryView.as_view(), name="moderation_query"),
    path("status/", views.EmbeddingStatusView.as_view(), name="embedding_status"),
]

# The same name and prefix as Wagtail's chooser, so its views link to Wagtail's URL names.
_chooser = views.SemanticImageChooserViewSet(
    wagtail_image_chooser.name, model=get_image_model(), url_prefix=wagtail_image_chooser.url_prefix
)

# The paths of Wagtail's image library and chooser (wagtail.images' admin_urls
# and chooser viewset), served by the semantic views; the names stay Wagtail's
# (reverse("wagtailimages:index") gives the same path, which resolves here).
image_view_overrides = [
    path("images/", views.SemanticImageIndexView.as_view(), name="assetsearch_wagtail_images_index"),
    path("images/results/", views.SemanticImageIndexView.as_view(results_only=True), name="assetsearch_wagtail_images_index_results"),
    path("images/<int:image_id>/", views.SemanticImageEditView.as_view(), name="assetsearch_wagtail_images_edit"),
    path(f"{_chooser.url_prefix}/", _chooser.choose_view, name="assetsearch_wagtail_images_chooser"),
    path(f"{_chooser.url_prefix}/results/", _chooser.choose_results_view, name="assetsearch_wagtail_images_chooser_results"),
]
