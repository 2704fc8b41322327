"""A web process's cost per text backend: start-up, first and steady text searches, memory, torch.

    .venv/bin/python benchmarks/web.py [--model assetsearch-demo|ViT-B-32] [--searches 100]

Each backend runs in a fresh process, as a web server's worker would: Django
set up, the URLconf loaded, then (``warm``) ``assetsearch.encoders.warm_up(images=False)``
as the production server's post-fork hook does, or nothing (``cold``), then
``--searches`` different text searches through the whole stack
(``GET /api/search/?q=...`` with Django's test client, no text cache) on the
benchmark database. Reported: start-up seconds (set-up and warm-up), the
first search's ms, the median of the rest, the RSS after the searches and
its peak (loading a model peaks above what it then holds), and whether
torch was imported.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from _setup import ENCODER_BACKENDS, ROOT, bench_database_url, setup_django, table

WEB_PROCESS = """
import json, statistics, sys, time
started = time.perf_counter()
import django
django.setup()
from django.conf import settings
from django.test import Client, override_settings
from django.urls import resolve
resolve("/api/search/")
if sys.argv[1] == "warm":
    from assetsearch.encoders import warm_up
    warm_up(images=False)
startup = time.perf_counter() - started
timings = []
with override_settings(ASSETSEARCH={**settings.ASSETSEARCH, "API_ANONYMOUS_SEARCH": True, "TEXT_CACHE_TIMEOUT": 0,
                                    "THROTTLE_RATES": {"search": None, "upload": None}}):
    client = Client()
    for index in range(int(sys.argv[2])):
        begun = time.perf_counter()
        response = client.get("/api/search/", {"q": f"a red circle number {index}", "limit": 10})
        assert response.status_code == 200, response.content[:500]
        timings.append((time.perf_counter() - begun) * 1000)
print(json.dumps({
    "startup_s": startup, "first_ms": timings[0], "median_ms": statistics.median(timings[1:]),
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over an exec, so it would report the parent's peak.
    "peak_rss_mb": int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))) / 1024,
    "rss_mb": int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmRSS:"))) / 1024,
    "torch": "torch" in sys.modules,
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="assetsearch-demo", choices=["assetsearch-demo", "ViT-B-32"])
    parser.add_argument("--searches", type=int, default=100)
    parser.add_argument("--backends", nargs="+", default=list(ENCODER_BACKENDS), choices=list(ENCODER_BACKENDS))
    args = parser.parse_args()
    setup_django()  # creates and migrates the benchmark database
    env = {**os.environ, "DATABASE_URL": bench_database_url(), "DJANGO_SETTINGS_MODULE": "project.settings", "ASSETSEARCH_LOG_LEVEL": "WARNING"}
    if args.model == "ViT-B-32":
        env["ASSETSEARCH_MODEL"], env["ASSETSEARCH_PRETRAINED"] = "ViT-B-32", "none"
    rows = []
    for name in args.backends:
        backend = ENCODER_BACKENDS[name]
        for mode in ("cold", "warm"):
            run = subprocess.run(
                [sys.executable, "-c", WEB_PROCESS, mode, str(args.searches)],
                cwd=ROOT, env={**env, "ASSETSEARCH_ENCODER_BACKEND": backend}, capture_output=True, text=True,
            )
            if run.returncode:
                raise SystemExit(f"{name} {mode}: {run.stderr[-2000:]}")
            result = json.loads(run.stdout.strip().splitlines()[-1])
            rows.append([
                f"{name} ({mode})", f"{result['startup_s']:.2f}", f"{result['first_ms']:.0f}", f"{result['median_ms']:.1f}",
                f"{result['rss_mb']:.0f}", f"{result['peak_rss_mb']:.0f}", "yes" if result["torch"] else "no",
            ])
    print(f"\nWeb process, model {args.model}, {args.searches} text searches, {os.cpu_count()} CPU cores\n")
    print(table(["text backend", "start-up s", "first search ms", "search p50 ms", "RSS MB after", "peak RSS MB", "torch imported"], rows))


if __name__ == "__main__":
    main()
