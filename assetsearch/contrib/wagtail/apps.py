from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AssetSearchWagtailConfig(AppConfig):
    name = "assetsearch.contrib.wagtail"
    label = "assetsearch_wagtail"
    verbose_name = _("Asset search for Wagtail")

    def ready(self) -> None:
        from wagtail.images import get_image_model
        from wagtail.permissions import register_permission_policy

        from assetsearch.models import ModerationConcept
        from assetsearch.registry import is_registered, register

        from . import checks  # noqa: F401  (registers system checks)
        from .indexes import WagtailImageIndex
        from .viewsets import ModerationConceptPermissionPolicy

        # A site that declared its own index (ASSETSEARCH["INDEXES"], or its
        # own ready() before this one) keeps it.
        image_model = get_image_model()
        if not is_registered(image_model):
            register(image_model, WagtailImageIndex)
        # Before any Wagtail view asks for it (Wagtail would make a model-permissions fallback).
        register_permission_policy(ModerationConcept, ModerationConceptPermissionPolicy(ModerationConcept))
