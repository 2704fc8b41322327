"""The example Wagtail site's settings with a custom image model (``WAGTAILIMAGES_IMAGE_MODEL``).

A pytest session of its own, in a database of its own (a swapped image model
changes Wagtail's tables):

    scripts/test tests/wagtail_custom_image --ds=tests.wagtail_custom_image.settings

(``tests/test_wagtail_site.py`` runs it from the main suite.)
"""

from __future__ import annotations

import os

from examples.wagtail_site import settings as wagtail_site

# Every setting of the example Wagtail site (a star import, spelled out).
globals().update({name: value for name, value in vars(wagtail_site).items() if name.isupper()})

DATABASES = wagtail_site.DATABASES
if not os.environ.get("DATABASE_URL"):
    DATABASES["default"]["NAME"] = "wagtail_custom_image"

# The example site's page type points at Wagtail's stock image model; this site has none.
INSTALLED_APPS = [*[app for app in wagtail_site.INSTALLED_APPS if app != "examples.wagtail_site"], "tests.wagtail_custom_image"]
WAGTAILIMAGES_IMAGE_MODEL = "wagtail_custom_image.CreditedImage"
