"""Collected only under this folder's settings (``--ds=tests.wagtail_custom_image.settings``)."""

from __future__ import annotations

from django.conf import settings

if getattr(settings, "WAGTAILIMAGES_IMAGE_MODEL", "") != "wagtail_custom_image.CreditedImage":
    collect_ignore_glob = ["test_*.py"]
