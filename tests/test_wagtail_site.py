"""The Wagtail integration's suite (tests/wagtail), run on the example Wagtail site's settings in a session of its own."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(importlib.util.find_spec("wagtail") is None, reason="Wagtail is not installed (the wagtail extra)")
def test_the_wagtail_suite_passes_on_a_real_wagtail_site() -> None:
    # One settings module per pytest session: the Wagtail site's INSTALLED_APPS differ from the project's.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/wagtail", "--ds=examples.wagtail_site.settings", "-p", "no:cacheprovider", "-q", "-rA"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
    assert " passed" in result.stdout and " failed" not in result.stdout
