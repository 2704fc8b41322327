"""System checks of the Wagtail integration (IDs ``assetsearch_wagtail.*``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.urls import NoReverseMatch, Resolver404, resolve, reverse


@checks.register()
def check_installed_after_wagtail_images(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    apps = list(settings.INSTALLED_APPS)
    if "wagtail.images" not in apps:
        return [
            checks.Error(
                "assetsearch.contrib.wagtail needs wagtail.images in INSTALLED_APPS.",
                hint="Add 'wagtail.images' (and the rest of Wagtail) before 'assetsearch.contrib.wagtail'.",
                id="assetsearch_wagtail.E001",
            )
        ]
    return []


@checks.register(checks.Tags.urls)
def check_image_views_replaced(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Wagtail's image library and chooser URLs reach the semantic views (a Wagtail upgrade could move them)."""
    from . import views

    expected = {
        "wagtailimages:index": views.SemanticImageIndexView,
        "wagtailimages_chooser:choose": views.SemanticImageChooseView,
    }
    problems = []
    for name, view_class in expected.items():
        try:
            match = resolve(reverse(name))
        except (NoReverseMatch, Resolver404):
            continue  # the Wagtail admin's URLs are not mounted in this project
        if getattr(match.func, "view_class", None) is not view_class:
            problems.append(
                checks.Warning(
                    f"{name} is not served by assetsearch's {view_class.__name__}: its search box is Wagtail's keyword search only.",
                    hint="Another app replaces this Wagtail view, or Wagtail moved its URL; see assetsearch.contrib.wagtail.",
                    id="assetsearch_wagtail.W001",
                )
            )
    return problems
