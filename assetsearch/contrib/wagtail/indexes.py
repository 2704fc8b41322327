"""The index of Wagtail's image model (``wagtail.images.get_image_model()``, custom models included)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.postgres.aggregates import StringAgg
from django.db import models
from django.urls import NoReverseMatch

from assetsearch.conf import app_settings
from assetsearch.indexes import BaseImageIndex
from assetsearch.querysets import hide_flagged
from assetsearch.urlreverse import reverse_pk

#: What a Wagtail editor may do to an image for it to appear in their results:
#: choose it (the chooser) or change it (the image library).
SEARCH_ACTIONS = ("choose", "change")
#: The annotation holding an image's tag names, for the keyword search.
TAG_NAMES = "assetsearch_tag_names"
#: The rendition filter of a thumbnail of ``size`` pixels (Wagtail's own listing uses max-165x165).
RENDITION_FILTER = "max-{size}x{size}"


def get_image_permission_policy() -> Any:
    """The permission policy Wagtail applies to its image model (collections, ownership)."""
    from wagtail.images import get_image_model
    from wagtail.permissions import policy_registry

    return policy_registry.get_by_type(get_image_model())


class WagtailImageIndex(BaseImageIndex):
    """Wagtail's images, indexed in place: the file stays Wagtail's (``owns_files`` False).

    Text is the title and the taggit tags; filters are the collection
    (``Filters(fields={"collection": id})``), tags, the uploader and the
    upload date; a user sees the images of the collections they may choose or
    change images in (Wagtail's collection permissions), less moderation's
    hidden ones; thumbnails are Wagtail renditions. Subclass it and name the
    subclass in ``ASSETSEARCH["INDEXES"]`` to change any of that.
    """

    image_field = "file"
    title_field = "title"
    # The tag names are one string per image, annotated by keyword_ranking().
    text_fields = ("title", TAG_NAMES)
    tags_field = "tags"
    date_field = "created_at"
    owner_field = "uploaded_by_user"
    filter_fields = ("collection",)
    owns_files = False

    def get_queryset(self) -> models.QuerySet:
        return self.model._default_manager.select_related("collection")

    # Presentation ------------------------------------------------------------

    def thumbnail_url(self, obj: models.Model, size: int | None = None) -> str:
        """The URL of a Wagtail rendition (made once, kept by Wagtail like any other)."""
        size = int(size or app_settings.THUMBNAIL_DEFAULT_SIZE)
        return obj.get_rendition(RENDITION_FILTER.format(size=size)).url

    def admin_url(self, obj: models.Model) -> str:
        """The image's edit page in the Wagtail admin."""
        try:
            return reverse_pk("wagtailimages:edit", obj.pk)
        except NoReverseMatch:
            return ""

    def serialize(self, obj: models.Model, context: Mapping[str, Any]) -> dict[str, Any] | None:
        return {
            "collection": obj.collection_id,
            "tags": sorted(tag.name for tag in obj.tags.all()),
            "width": obj.width,
            "height": obj.height,
        }

    # Visibility --------------------------------------------------------------

    def visible_to(self, user: Any | None, queryset: models.QuerySet) -> models.QuerySet:
        """The images of collections ``user`` may choose or change images in, less the hidden ones.

        Wagtail's own policy decides (superusers, group collection
        permissions, ownership); moderation then hides what a hide-concept
        flagged from users without ``assetsearch.moderate_asset``.
        """
        if user is None:
            return queryset
        allowed = get_image_permission_policy().instances_user_has_any_permission_for(user, SEARCH_ACTIONS)
        return hide_flagged(queryset.filter(pk__in=allowed.order_by().values("pk")), user)

    # Keywords ----------------------------------------------------------------

    def keyword_ranking(self, queryset: models.QuerySet, text: str, *, depth: int) -> list[tuple[int, float]]:
        """The default full text over the title (weight A) and the tag names (B), which taggit keeps in another table."""
        tags = (
            self.model._default_manager.filter(pk=models.OuterRef("pk"))
            .annotate(names=StringAgg("tags__name", delimiter=" ", default=models.Value("")))
            .values("names")[:1]
        )
        tag_names = models.functions.Coalesce(models.Subquery(tags), models.Value(""), output_field=models.TextField())
        return super().keyword_ranking(queryset.annotate(**{TAG_NAMES: tag_names}), text, depth=depth)
