"""The example site's one page type: a page with an image, so editors meet the image chooser."""

from __future__ import annotations

from django.db import models
from wagtail.admin.panels import FieldPanel
from wagtail.fields import RichTextField
from wagtail.models import Page


class ArticlePage(Page):
    hero_image = models.ForeignKey(
        "wagtailimages.Image", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
    )
    body = RichTextField(blank=True)

    content_panels = [*Page.content_panels, FieldPanel("hero_image"), FieldPanel("body")]
