"""The app as a site meets it: the wheel installed into a fresh ``startproject`` site.

For each supported Django (5.2 on Python 3.11, the newest 6.x on Python 3.12
or 3.13) the test builds the wheel, installs it (not editable) into a fresh
virtualenv, generates a site with ``django-admin startproject`` and a custom
``AUTH_USER_MODEL``, and pastes the README's "Install in your site" blocks
into its files exactly as they stand (nothing from ``project/``). Then, as a
site would: ``migrate``, ``check --deploy`` (no message from the app, DRF or
drf-spectacular), a Celery worker of the site's own Celery app, gunicorn, an
API upload that becomes ``ready``, a text search that finds it, the admin's
changelist search, and ``/api/schema/`` validated as OpenAPI 3. The Django 6
site also sets a hostile ``REST_FRAMEWORK`` of its own (DRF's schema class,
AllowAny, page size 2), which must change nothing.

The site uses this test run's PostgreSQL server (a database of its own) and
a Redis server of its own; the settings read their addresses from the environment, as the
README's block does. Each virtualenv holds a whole torch build (about 6 GB
with the CUDA wheels the registry serves for Linux), so it is deleted when
its test ends: a machine that runs the suite again and again keeps no copies.
Set ``ASSETSEARCH_HOST_KEEP_VENV=1`` to keep and reuse the virtualenvs
between runs while working on this file (CI always builds fresh ones).
Figures (install time, time to the first search, venv size) are printed and
written to ``<var>/host-install/<site>/figures.json``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from project.embedded import RedisServer

from .utils import image_file, wait_for

pytestmark = pytest.mark.host

ROOT = Path(__file__).resolve().parent.parent
README_BLOCK = re.compile(r"<!-- host-test: (?P<file>[\w/.]+) -->\n```python\n(?P<code>.*?)```", re.S)
# Message ids a site's check --deploy must not show: the app's and those of the frameworks it brings.
APP_CHECK_IDS = re.compile(r"\((assetsearch|drf_spectacular|rest_framework)\.[EW]\d+\)")
HOSTILE_REST_FRAMEWORK = """
# The site's own DRF defaults; the app's API must not change with them.
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "rest_framework.schemas.openapi.AutoSchema",
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 2,
}
"""
CUSTOM_USER = """
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    nickname = models.CharField(max_length=50, blank=True)
"""


@dataclass
class HostSite:
    """One fresh site: its virtualenv, folder, environment and server processes."""

    name: str
    python: str
    django: str
    extra_settings: str = ""
    root: Path = field(init=False)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        var = Path(os.environ.get("ASSETSEARCH_VAR_DIR") or ROOT / "var").resolve()
        self.root = var / "host-install" / self.name

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def site(self) -> Path:
        return self.root / "site"

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def run(self, *args: str, timeout: float = 900, cwd: Path | None = None) -> str:
        result = subprocess.run(
            args, cwd=cwd or self.site, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{' '.join(args)} exited {result.returncode}:\n{output[-6000:]}"
        return output

    def manage(self, *args: str, timeout: float = 600) -> str:
        return self.run(self.bin("python"), "manage.py", *args, timeout=timeout)

    def start(self, log: str, *args: str) -> subprocess.Popen[bytes]:
        with open(self.root / log, "wb") as out:
            process = subprocess.Popen(args, cwd=self.site, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def log(self, name: str) -> str:
        path = self.root / name
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def find_python(*versions: str) -> str | None:
    """An interpreter of one of ``versions``: on PATH, else pyenv's."""
    for version in versions:
        candidates = [shutil.which(f"python{version}")]
        pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
        candidates += sorted(map(str, pyenv_root.glob(f"versions/{version}*/bin/python{version}")), reverse=True)
        for candidate in filter(None, candidates):
            if subprocess.run([candidate, "--version"], capture_output=True).returncode == 0:
                return candidate
    return None


def readme_blocks() -> dict[str, str]:
    """The README's "Install in your site" blocks, by the file they go into."""
    blocks = {m["file"]: m["code"] for m in README_BLOCK.finditer((ROOT / "README.md").read_text())}
    assert {"mysite/settings.py", "mysite/celery.py", "mysite/__init__.py", "mysite/urls.py"} <= set(blocks), blocks.keys()
    return blocks


