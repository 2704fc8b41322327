"""The HTTP API under load, and upload-to-searchable latency.

    .venv/bin/python benchmarks/api.py [--assets 10000] [--requests 400] [--concurrency 4]

Starts the example site (gunicorn with 2 workers, or ``--server runserver``) and a Celery
worker on the scratch database, loopback only, then measures:

* search endpoint ``GET /api/search/?q=...`` with a warm text cache: requests
  per second and p50/p95 with ``--concurrency`` keep-alive clients (bounded
  by ``--requests`` and 60 s);
* the same request end to end, one client: p50 (target <= 20 ms);
* upload-to-searchable: ``POST /api/assets/`` with a new image, then poll
  ``/api/search/`` until the asset is returned; p50 over 20 uploads (target
  <= 0.5 s), beside the model's own time to embed one image (baseline).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from _setup import QUIET_WORKER, ROOT, bench_database_url, median, p, setup_django, table

PORT = 8765


class Client:
    """A keep-alive HTTP client for 127.0.0.1 with token auth."""

    def __init__(self, token: str) -> None:
        self.headers = {"Authorization": f"Token {token}"}
        self.conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
        for attempt in (1, 2):  # once more on a fresh connection if the server closed an idle one
            try:
                self.conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
                response = self.conn.getresponse()
                return response.status, response.read()
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                self.conn.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def upload(self, image_bytes: bytes, title: str) -> dict:
        boundary = uuid.uuid4().hex
        body = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n{title}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{title}.png\"\r\n"
            "Content-Type: image/png\r\n\r\n"
        ).encode() + image_bytes + f"\r\n--{boundary}--\r\n".encode()
        status, data = self.request("POST", "/api/assets/", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        if status != 201:
            raise SystemExit(f"upload failed: {status} {data[:300]!r}")
        return json.loads(data)


def wait_http(timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=2)
            conn.request("GET", "/admin/login/")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not start")


def load(token: str, path: str, total: int, concurrency: int, limit_s: float = 60) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    remaining = [total]
    deadline = time.monotonic() + limit_s

    def worker() -> None:
        client = Client(token)
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            started = time.perf_counter()
            status, _ = client.request("GET", path)
            elapsed = (time.perf_counter() - started) * 1000
            if status != 200:
                raise SystemExit(f"search answered {status}")
            with lock:
                latencies.append(elapsed)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(latencies) / (time.perf_counter() - started), latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--server", choices=["gunicorn", "runserver"], default="gunicorn",
                        help="gunicorn (2 sync workers, like production) or Django's development server")
    args = parser.parse_args()

    from project.embedded import RedisServer

    work = Path(tempfile.mkdtemp(prefix="assetsearch-api-bench-"))
    redis = RedisServer(work / "redis").start()
    os.environ.update(CELERY_BROKER_URL=redis.url, DJANGO_MEDIA_ROOT=str(work / "media"), ASSETSEARCH_LOG_LEVEL="WARNING")
    setup_django()
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    from search import load_catalogue

    from assetsearch.demo_model.synthetic import random_scene
    from assetsearch.encoders import get_encoder

    encoder = get_encoder()
    load_catalogue(args.assets, np.random.default_rng(1), encoder.key)
    user, _ = User.objects.get_or_create(username="bench", defaults={"is_superuser": True, "is_staff": True})
    token, _ = Token.objects.get_or_create(user=user)

    env = {**os.environ, "DATABASE_URL": bench_database_url(), "DJANGO_DEBUG": "0"}
    if args.server == "gunicorn":
        command = [sys.executable, "-m", "gunicorn", "project.wsgi", "-w", "2", "-b", f"127.0.0.1:{PORT}"]
    else:
        command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{PORT}", "--noreload"]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "project", "worker", "--pool=solo", "--loglevel=WARNING", *QUIET_WORKER],
                              cwd=ROOT, env=env)
    try:
        wait_http()
        path = "/api/search/?q=a+red+circle+on+the+left&limit=20"
        client = Client(token.key)
        # Warm every server process (each loads open_clip on its first
        # request, seconds on 2 cores) and the text cache, with concurrent
        # requests so that both gunicorn workers get some.
        load(token.key, path, 40, args.concurrency)
        single = []
        for _ in range(100):
            started = time.perf_counter()
            client.request("GET", path)
            single.append((time.perf_counter() - started) * 1000)
        rps, latencies = load(token.key, path, args.requests, args.concurrency)

        # Upload -> searchable. Baseline: the model's own time for one image.
        rng = random.Random(5)
        images = []
        for i in range(args.uploads):
            buffer = io.BytesIO()
            random_scene(rng).render(10_000 + i, size=256).save(buffer, format="PNG")
            images.append(buffer.getvalue())
        from PIL import Image

        model_ms = median([
            (lambda t0: (encoder.embed_images([Image.open(io.BytesIO(b)).convert("RGB")]), (time.perf_counter() - t0) * 1000)[1])(time.perf_counter())
            for b in images
        ])
        client.upload(images[0], "warm-up")
        time.sleep(2)
        to_searchable = []
        for i, data in enumerate(images):
            title = f"upload-{uuid.uuid4().hex[:8]}"
            started = time.perf_counter()
            asset = client.upload(data, title)
            while True:
                status, body = client.request(
                    "POST", "/api/search/", json.dumps({"asset_id": asset["id"], "limit": 1}).encode(),
                    {"Content-Type": "application/json"},
                )
                if status == 200:
                    break
                time.sleep(0.01)
            to_searchable.append((time.perf_counter() - started) * 1000)
    finally:
        for child in (server, worker):
            child.terminate()
            child.wait(30)
        redis.stop()

    print(f"\n{args.assets:,} assets, {args.server}, {args.concurrency} clients, loopback, 2 CPU cores\n")
    print(table(
        ["measure", "p50 ms", "p95 ms", "requests/s", "target"],
        [
            ["GET /api/search/ (one client, cached text)", median(single), p(single, 95), 1000 / median(single), "p50 <= 20 ms"],
            [f"GET /api/search/ ({args.concurrency} clients)", median(latencies), p(latencies, 95), rps, ""],
            ["model alone: embed one image (baseline)", model_ms, float("nan"), float("nan"), ""],
            ["upload -> searchable", median(to_searchable), p(to_searchable, 95), float("nan"), "p50 <= 500 ms"],
        ],
    ))


if __name__ == "__main__":
    main()
