"""Ingest throughput: files on disk -> vectors in Postgres, against the raw model.

    .venv/bin/python benchmarks/ingest.py [--images 256] [--model assetsearch-demo|ViT-B-32]

Four figures, measured in the same run on the same JPEG files:

* raw: open_clip alone in this process, as its README uses it (PIL decode,
  the model's preprocess, ``encode_image`` under inference mode) at its best
  batch size among 8/16/32/64 -- the baseline the targets refer to;
* product encoder: the worker's decode (JPEG draft decoding at the model's
  input size) and encoder (channels-last) on the same files at raw's batch
  size, without storage -- the ceiling for the pipeline;
* pipeline: the product path -- ``assetsearch_import`` creates assets from
  the files (storage copy, hash, header check, one INSERT per batch) and
  enqueues a task per batch after commit; a real Celery worker process (solo
  pool) embeds each batch and stores the vectors in pgvector. Batches are
  raw's batch size. Timed from the first file read to the last asset ready;
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
from collections.abc import Callable
from pathlib import Path

from _setup import QUIET_WORKER, ROOT, bench_database_url, empty_catalogue, setup_django, table


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


BATCH_SIZES = (8, 16, 32, 64)


def rate(paths: list[Path], embed_batch: Callable[[list[Path]], object], batch_size: int) -> float:
    """Images/s of ``embed_batch`` over ``paths`` in batches of ``batch_size``."""
    started = time.perf_counter()
    for start in range(0, len(paths), batch_size):
        embed_batch(paths[start : start + batch_size])
    return len(paths) / (time.perf_counter() - started)


def best_rate(paths: list[Path], embed_batch: Callable[[list[Path]], object]) -> tuple[float, int]:
    """(images/s, batch size) of ``embed_batch`` over ``paths`` at its best batch size."""
    embed_batch(paths[:8])  # first-call set-up (threads, kernels) is not throughput
    return max((rate(paths, embed_batch, batch_size), batch_size) for batch_size in BATCH_SIZES)


def raw_open_clip(paths: list[Path]) -> tuple[float, int]:
    """open_clip as its README uses it: PIL decode, the model's preprocess, encode_image."""
    import open_clip
    import torch
    from PIL import Image

    from assetsearch.encoders import get_encoder

    encoder = get_encoder()  # only for the model name, checkpoint and config registration
    encoder._register_configs()
    model, _, preprocess = open_clip.create_model_and_transforms(encoder.model_name, pretrained=encoder.checkpoint)
    model.eval()

    def embed(batch: list[Path]) -> object:
        images = [preprocess(Image.open(path).convert("RGB")) for path in batch]
        with torch.inference_mode():
            return model.encode_image(torch.stack(images), normalize=True)

    return best_rate(paths, embed)


def product_encoder(paths: list[Path], batch_size: int) -> float:
    """Images/s of the worker's own decode and encoder (draft JPEG decode, channels-last), no storage."""
    from assetsearch.encoders import get_encoder
    from assetsearch.images import decode_for_model

    encoder = get_encoder()
    encoder.batch_size = batch_size

    def embed(batch: list[Path]) -> object:
        images = []
        for path in batch:
            with path.open("rb") as handle:
                images.append(decode_for_model(handle, encoder.image_size))
        return encoder.embed_images(images)

    embed(paths[:batch_size])  # model load
    return rate(paths, embed, batch_size)


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "project", "worker", "--pool=solo", "--loglevel=WARNING", "-Q", "celery",
         *QUIET_WORKER],
        cwd=ROOT, env=env,
    )


def pipeline_throughput(folder: Path, one_task_per_image: bool) -> float:
    """Images per second from the first file read to the last asset ready."""
    from django.core.files import File
    from django.core.management import call_command

    from assetsearch.models import Asset

    paths = sorted(folder.iterdir())
    empty_catalogue()
    started = time.perf_counter()
    if one_task_per_image:  # each save() enqueues its own task after commit
        for path in paths:
            with path.open("rb") as handle:
                Asset.objects.create(image=File(handle, name=path.name), title=path.stem)
    else:  # the product's bulk path: an INSERT, a commit and a task per batch
        call_command("assetsearch_import", str(folder), verbosity=0)
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
    raw_rate, raw_batch = raw_open_clip(paths)
    encoder_rate = product_encoder(paths, raw_batch)
    from django.conf import settings

    default = {**settings.ASSETSEARCH["ENCODERS"]["default"], "BATCH_SIZE": raw_batch}
    settings.ASSETSEARCH = {**settings.ASSETSEARCH, "ENCODERS": {"default": default}}  # task size here
    env = {**os.environ, "DATABASE_URL": bench_database_url(), "ASSETSEARCH_BATCH_SIZE": str(raw_batch)}
    worker = start_worker(env)  # model-call size there
    try:
        # Warm the worker: model load, and kernels for both batch shapes.
        make_files(work / "warm-up", raw_batch)
        pipeline_throughput(work / "warm-up", one_task_per_image=False)
        pipeline_throughput(work / "warm-up", one_task_per_image=True)
        pipeline = pipeline_throughput(work / "images", one_task_per_image=False)
        naive = pipeline_throughput(work / "images", one_task_per_image=True)
    finally:
        worker.terminate()
        worker.wait(30)
        redis.stop()
    print(f"\n{args.images} JPEG files (512x512), model {args.model}, 2 CPU cores\n")
    print(table(
        ["path", "images/s", "vs raw batched", "vs naive"],
        [
            [f"raw open_clip (batch {raw_batch})", raw_rate, 1.0, raw_rate / naive],
            ["product decode + encoder, no storage", encoder_rate, encoder_rate / raw_rate, encoder_rate / naive],
            ["pipeline (batched tasks, worker)", pipeline, pipeline / raw_rate, pipeline / naive],
            ["naive (one task per image)", naive, naive / raw_rate, 1.0],
        ],
    ))


if __name__ == "__main__":
    main()