def torch_pins() -> list[str]:
    """The project's torch builds (constraints.txt): a site picks its own; this one picks the machine's."""
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return [line for line in lines if re.match(r"(torch|torchvision)==", line)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_wheel(out: Path) -> Path:
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
        check=True, capture_output=True, timeout=600,
    )
    (path,) = out.glob("assetsearch-*.whl")
    return path


@pytest.fixture(scope="session")
def postgres_server() -> dict[str, str]:
    """Where this run's PostgreSQL listens, as the README's DATABASES block reads it."""
    from django.db import connections

    params = connections["default"].get_connection_params()  # the URL's ?host= lands here, not in HOST
    return {
        "POSTGRES_HOST": str(params.get("host") or ""),
        "POSTGRES_PORT": str(params.get("port") or "5432"),
        "POSTGRES_USER": str(params.get("user") or ""),
        "POSTGRES_PASSWORD": str(params.get("password") or ""),
    }


def recreate_database(server: dict[str, str], name: str) -> None:
    import psycopg

    with psycopg.connect(
        host=server["POSTGRES_HOST"], port=server["POSTGRES_PORT"], user=server["POSTGRES_USER"],
        password=server["POSTGRES_PASSWORD"], dbname="postgres", autocommit=True,
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def keep_venvs() -> bool:
    """Whether the sites' virtualenvs outlive their test (``ASSETSEARCH_HOST_KEEP_VENV=1``)."""
    return os.environ.get("ASSETSEARCH_HOST_KEEP_VENV") == "1"


def install(name: str, python: str, django: str, wheel: Path) -> dict[str, Any]:
    """A fresh virtualenv with the wheel, the site's Django and gunicorn; its figures."""
    venv = HostSite(name, python, django).venv
    keep = keep_venvs() and (venv / "bin" / "python").exists()
    started = time.monotonic()
    if not keep:
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
    constraints = venv.parent / "torch-constraints.txt"
    constraints.write_text("\n".join(torch_pins()) + "\n")
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-c", str(constraints),
         *(["--force-reinstall", "--no-deps", str(wheel)] if keep else [str(wheel)]), django, "gunicorn"],
        capture_output=True, text=True, timeout=1800, env=clean_environ(),
    )
    assert result.returncode == 0, f"pip install into {venv} failed:\n{(result.stdout + result.stderr)[-6000:]}"
    size = subprocess.run(["du", "-sm", str(venv)], capture_output=True, text=True).stdout.split()[0]
    return {"install_s": round(time.monotonic() - started, 1), "venv_mb": int(size)}


def clean_environ() -> dict[str, str]:
    """This process's environment without what belongs to the project's own site and virtualenv."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ASSETSEARCH_", "PYTHON", "VIRTUAL_ENV"))}


def generate_site(host: HostSite) -> None:
    """``startproject`` + an accounts app with a custom user, then the README's blocks, appended."""
    shutil.rmtree(host.site, ignore_errors=True)
    host.site.mkdir(parents=True)
    host.run(host.bin("django-admin"), "startproject", "mysite", ".")
    host.manage("startapp", "accounts")
    (host.site / "accounts" / "models.py").write_text(CUSTOM_USER)
    blocks = readme_blocks()
    for name, code in blocks.items():
        path = host.site / name
        path.write_text(path.read_text() + "\n" + code if path.exists() else code)
    settings = host.site / "mysite" / "settings.py"
    settings.write_text(
        settings.read_text()
        + '\nINSTALLED_APPS += ["accounts"]\nAUTH_USER_MODEL = "accounts.User"\n'
        + host.extra_settings
    )
    host.manage("makemigrations", "accounts")


