"""Start the whole product locally: ``python -m project.launch [--check]``.

Embedded PostgreSQL and Redis (unless DATABASE_URL / CELERY_BROKER_URL are
set), migrations, an ``admin`` account, the demo catalogue, a Celery worker
(with beat, for the pending sweep) and the web server. ``--check`` waits
until the site answers and the demo catalogue is embedded, then stops.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from . import embedded


def log(message: str) -> None:
    print(f"[assetsearch] {message}", flush=True)


def ensure_admin(var: Path) -> str:
    from django.contrib.auth import get_user_model

    password_file = var / "admin-password.txt"
    User = get_user_model()
    if User.objects.filter(username="admin").exists():
        if password_file.exists():
            return f"user 'admin', password in {password_file}"
        return "user 'admin' (existing account; reset with `manage.py changepassword admin`)"
    password = secrets.token_urlsafe(12)
    User.objects.create_superuser("admin", "admin@example.com", password)
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    return f"user 'admin', password {password} (saved in {password_file})"


def wait_for_http(url: str, timeout: float, children: list[subprocess.Popen[bytes]]) -> None:
    """Wait until ``url`` answers 200; give up early if a child process died."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if any(child.poll() is not None for child in children):
            raise SystemExit(f"a child process exited before {url} answered")
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer within {timeout:.0f} s")
        time.sleep(0.3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="start, verify, stop")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--demo-count", type=int, default=int(os.environ.get("ASSETSEARCH_DEMO_COUNT", "60")))
    args = parser.parse_args()

    var = embedded.var_dir()
    redis = None
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = embedded.postgres_url()
        log(f"embedded PostgreSQL (pgvector) in {var / 'pgdata'}")
    if not os.environ.get("CELERY_BROKER_URL"):
        redis, os.environ["CELERY_BROKER_URL"] = embedded.start_redis(var)
        log(f"embedded Redis on {redis.socket}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

    import django
    from django.core.management import call_command

    django.setup()
    from assetsearch.conf import app_settings

    call_command("migrate", interactive=False, verbosity=0)
    log("database migrated")
    login = ensure_admin(var)
    call_command("load_demo_catalogue", count=args.demo_count)

    # Children run in their own process groups, so Ctrl-C reaches only this
    # process, which then stops them in order (web and worker, then Redis);
    # and they get SIGTERM if this process is killed outright.
    python = sys.executable
    prefix = embedded.die_with_parent()
    children = [
        subprocess.Popen(
            [*prefix, python, "-m", "celery", "-A", "project", "worker", "--pool=solo", "-c", "1", "--loglevel=INFO",
             "-Q", app_settings.QUEUE or "celery", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-B", "--schedule", str(var / "celerybeat-schedule")],
            process_group=0,
            cwd=embedded.ROOT,
        ),
        subprocess.Popen(
            [*prefix, python, "manage.py", "runserver", f"127.0.0.1:{args.port}", "--noreload"],
            process_group=0,
            cwd=embedded.ROOT,
        ),
    ]

    def stop(*_: object) -> None:
        # A second Ctrl-C or SIGTERM must not cut the shutdown short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if redis:
            redis.stop()

    def on_sigterm(*_: object) -> None:
        raise SystemExit(0)  # unwinds to the finally below, which stops the children

    signal.signal(signal.SIGTERM, on_sigterm)
    url = f"http://127.0.0.1:{args.port}/admin/"
    try:
        wait_for_http(f"http://127.0.0.1:{args.port}/admin/login/", timeout=120, children=children)
        log(f"open {url}  and log in as {login}")
        log(f"API docs: http://127.0.0.1:{args.port}/api/docs/")
        if args.check:
            from assetsearch.models import Asset

            deadline = time.monotonic() + 600
            while Asset.objects.pending().exists():
                if time.monotonic() > deadline:
                    log("demo catalogue not embedded within 10 minutes")
                    return 1
                time.sleep(1)
            counts = {"ready": Asset.objects.ready().count(), "failed": Asset.objects.failed().count()}
            log(f"check passed: site answers, demo catalogue embedded ({counts})")
            return 0 if counts["failed"] == 0 else 1
        log("press Ctrl-C to stop")
        while all(child.poll() is None for child in children):
            time.sleep(1)
        log("a child process exited; stopping")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop()


if __name__ == "__main__":
    raise SystemExit(main())
