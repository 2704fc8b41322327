"""The HTTP API under load, and upload-to-searchable latency.

    .venv/bin/python benchmarks/api.py [--assets 10000] [--requests 400] [--concurrency 4 32] [--uploads 20]

Starts the example site and a Celery worker on the scratch database,
loopback only. Each ``--servers`` in turn serves the search phases, in the
same run: ``production`` is ``scripts/run``'s server (gunicorn, gthread,
preloaded, text encoder warmed, :func:`project.launch.web_command`),
``gunicorn`` plain gunicorn with 2 sync workers (the baseline: how the
product was served before), ``runserver`` Django's development server.
It measures:

* search endpoint ``GET /api/search/?q=...`` with a warm text cache: requests
  per second and p50/p95 with each ``--concurrency`` of keep-alive clients
  (bounded by ``--requests`` and 60 s);
* the same request end to end, one client: p50, and its ratio to the first
  baseline server's p50 in this run (target <= 0.6x);
* upload-to-searchable: ``POST /api/assets/`` with a new image, then poll
  the asset (``GET /api/assets/<id>/``, as the README documents, every 10
  ms) until its embedding is ``ready``, then check that a search by it
  answers 200; p50/p95/max over ``--uploads`` uploads, each split into the
  upload request, the server's pending-to-ready time and the polling
  overshoot, beside the model's own time to embed one image (baseline).
* first upload after start-up: the same for the worker's first task (it
  loads its model when its process starts, not on that task), as a ratio to
  the p50 of the uploads after it.

The upload phases run against the first of ``--servers``.

Every answer's status is counted: the table shows how many requests of each
phase were answered 200, 429 or otherwise (or failed to connect); latencies
are of 200 answers only, and a phase with any other answer says so. The
server runs ``bench_settings`` (the search throttle off, see there).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import random
import socket
import subprocess
import sys
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from _setup import QUIET_WORKER, ROOT, bench_database_url, median, p, setup_django, table

def free_port() -> int:
    """A loopback port nothing listens on: a fixed one would send this run's requests to
    another benchmark's server on the same machine (its 401s and 429s counted here)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


PORT = free_port()
POLL_INTERVAL_S = 0.01


@dataclass
class Tally:
    """Answers by status (``error`` for a request that got none), and the latencies of 200s."""

    statuses: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, status: int | str, elapsed_ms: float) -> None:
        with self.lock:
            self.statuses[status] += 1
            if status == 200:
                self.latencies.append(elapsed_ms)

    @property
    def answers(self) -> str:
        """``"400 x 200"``, plus every other status (``429``, ``500``, ``error``) that came back."""
        return ", ".join(f"{n} x {status}" for status, n in sorted(self.statuses.items(), key=lambda kv: str(kv[0])))

    @property
    def clean(self) -> bool:
        """Only successes: 200, and 201 for uploads."""
        return set(self.statuses) <= {200, 201}


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

    def timed(self, tally: Tally, method: str, path: str, body: bytes | None = None,
              headers: dict | None = None) -> tuple[int | str, bytes]:
        """One request, counted in ``tally`` by its status (``"error"`` when none came back)."""
        started = time.perf_counter()
        try:
            status, data = self.request(method, path, body, headers)
        except (OSError, http.client.HTTPException):
            self.conn.close()
            status, data = "error", b""
        tally.record(status, (time.perf_counter() - started) * 1000)
        return status, data

    def upload(self, tally: Tally, image_bytes: bytes, title: str) -> tuple[int | str, bytes]:
        boundary = uuid.uuid4().hex
        body = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n{title}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{title}.png\"\r\n"
            "Content-Type: image/png\r\n\r\n"
        ).encode() + image_bytes + f"\r\n--{boundary}--\r\n".encode()
        return self.timed(tally, "POST", "/api/assets/", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})


def _production() -> list[str]:
    from project.launch import web_command

    return web_command("127.0.0.1", PORT)


SERVERS = {
    "production": _production,
    "gunicorn": lambda: [sys.executable, "-m", "gunicorn", "project.wsgi", "-w", "2", "-b", f"127.0.0.1:{PORT}"],
    "runserver": lambda: [sys.executable, "manage.py", "runserver", f"127.0.0.1:{PORT}", "--noreload"],
}


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


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