class Client:
    """HTTP against the site's gunicorn, with a token or the admin's session."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Token {token}"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.api.get(self.base + path, timeout=60, **kwargs)

    def admin_session(self, username: str, password: str) -> requests.Session:
        session = requests.Session()
        page = session.get(f"{self.base}/admin/login/", timeout=60)
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]  # type: ignore[index]
        response = session.post(
            f"{self.base}/admin/login/?next=/admin/", timeout=60,
            data={"username": username, "password": password, "csrfmiddlewaretoken": csrf},
            headers={"Referer": f"{self.base}/admin/login/"},
        )
        assert response.ok and "/admin/login/" not in response.url, response.text[-2000:]
        return session


SITES = {
    # id: (folder name, Pythons to look for, Django, extra settings of the site's own)
    "django-5.2": ("dj52", ("3.11",), "django>=5.2,<5.3", ""),
    "django-6": ("dj6", ("3.12", "3.13"), "django>=6,<7", HOSTILE_REST_FRAMEWORK),
}


# site id -> (its Python, the install running for it); filled once per run by start_installs().
INSTALLS: dict[str, tuple[str | None, Future[dict[str, Any]] | None]] = {}
_pool = ThreadPoolExecutor(max_workers=len(SITES) + 1, thread_name_prefix="host-install")


def start_installs(items: list[pytest.Item]) -> None:
    """Build the wheel and start installing the virtualenvs of the sites among ``items``, in the background.

    conftest calls it when collection ends and runs these tests last, so the
    installs (minutes of pip, waiting on disk and network as much as on the
    CPU) go on beside the rest of the suite; the ``host`` fixture waits for them.
    """
    if INSTALLS:
        return
    selected = sorted({item.callspec.id for item in items if item.module.__name__ == __name__ and hasattr(item, "callspec")})
    if not selected:
        return
    wheel = _pool.submit(build_wheel, HostSite("wheel", "", "").root)
    for site_id in selected:
        name, versions, django, _ = SITES[site_id]
        python = find_python(*versions)
        job = _pool.submit(lambda n=name, p=python, d=django: install(n, p, d, wheel.result())) if python else None
        INSTALLS[site_id] = (python, job)


@pytest.fixture(params=list(SITES))
def host(request: pytest.FixtureRequest, postgres_server: dict[str, str]) -> Iterator[HostSite]:
    name, versions, django_spec, extra = SITES[request.param]
    start_installs(request.session.items)  # already started, unless conftest's hook was bypassed
    python, job = INSTALLS[request.param]
    if python is None or job is None:
        pytest.fail(f"no Python {' or '.join(versions)} on this machine for the {django_spec} site")
    site = HostSite(name, python, django_spec, extra)
    try:
        site.figures.update(job.result())
    except BaseException:
        remove_venv(site)
        raise
    # A Redis of its own: the suite's worker, on the suite's broker, would take the site's tasks.
    broker = RedisServer(Path(tempfile.mkdtemp(prefix="assetsearch-host-redis-"))).start()
    database = f"assetsearch_host_{name}"
    recreate_database(postgres_server, database)
    site.env = {
        **clean_environ(),
        **postgres_server,
        "POSTGRES_DB": database,
        "CELERY_BROKER_URL": broker.url,
        "PATH": f"{site.venv / 'bin'}:{os.environ['PATH']}",
    }
    try:
        yield site
    finally:
        site.stop()
        broker.stop()
        shutil.rmtree(broker.data_dir, ignore_errors=True)
        (site.root / "figures.json").write_text(json.dumps(site.figures, indent=2))
        print(f"\nhost site {name}: {site.figures}")
        remove_venv(site)


def remove_venv(site: HostSite) -> None:
    """Delete the site's virtualenv (its logs and figures stay), unless asked to keep it."""
    if not keep_venvs():
        shutil.rmtree(site.venv, ignore_errors=True)


