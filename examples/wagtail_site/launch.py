"""Start the example Wagtail site: ``scripts/run-wagtail [--check] [--port N]``.

The example project's launcher (``project.launch``) with the Wagtail site's
settings and demo images: embedded PostgreSQL and Redis in a folder of
their own (``<var>/wagtail_site``, so the two example sites never mix),
migrations, an ``admin`` superuser, the demo images as Wagtail images, a
Celery worker and the web server; the Wagtail admin is at ``/admin/``.
"""

from __future__ import annotations

import os

from project import embedded


def run() -> int:
    os.environ["ASSETSEARCH_VAR_DIR"] = str(embedded.var_dir() / "wagtail_site")
    os.environ["DJANGO_SETTINGS_MODULE"] = "examples.wagtail_site.settings"
    from project.launch import main

    return main(demo_command="load_wagtail_demo_images")


if __name__ == "__main__":
    raise SystemExit(run())
