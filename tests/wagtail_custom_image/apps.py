from __future__ import annotations

from django.apps import AppConfig


class CustomImageConfig(AppConfig):
    name = "tests.wagtail_custom_image"
    label = "wagtail_custom_image"
    default_auto_field = "django.db.models.BigAutoField"
