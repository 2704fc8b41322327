"""Start the whole product locally: ``python -m project.launch [--check] [--dev]``.

Embedded PostgreSQL and Redis (unless DATABASE_URL / CELERY_BROKER_URL are
set), migrations, an ``admin`` account (its password only in
``<var>/admin-password.txt``, mode 0600), the demo catalogue, static files,
then three supervised children: the web server (gunicorn, one process per
core with threads, the app preloaded; ``--dev``: Django's ``runserver``
with autoreload and DEBUG), a Celery worker and Celery beat (the sweep of
pending work).

A child that dies is restarted after a backoff (1, 2, 5, 10, 30 s; reset
once it has run for a minute) while the others keep running, so the site
keeps answering while a worker comes back. Each child runs in its own
process group, and a dead child's group is killed before it is started
again, so nothing it spawned is left behind; Ctrl-C or SIGTERM stops every
group, then Redis.

``--check`` waits until the site and its static files answer and the demo
catalogue is embedded, then stops.
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
from dataclasses import dataclass
from pathlib import Path

from . import embedded

# Seconds to wait before the n-th restart in a row of a child that keeps dying.
RESTART_BACKOFF = (1, 2, 5, 10, 30)
# A child that has run this long is healthy again: its next death restarts it after the first backoff.
STABLE_AFTER_SECONDS = 60
# gunicorn threads per web process: requests mostly wait on the database or on a short model call.
WEB_THREADS = 4


def log(message: str) -> None:
    print(f"[assetsearch] {message}", flush=True)


def ensure_admin(var: Path) -> str:
    """Create the ``admin`` superuser once; its password goes only to a 0600 file. Returns how to log in."""
    from django.contrib.auth import get_user_model

    password_file = var / "admin-password.txt"
    User = get_user_model()
    if not User.objects.filter(username="admin").exists():
        password = secrets.token_urlsafe(12)
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
        password_file.chmod(0o600)  # an older file may have had other bits
        User.objects.create_superuser("admin", "admin@example.com", password)
    if password_file.exists():
        return f"user 'admin', password in {password_file}"
    return "user 'admin' (existing account; reset with `manage.py changepassword admin`)"


def web_processes() -> int:
    """gunicorn processes: ``WEB_CONCURRENCY``, else one per core (2 to 8)."""
    if os.environ.get("WEB_CONCURRENCY"):
        return max(1, int(os.environ["WEB_CONCURRENCY"]))
    return min(8, max(2, os.cpu_count() or 1))


@dataclass
class Child:
    """One supervised process, in its own process group."""

    name: str
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0  # deaths in a row, for the backoff
    restart_at: float | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, process_group=0, cwd=embedded.ROOT)
        self.started_at = time.monotonic()
        self.restart_at = None
        log(f"started {self.name} (pid {self.process.pid})")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal_group(self, signum: int) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


class Supervisor:
    """Keeps its children running; restarts a dead one with backoff, leaving the others alone."""

    def __init__(self, children: list[Child]) -> None:
        self.children = children

    def start(self) -> None:
        for child in self.children:
            child.start()

    def check(self) -> None:
        """Restart children that died and whose backoff has passed; call it often."""
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.start()
                continue
            assert child.process is not None
            code = child.process.poll()
            if code is None:
                if child.failures and now - child.started_at > STABLE_AFTER_SECONDS:
                    child.failures = 0
                continue
            child.signal_group(signal.SIGKILL)  # whatever it spawned dies with it
            delay = RESTART_BACKOFF[min(child.failures, len(RESTART_BACKOFF) - 1)]
            child.failures += 1
            child.restart_at = now + delay
            log(f"{child.name} exited with status {code}; restarting it in {delay} s")

    def stop(self, timeout: float = 30) -> None:
        for child in self.children:
            child.restart_at = None
            if child.running:
                child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"{child.name} did not stop within {timeout:.0f} s; killing it")
            child.signal_group(signal.SIGKILL)  # the leader and anything left in its group
            child.process.wait()


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def wait_for_http(url: str, timeout: float, supervisor: Supervisor) -> None:
    """Wait until ``url`` answers 200, supervising the children meanwhile."""
    deadline = time.monotonic() + timeout
    while not answers(url):
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer within {timeout:.0f} s")
        supervisor.check()
        time.sleep(0.3)


def web_command(host: str, port: int, *, dev: bool = False) -> list[str]:
    """The web server's command line (run from the repository root); ``benchmarks/api.py`` measures this one."""
    python = sys.executable
    if dev:
        return [python, "manage.py", "runserver", f"{host}:{port}"]
    return [
        python, "-m", "gunicorn", "project.wsgi:application",
        "--bind", f"{host}:{port}",
        "--workers", str(web_processes()), "--worker-class", "gthread", "--threads", str(WEB_THREADS),
        "--preload", "--timeout", "60", "--graceful-timeout", "20", "--config", "project/gunicorn.conf.py",
    ]


