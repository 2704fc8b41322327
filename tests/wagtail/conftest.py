"""The Wagtail tests run on the example Wagtail site's settings, in a pytest session of their own:

    scripts/test tests/wagtail --ds=examples.wagtail_site.settings

(``tests/test_wagtail_site.py`` runs exactly that from the main suite). Under
any other settings this folder is not collected.
"""

from __future__ import annotations

from django.conf import settings

if "assetsearch.contrib.wagtail" not in settings.INSTALLED_APPS:
    collect_ignore_glob = ["test_*.py"]