def test_the_wheel_works_in_a_fresh_site(host: HostSite) -> None:
    started = time.monotonic()
    generate_site(host)
    version = host.run(host.bin("python"), "-c", "import django; print(django.get_version())").strip()
    host.figures["django"] = version
    assert version.split(".")[0] == ("5" if host.name == "dj52" else "6")

    host.manage("migrate", "--noinput")
    # Only the app's messages count: a fresh site has its own (DEBUG, SECRET_KEY; Django 6.1 errors on its console MAILERS).
    checks = host.manage("check", "--deploy", "--fail-level", "CRITICAL")
    assert not APP_CHECK_IDS.search(checks), checks
    groups = host.manage("shell", "-c", "from django.contrib.auth.models import Group; print(sorted(Group.objects.values_list('name', flat=True)))")
    assert "['Asset editors']" in groups

    host.env["DJANGO_SUPERUSER_PASSWORD"] = "host-pw-1"
    host.manage("createsuperuser", "--noinput", "--username", "admin", "--email", "admin@example.com")
    token = re.search(r"Generated token (\w+)", host.manage("drf_create_token", "admin"))[1]  # type: ignore[index]

    # The site's own Celery app (mysite/celery.py from the README) runs the app's tasks.
    worker = host.start(
        "worker.log", host.bin("celery"), "-A", "mysite", "worker", "--concurrency", "1", "--loglevel", "INFO",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    )
    port = free_port()
    web = host.start("web.log", host.bin("gunicorn"), "mysite.wsgi", "--workers", "1", "--bind", f"127.0.0.1:{port}", "--timeout", "120")
    client = Client(f"http://127.0.0.1:{port}", token)

    def answering() -> bool:
        assert web.poll() is None, host.log("web.log")
        try:
            return client.get("/admin/login/").status_code == 200
        except requests.ConnectionError:
            return False

    wait_for(answering, timeout=120, interval=0.5, message="gunicorn")

    upload = image_file(name="red-circle.png")
    response = client.api.post(
        client.base + "/api/assets/", timeout=60,
        files={"image": (upload.name, upload.read(), "image/png")}, data={"title": "Red circle", "tags": "circle"},
    )
    assert response.status_code == 201, response.text
    asset = response.json()
    assert asset["embedding"]["status"] == "pending"

    def embedded() -> dict[str, Any] | None:
        assert worker.poll() is None, host.log("worker.log")
        state = client.get(f"/api/assets/{asset['id']}/").json()["embedding"]
        assert state["status"] != "failed", state
        return state if state["status"] == "ready" else None

    wait_for(embedded, timeout=300, interval=0.5, message=f"the worker to embed the upload\n{host.log('worker.log')}")

    results = client.get("/api/search/", params={"q": "a red circle", "limit": 5})
    assert results.status_code == 200, results.text
    hits = results.json()["results"]
    assert hits and hits[0]["asset"]["id"] == asset["id"], hits
    host.figures["site_to_first_search_s"] = round(time.monotonic() - started, 1)
    host.figures["install_to_first_search_s"] = round(host.figures["install_s"] + host.figures["site_to_first_search_s"], 1)

    # The site's DRF defaults changed nothing: no anonymous access, the app's own pages.
    assert requests.get(f"{client.base}/api/assets/", timeout=60).status_code == 401
    assert set(client.get("/api/assets/").json()) >= {"count", "results"}

    admin = client.admin_session("admin", "host-pw-1")
    changelist = admin.get(f"{client.base}/admin/assetsearch/asset/", params={"q": "a red circle"}, timeout=60)
    assert changelist.status_code == 200, changelist.text[-2000:]
    assert "Red circle" in changelist.text

    schema_response = client.get("/api/schema/", params={"format": "json"})
    assert schema_response.status_code == 200, schema_response.text[-2000:]
    schema = schema_response.json()
    from openapi_spec_validator import validate

    validate(schema)
    assert schema["info"]["title"] == "assetsearch API" and schema["info"]["version"] != "0.0.0"
    assert "/api/search/" in schema["paths"]
    assert all(path.startswith(("/api/", "/assets/")) for path in schema["paths"]), sorted(schema["paths"])

    host.figures["web_rss_mb"] = rss_mb(web.pid)
    host.figures["worker_rss_mb"] = rss_mb(worker.pid)


def rss_mb(pid: int) -> dict[str, int]:
    """Resident memory of a process and its children (gunicorn's worker, Celery's pool child), in MB."""
    import psutil

    process = psutil.Process(pid)
    return {f"{p.pid}:{p.name()}": p.memory_info().rss // 2**20 for p in [process, *process.children(recursive=True)]}
