"""Settings of the example Wagtail site: the example project's services, plus Wagtail.

The database is the embedded PostgreSQL of ``project.settings`` (or
``DATABASE_URL``), in a database of its own (``wagtail_site``) so the two
example sites never share tables; the broker, the cache and assetsearch's
settings are the example project's.
"""

from __future__ import annotations

import os

from project.settings import *  # noqa: F403
from project.settings import DATABASES, INSTALLED_APPS

if not os.environ.get("DATABASE_URL"):
    DATABASES["default"]["NAME"] = "wagtail_site"

WAGTAIL_APPS = [
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
]

INSTALLED_APPS = [
    *[app for app in INSTALLED_APPS if app not in ("project", "tests.hostapp")],
    *WAGTAIL_APPS,
    # After wagtail.images and assetsearch: Wagtail's images are indexed in place.
    "assetsearch.contrib.wagtail",
    "examples.wagtail_site",
]


ROOT_URLCONF = "examples.wagtail_site.urls"
WAGTAIL_SITE_NAME = "assetsearch Wagtail example"
WAGTAILADMIN_BASE_URL = os.environ.get("WAGTAILADMIN_BASE_URL", "http://127.0.0.1:8000")
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}
