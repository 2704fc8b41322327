"""Ingest throughput: files on disk -> vectors in Postgres, against the raw model.

    .venv/bin/python benchmarks/ingest.py [--images 256] [--model assetsearch-demo|ViT-B-32]

Three figures, measured in the same run on the same JPEG files:

* raw: open_clip alone in this process (decode + preprocess + encode) at its
  best batch size among 8/16/32/64 -- the ceiling;
* pipeline: the product path -- assets created from the files (storage copy,
  hash, header check, insert), enqueued in batches after commit, embedded by
  a real Celery worker process (solo pool) and stored in pgvector; timed from
  the first file read to the last asset ready;
* naive: the same, but one task per image.

With ``--model ViT-B-32`` the architecture has random weights (speed only).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _setup import ROOT, bench_database_url, setup_django, table


def make_files(folder: Path, count: int) -> list[Path]:
    from assetsearch.demo_model.synthetic import random_scene

    rng = random.Random(0)
    folder.mkdir()
    paths = []
    for i in range(count):
        path = folder / f"img-{i:05d}.jpg"
        random_scene(rng).render(i, size=512).save(path, quality=90)
        paths.append(path)
    return paths


def raw_throughput(paths: list[Path]) -> tuple[float, int]:
    from PIL import Image

    from assetsearch.encoders import get_encoder

    encoder = get_encoder()
    best = (0.0, 0)
    encoder.embed_images([Image.open(paths[0]).convert("RGB")])  # load the model
    for batch_size in (8, 16, 32, 64):
        encoder.batch_size = batch_size
        started = time.perf_counter()
        for start in range(0, len(paths), batch_size):
            images = []
            for path in paths[start : start + batch_size]:
                with Image.open(path) as image:
                    images.append(image.convert("RGB"))
            encoder.embed_images(images)
        rate = len(paths) / (time.perf_counter() - started)
        best = max(best, (rate, batch_size))
    return best


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "project", "worker", "--pool=solo", "--loglevel=WARNING", "-Q", "celery"],
        cwd=ROOT, env=env,
    )


def pipeline_throughput(paths: list[Path], one_task_per_image: bool) -> float:
    """Images per second from the first file read to the last asset ready."""
    from django.core.files import File
    from django.core.management import call_command

    from assetsearch.models import Asset

    Asset.objects.all().delete()
    started = time.perf_counter()
    if one_task_per_image:  # each save() enqueues its own task after commit
        for path in paths:
            with path.open("rb") as handle:
                Asset.objects.create(image=File(handle, name=path.name), title=path.stem)
    else:  # the product's bulk path: an INSERT, a commit and a task per batch
        call_command("assetsearch_import", str(paths[0].parent), verbosity=0)
    while Asset.objects.pending().exists():
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    failed = Asset.objects.failed().count()
    if failed:
        raise SystemExit(f"{failed} assets failed: {Asset.objects.failed().first().embedding_error}")
    if Asset.objects.count() != len(paths):
        raise SystemExit(f"expected {len(paths)} assets, found {Asset.objects.count()}")
    return len(paths) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--model", default="assetsearch-demo", choices=["assetsearch-demo", "ViT-B-32"])
    args = parser.parse_args()
    if args.model == "ViT-B-32":
        os.environ["ASSETSEARCH_MODEL"], os.environ["ASSETSEARCH_PRETRAINED"] = "ViT-B-32", "none"
    os.environ["ASSETSEARCH_LOG_LEVEL"] = "WARNING"
    from project.embedded import RedisServer

    work = Path(tempfile.mkdtemp(prefix="assetsearch-ingest-"))
    redis = RedisServer(work / "redis").start()
    os.environ["CELERY_BROKER_URL"] = redis.url
    os.environ["DJANGO_MEDIA_ROOT"] = str(work / "media")
    setup_django()
    paths = make_files(work / "images", args.images)
    raw_rate, raw_batch = raw_throughput(paths)
    from django.conf import settings

    settings.ASSETSEARCH = {**settings.ASSETSEARCH, "BATCH_SIZE": raw_batch}  # task size here
    env = {**os.environ, "DATABASE_URL": bench_database_url(), "ASSETSEARCH_BATCH_SIZE": str(raw_batch)}
    worker = start_worker(env)  # model-call size there
    try:
        pipeline_throughput(paths[:8], one_task_per_image=True)  # warm the worker's model
        pipeline = pipeline_throughput(paths, one_task_per_image=False)
        naive = pipeline_throughput(paths, one_task_per_image=True)
    finally:
        worker.terminate()
        worker.wait(30)
        redis.stop()
    print(f"\n{args.images} JPEG files (512x512), model {args.model}, 2 CPU cores\n")
    print(table(
        ["path", "images/s", "vs raw batched", "vs naive"],
        [
            [f"raw open_clip (batch {raw_batch})", raw_rate, 1.0, raw_rate / naive],
            ["pipeline (batched tasks, worker)", pipeline, pipeline / raw_rate, pipeline / naive],
            ["naive (one task per image)", naive, naive / raw_rate, 1.0],
        ],
    ))


if __name__ == "__main__":
    main()