def load(token: str, path: str, total: int, concurrency: int, limit_s: float = 60) -> tuple[float, Tally]:
    """``total`` GETs of ``path`` from ``concurrency`` keep-alive clients; requests/s of 200 answers, and the tally.

    A client never stops on an answer it did not want: every status is
    counted (a thread that died would leave the figures to the others).
    """
    tally = Tally()
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
            client.timed(tally, "GET", path)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(tally.latencies) / (time.perf_counter() - started), tally


@dataclass
class Upload:
    total_ms: float  # upload request sent -> the poll that saw "ready"
    request_ms: float  # the upload request itself
    server_ms: float  # created_at -> embedding.changed_at, on the server's clock
    polls: int


def upload_to_searchable(client: Client, images: list[bytes], tally: Tally, searches: Tally, timeout_s: float = 60) -> list[Upload]:
    """Upload each image, poll the asset's status until ready, then check a search by it answers 200."""
    done = []
    for data in images:
        title = f"upload-{uuid.uuid4().hex[:8]}"
        started = time.perf_counter()
        status, body = client.upload(tally, data, title)
        request_ms = (time.perf_counter() - started) * 1000
        if status != 201:
            continue  # counted in the tally
        asset = json.loads(body)
        polls, deadline = 0, time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            polls += 1
            status, body = client.timed(tally, "GET", f"/api/assets/{asset['id']}/")
            if status == 200 and json.loads(body)["embedding"]["status"] != "pending":
                break
            time.sleep(POLL_INTERVAL_S)
        total_ms = (time.perf_counter() - started) * 1000
        embedding = json.loads(body)["embedding"] if status == 200 else {"status": "timeout"}
        if embedding["status"] != "ready":
            tally.record(f"embedding {embedding['status']}", 0.0)
            continue
        client.timed(searches, "POST", "/api/search/", json.dumps({"asset_id": asset["id"], "limit": 1}).encode(),
                     {"Content-Type": "application/json"})
        server_ms = (datetime.fromisoformat(embedding["changed_at"]) - datetime.fromisoformat(asset["created_at"])).total_seconds() * 1000
        done.append(Upload(total_ms, request_ms, server_ms, polls))
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 32])
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--servers", nargs="+", choices=sorted(SERVERS), default=["production", "gunicorn"],
                        help="the servers measured in turn (default: scripts/run's, then plain gunicorn as the baseline)")
    args = parser.parse_args()

    from project.embedded import RedisServer

    work = Path(tempfile.mkdtemp(prefix="assetsearch-api-bench-"))
    redis = RedisServer(work / "redis").start()
    os.environ.update(CELERY_BROKER_URL=redis.url, DJANGO_MEDIA_ROOT=str(work / "media"), ASSETSEARCH_LOG_LEVEL="WARNING")
    setup_django()
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    from search import build_index, load_catalogue

    from assetsearch.demo_model.synthetic import random_scene
    from assetsearch.encoders import get_encoder

    encoder = get_encoder()
    load_catalogue(args.assets, np.random.default_rng(1), encoder.key)
    build_index()
    user, _ = User.objects.get_or_create(username="bench", defaults={"is_superuser": True, "is_staff": True})
    token, _ = Token.objects.get_or_create(user=user)

    env = {**os.environ, "DATABASE_URL": bench_database_url(), "DJANGO_DEBUG": "0",
           "DJANGO_SETTINGS_MODULE": "bench_settings", "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "benchmarks")])}
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "project", "worker", "--pool=solo", "--loglevel=WARNING", *QUIET_WORKER],
                              cwd=ROOT, env=env)
    rows = []
    warm = Tally()
    server = None
    baseline_p50 = None
    try:
        path = "/api/search/?q=a+red+circle+on+the+left&limit=20"
        client = Client(token.key)
        for name in args.servers:
            if server is not None:
                stop(server)
            server = subprocess.Popen(SERVERS[name](), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_http()
            # Warm every server process (each loads the text encoder, at start
            # under production or on its first request otherwise) and the text
            # cache, with concurrent requests so that every process gets some.
            _, warmed = load(token.key, path, 40, 4)
            warm.statuses.update(warmed.statuses)
            single = Tally()
            client = Client(token.key)
            for _ in range(100):
                client.timed(single, "GET", path)
            p50 = median(single.latencies) if single.latencies else float("nan")
            if name != "production" and baseline_p50 is None:
                baseline_p50 = p50
            rows.append([f"{name}: GET /api/search/ (one client, cached text)", single, 1000 / p50 if single.latencies else 0.0,
                         "p50 <= 0.6x the baseline" if name == "production" else "baseline" if p50 == baseline_p50 else ""])
            for concurrency in args.concurrency:
                rps, tally = load(token.key, path, args.requests, concurrency)
                rows.append([f"{name}: GET /api/search/ ({concurrency} clients)", tally, rps,
                             "p95 <= 150 ms, 0 errors" if concurrency == 32 and name == "production" else ""])
        # The uploads go to the first server.
        stop(server)
        server = subprocess.Popen(SERVERS[args.servers[0]](), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http()
        load(token.key, path, 40, 4)

        # Upload -> searchable. Baseline: the model's own time for one image.
        rng = random.Random(5)
        images = []
        for i in range(args.uploads):
            buffer = io.BytesIO()
            random_scene(rng).render(10_000 + i, size=256).save(buffer, format="PNG")
            images.append(buffer.getvalue())
        from PIL import Image

        encoder.embed_images([Image.open(io.BytesIO(images[0])).convert("RGB")])  # the model loads on first use
        model_ms = median([
            (lambda t0: (encoder.embed_images([Image.open(io.BytesIO(b)).convert("RGB")]), (time.perf_counter() - t0) * 1000)[1])(time.perf_counter())
            for b in images
        ])
        # The worker loaded its model when its process started (worker_process_init):
        # the first upload after start-up should cost what any other does.
        first = upload_to_searchable(client, images[:1], Tally(), Tally())
        time.sleep(2)
        polls, searches = Tally(), Tally()
        uploads = upload_to_searchable(client, images, polls, searches)
    finally:
        for child in (server, worker):
            if child is not None:
                stop(child)
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)  # the media, Redis and logs of this run

    print(f"\n{args.assets:,} assets, servers {', '.join(args.servers)} (uploads: {args.servers[0]}), loopback, "
          f"{os.cpu_count()} CPU cores shared with the load generator\n")
    nan = float("nan")
    measures = [
        [name, median(t.latencies) if t.latencies else nan, p(t.latencies, 95) if t.latencies else nan, rps, t.answers, target]
        for name, t, rps, target in rows
    ]
    totals = [u.total_ms for u in uploads]
    measures += [
        ["model alone: embed one image (baseline)", model_ms, nan, nan, "", ""],
        ["upload -> searchable (poll status every 10 ms)", median(totals) if totals else nan, p(totals, 95) if totals else nan,
         nan, f"{len(uploads)}/{len(images)} ready; polls {polls.answers}; then search {searches.answers}",
         "p50 <= 100, p95 <= 300, max <= 500 ms"],
        ["first upload after start-up -> searchable", first[0].total_ms if first else nan, nan, nan,
         f"{first[0].total_ms / median(totals):.2f}x the p50 above" if first and totals else "not ready",
         "<= 2x the p50 above"],
    ]
    print(table(["measure", "p50 ms", "p95 ms", "requests/s", "answers", "target"], measures))
    singles = {row[0].split(":")[0]: median(row[1].latencies) for row in rows if "one client" in row[0] and row[1].latencies}
    if "production" in singles and baseline_p50:
        print(f"\nOne client, production / baseline p50: {singles['production'] / baseline_p50:.2f}x (target <= 0.6x)")
    if uploads:
        print(f"\nupload -> searchable max {max(totals):.1f} ms. Slowest uploads, split:\n")
        slowest = sorted(uploads, key=lambda u: -u.total_ms)[:3]
        print(table(["total ms", "upload request ms", "server: created -> ready ms", "polls"],
                    [[u.total_ms, u.request_ms, u.server_ms, u.polls] for u in slowest]))
        print(f"\nMedian split: upload request {median([u.request_ms for u in uploads]):.1f} ms, "
              f"server created -> ready {median([u.server_ms for u in uploads]):.1f} ms.")
    if first:
        print(f"First upload split: upload request {first[0].request_ms:.1f} ms, server created -> ready {first[0].server_ms:.1f} ms, "
              f"{first[0].polls} polls.")
    unclean = [name for name, t, _, _ in rows if not t.clean] + (["upload polls"] if not polls.clean else []) + (["searches after ready"] if not searches.clean else [])
    if unclean or warm.statuses.keys() - {200}:
        print(f"\nNOT ALL ANSWERS WERE 200: {', '.join(unclean) or 'warm-up'} (see the answers column; warm-up {warm.answers}).")


if __name__ == "__main__":
    main()