def build_children(args: argparse.Namespace, var: Path, queue: str) -> list[Child]:
    prefix = embedded.die_with_parent()  # children get SIGTERM if this process is killed outright
    celery = [*prefix, sys.executable, "-m", "celery", "-A", "project"]
    return [
        Child("web", [*prefix, *web_command(args.host, args.port, dev=args.dev)]),
        Child("worker", [*celery, "worker", "--pool=solo", "-c", "1", "--loglevel=INFO", "-Q", queue,
                         "--without-gossip", "--without-mingle", "--without-heartbeat"]),
        Child("beat", [*celery, "beat", "--loglevel=INFO", "--schedule", str(var / "celerybeat-schedule")]),
    ]


def main(demo_command: str = "load_demo_catalogue") -> int:
    """Run the site; ``demo_command`` is the management command that loads its demo images."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="start, verify, stop")
    parser.add_argument("--dev", action="store_true", help="Django's runserver with autoreload and DEBUG, not gunicorn")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
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
    if args.dev:
        os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

    import django
    from django.core.management import call_command

    django.setup()
    from django.db import connections

    from assetsearch.conf import app_settings

    call_command("migrate", interactive=False, verbosity=0)
    log("database migrated")
    login = ensure_admin(var)
    call_command(demo_command, count=args.demo_count)
    if not args.dev:
        call_command("collectstatic", interactive=False, verbosity=0)
    connections.close_all()

    supervisor = Supervisor(build_children(args, var, app_settings.QUEUE or "celery"))

    def on_sigterm(*_: object) -> None:
        raise SystemExit(0)  # unwinds to the finally below, which stops the children

    signal.signal(signal.SIGTERM, on_sigterm)
    base = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}"
    try:
        supervisor.start()
        wait_for_http(f"{base}/admin/login/", timeout=120, supervisor=supervisor)
        log(f"open {base}/admin/  and log in as {login}")
        log(f"API docs: {base}/api/docs/")
        if args.check:
            return check(base, supervisor)
        log("press Ctrl-C to stop")
        while True:
            supervisor.check()
            if redis is not None and redis.process is not None and redis.process.poll() is not None:
                log("embedded Redis exited; starting it again")
                redis.process = None
                try:
                    redis.start()
                except RuntimeError as exc:
                    log(f"could not start Redis ({exc}); trying again")
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C or SIGTERM must not cut the shutdown short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop()
        if redis:
            redis.stop()


def check(base: str, supervisor: Supervisor) -> int:
    """``--check``: static files are served and the demo catalogue gets embedded."""
    from assetsearch.models import IndexEntry  # the entries of every indexed model

    wait_for_http(f"{base}/static/admin/css/base.css", timeout=30, supervisor=supervisor)
    deadline = time.monotonic() + 600
    while IndexEntry.objects.pending().exists():
        if time.monotonic() > deadline:
            log("demo catalogue not embedded within 10 minutes")
            return 1
        supervisor.check()
        time.sleep(1)
    counts = {"ready": IndexEntry.objects.ready().count(), "failed": IndexEntry.objects.failed().count()}
    log(f"check passed: site and static files answer, demo catalogue embedded ({counts})")
    return 0 if counts["failed"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
