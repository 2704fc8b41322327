"""Template filters of the assetsearch admin pages."""

from __future__ import annotations

import math

from django import template
from django.urls import reverse
from django.utils.http import urlencode

from django.db.models import Model

from ..models import Asset
from ..registry import get_index

register = template.Library()


@register.filter
def thumbnail_url(obj: Model, size: int | str | None = None) -> str:
    """``{{ obj|thumbnail_url:256 }}``: the URL of a thumbnail of any registered object (its index's)."""
    return get_index(obj).thumbnail_url(obj, int(size) if size else None)


@register.filter
def change_url(obj: Model) -> str:
    """``{{ obj|change_url }}``: the object's admin change page ("" when the admin has none)."""
    return get_index(obj).admin_url(obj)


@register.filter
def model_label(obj: Model) -> str:
    """``app_label.model_name`` of a registered object."""
    return get_index(obj).label


@register.filter
def score_percent(score: float | None) -> int:
    """A similarity or probability as a 0-100 bar width (negative and NaN scores: 0)."""
    if score is None or not math.isfinite(score):
        return 0
    return round(max(0.0, min(1.0, float(score))) * 100)


@register.filter
def score(value: float | None) -> str:
    """Three decimals, or a dash for a missing score."""
    if value is None or not math.isfinite(value):
        return "\u2013"
    return f"{value:.3f}"


@register.simple_tag(takes_context=True)
def find_similar_url(context: template.Context, asset: Asset) -> str:
    """The visual search page asking for assets like ``asset``."""
    request = context.get("request")
    current_app = getattr(request, "current_app", None)
    return reverse("admin:assetsearch_asset_visual_search", current_app=current_app) + "?" + urlencode({"asset": asset.pk})
