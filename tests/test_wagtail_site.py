"""The Wagtail integration's suites, each in a pytest session of its own: tests/wagtail on the example Wagtail site's settings,
tests/wagtail_custom_image on the same site with a custom image model."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(importlib.util.find_spec("wagtail") is None, reason="Wagtail is not installed (the wagtail extra)")
@pytest.mark.parametrize(
    ("folder", "settings"),
    [
        ("tests/wagtail", "examples.wagtail_site.settings"),
        # A custom image model (WAGTAILIMAGES_IMAGE_MODEL) swaps Wagtail's tables: a site, and a session, of its own.
        ("tests/wagtail_custom_image", "tests.wagtail_custom_image.settings"),
    ],
)
def test_the_wagtail_suite_passes_on_a_real_wagtail_site(folder: str, settings: str) -> None:
    # One settings module per pytest session: the Wagtail site's INSTALLED_APPS differ from the project's.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", folder, f"--ds={settings}", "-p", "no:cacheprovider", "-q", "-rA"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
    assert " passed" in result.stdout and " failed" not in result.stdout
