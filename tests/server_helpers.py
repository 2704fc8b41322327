"""Real servers for the operations tests: gunicorn on the test database, and plain HTTP calls.

The test client runs requests in the test's own thread and keeps Django's
connection handling out of the way; connection limits and database
restarts are only honest through a real server's threads and processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from project.launch import answers

ROOT = Path(__file__).resolve().parent.parent
# How the server under test names its database connections (pg_stat_activity.application_name).
SITE_APPLICATION_NAME = "assetsearch-site-under-test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(settings_dict: dict[str, Any], application_name: str = "") -> str:
    """A DATABASE_URL for a Django database's settings (the test database, for a server under test).

    ``application_name`` tags the server's connections in ``pg_stat_activity``.
    """
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(str(settings_dict.get("PASSWORD") or ""), safe="")
    options = settings_dict.get("OPTIONS") or {}
    host = settings_dict.get("HOST") or options.get("host") or ""
    port = settings_dict.get("PORT") or options.get("port") or ""
    name = settings_dict["NAME"]
    tag = f"application_name={quote(application_name)}" if application_name else ""
    if host.startswith("/"):  # a unix socket folder
        query = "&".join(q for q in (f"host={quote(host, safe='/')}", f"port={port}" if port else "", tag) if q)
        return f"postgresql://{user}:{password}@/{name}?{query}"
    return f"postgresql://{user}:{password}@{host}{':' + str(port) if port else ''}/{name}" + (f"?{tag}" if tag else "")


def call(method: str, url: str, *, token: str | None = None, body: bytes | None = None, content_type: str | None = None,
         timeout: float = 30) -> tuple[int, dict[str, str], Any]:
    """One HTTP request; returns (status, headers, parsed JSON or raw bytes). Never raises for a status."""
    request = urllib.request.Request(url, data=body, method=method)
    if token:
        request.add_header("Authorization", f"Token {token}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, headers, data = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, headers, data = error.code, dict(error.headers), error.read()
    try:
        return status, headers, json.loads(data) if data else None
    except ValueError:
        return status, headers, data


def upload(base: str, token: str, image: bytes, name: str = "image.png") -> tuple[int, dict[str, str], Any]:
    """POST /api/assets/ as multipart, the way a client uploads."""
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\n"
        f"Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + image + f"\r\n--{boundary}--\r\n".encode()
    return call("POST", f"{base}/api/assets/", token=token, body=body, content_type=f"multipart/form-data; boundary={boundary}")


def wait_for_url(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not answers(url):
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode} before {url} answered")
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer within {timeout} s")
        time.sleep(0.2)


def stop_group(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM a process started with its own session, and everything in its group; SIGKILL after ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextlib.contextmanager
def gunicorn_site(database: dict[str, Any], broker_url: str, media_root: str, log: Path, *, workers: int, threads: int,
                  pool_size: int) -> Iterator[str]:
    """The example site under gunicorn (gthread, preloaded, as scripts/run serves it) on ``database``; yields its URL."""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": database_url(database, SITE_APPLICATION_NAME),
        "CELERY_BROKER_URL": broker_url,
        "DJANGO_MEDIA_ROOT": media_root,
        "DJANGO_DB_POOL_SIZE": str(pool_size),
    }
    command = [
        sys.executable, "-m", "gunicorn", "project.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--worker-class", "gthread", "--threads", str(threads), "--preload",
    ]
    with open(log, "ab") as output:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_url(f"{base}/admin/login/", timeout=60, process=process)
        yield base
    finally:
        stop_group(process)
