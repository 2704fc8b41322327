from __future__ import annotations

from django.apps import AppConfig


class WagtailSiteConfig(AppConfig):
    name = "examples.wagtail_site"
    label = "wagtail_site"
    default_auto_field = "django.db.models.BigAutoField"
