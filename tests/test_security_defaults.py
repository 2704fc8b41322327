"""The example site's safe defaults, and throttled authentication failures."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys

import pytest
from django.test import Client
from rest_framework.test import APIClient

from .api_helpers import _fresh_throttles, assetsearch_settings, editor, make_user, token_client  # noqa: F401  (fixtures)
from .server_helpers import ROOT

SHOW_SETTINGS = "import json, django; django.setup(); from django.conf import settings as s; print(json.dumps([s.DEBUG, s.SECRET_KEY]))"


def site_settings(var, **env: str) -> tuple[bool, str]:
    """DEBUG and SECRET_KEY of the example site in a fresh process with ``env``."""
    base = {k: v for k, v in os.environ.items() if k not in ("DJANGO_DEBUG", "DJANGO_SECRET_KEY")}
    base.update(DJANGO_SETTINGS_MODULE="project.settings", ASSETSEARCH_VAR_DIR=str(var),
                DATABASE_URL="postgres://nobody@localhost:1/none", CELERY_BROKER_URL="redis://localhost:1/0", **env)
    done = subprocess.run([sys.executable, "-c", SHOW_SETTINGS], env=base, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    debug, key = json.loads(done.stdout.strip().splitlines()[-1])
    return debug, key


def test_debug_is_off_unless_asked_for(tmp_path):
    assert site_settings(tmp_path)[0] is False
    assert site_settings(tmp_path, DJANGO_DEBUG="1")[0] is True


def test_the_secret_key_is_random_per_install_and_private(tmp_path):
    first, second, other = tmp_path / "a", tmp_path / "a", tmp_path / "b"
    key = site_settings(first)[1]
    assert len(key) >= 50
    assert site_settings(second)[1] == key  # kept, not made again
    assert site_settings(other)[1] != key  # another install, another key
    assert stat.S_IMODE((first / "secret-key").stat().st_mode) == 0o600
    given = secrets.token_urlsafe(50)
    assert site_settings(tmp_path / "c", DJANGO_SECRET_KEY=given)[1] == given
    assert not (tmp_path / "c" / "secret-key").exists()


def test_check_deploy_is_clean_for_a_site_configured_as_the_readme_says(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_DEBUG"}
    env.update(DJANGO_SETTINGS_MODULE="project.settings", ASSETSEARCH_VAR_DIR=str(tmp_path), DJANGO_HTTPS="1",
               DJANGO_SECRET_KEY=secrets.token_urlsafe(50), DJANGO_ALLOWED_HOSTS="assets.example.com",
               DATABASE_URL="postgres://nobody@localhost:1/none", CELERY_BROKER_URL="redis://localhost:1/0")
    done = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


@pytest.mark.django_db
def test_failed_tokens_are_throttled_per_address_before_any_token_is_checked(editor):
    with assetsearch_settings(THROTTLE_RATES={"auth_failure": "3/min"}):
        guesser = APIClient(REMOTE_ADDR="203.0.113.7")
        for _ in range(3):
            guesser.credentials(HTTP_AUTHORIZATION=f"Token {secrets.token_hex(20)}")
            assert guesser.get("/api/assets/").status_code == 401
        response = guesser.get("/api/assets/")
        assert response.status_code == 429
        assert int(response["Retry-After"]) > 0
        assert response.json()["error"]["code"] == "throttled"
        # Over the rate, even the right token gets no answer from that address...
        right = token_client(editor)
        assert right.get("/api/assets/", REMOTE_ADDR="203.0.113.7").status_code == 429
        # ...while other addresses are served.
        assert right.get("/api/assets/", REMOTE_ADDR="198.51.100.1").status_code == 200


@pytest.mark.django_db
def test_failed_admin_logins_are_throttled_per_address(admin_user):
    with assetsearch_settings(THROTTLE_RATES={"auth_failure": "3/min"}):
        client = Client(REMOTE_ADDR="203.0.113.8")
        for _ in range(3):
            assert client.post("/admin/login/", {"username": "admin", "password": "wrong"}).status_code == 200
        response = client.post("/admin/login/", {"username": "admin", "password": "password"})
        assert response.status_code == 429 and int(response["Retry-After"]) > 0
        other = Client(REMOTE_ADDR="198.51.100.2")
        assert other.post("/admin/login/", {"username": "admin", "password": "password"}).status_code == 302
