"""Signal handlers: they only enqueue, after commit."""

from __future__ import annotations

from typing import Any

from .conf import app_settings
from .models import Asset, ModerationConcept
from .moderation import request_rescore
from .pipeline import request_embedding


def asset_saved(sender: type[Asset], instance: Asset, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if raw:  # loaddata: the fixture's state is what it is
        return
    if app_settings.AUTO_EMBED and getattr(instance, "file_changed", False):
        request_embedding(instance)


def concept_saved(sender: type[ModerationConcept], instance: ModerationConcept, raw: bool = False, **kwargs: Any) -> None:
    if raw or not instance.enabled:
        return
    request_rescore(instance)
