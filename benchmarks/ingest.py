"""Ingest throughput: files on disk -> vectors in Postgres, against the raw model.

    .venv/bin/python benchmarks/ingest.py [--images 256] [--model assetsearch-demo|ViT-B-32]
        [--backend torch|onnxruntime|openvino] [--photos] [--compare-serial] [--backfill]

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
* naive: the same, but one task per image;
* host model backfill (``--backfill``): the same files as existing rows of
  a host's registered model (``tests.hostapp``'s ``Photo``), already in
  its storage and never indexed, embedded by ``assetsearch_reembed
  --model hostapp.photo`` through the same worker, timed from the
  command's start to the last entry ready; measured three times each,
  alternating with the pipeline (whose row is then the median of its three
  runs too), and compared with it.

``--backend`` picks the worker's encoder (and adds a "raw" row for it:
PIL decode in full, then the backend), ``--photos`` uses 12-megapixel
photo-like JPEGs (decode is then a real cost), ``--compare-serial`` adds the
pipeline as it was before the decode pool (torch, one decode thread) in the
same run.

With ``--model ViT-B-32`` the architecture has random weights (speed only).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import subprocess
import sys
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _setup import ENCODER_BACKENDS, QUIET_WORKER, ROOT, bench_database_url, empty_catalogue, setup_django, table


def make_files(folder: Path, count: int, photos: bool = False) -> list[Path]:
    """``count`` JPEGs: 512 px synthetic scenes, or 12-megapixel photo-like ones (``photos``)."""
    from assetsearch.demo_model.synthetic import random_scene

    rng = random.Random(0)
    folder.mkdir()
    paths = []
    for i in range(count):
        path = folder / f"img-{i:05d}.jpg"
        if photos:
            photo_like(i).save(path, quality=90)
        else:
            random_scene(rng).render(i, size=512).save(path, quality=90)
        paths.append(path)
    return paths


def photo_like(seed: int, size: tuple[int, int] = (4000, 3000)) -> object:
    """A 12 MP image that compresses like a photo: smooth shading, objects, sensor-like grain."""
    import numpy as np
    from PIL import Image

    from assetsearch.demo_model.synthetic import random_scene

    generator = np.random.default_rng(seed)
    shading = Image.fromarray(generator.integers(0, 255, (12, 16, 3), dtype=np.uint8)).resize(size, Image.Resampling.BICUBIC)
    scene = random_scene(random.Random(seed)).render(seed, size=768).resize(size, Image.Resampling.BICUBIC)
    pixels = np.asarray(Image.blend(shading, scene, 0.6), dtype=np.int16)
    pixels += generator.integers(-12, 13, pixels.shape[:2], dtype=np.int16)[..., None]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


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

    from assetsearch.conf import app_settings
    from assetsearch.encoders import OpenCLIPEncoder

    # Only for the model name, checkpoint and config registration, whatever the backend.
    encoder = OpenCLIPEncoder("raw", app_settings.encoder_config())
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


def raw_backend(paths: list[Path]) -> tuple[float, int]:
    """The configured backend as raw open_clip is timed: PIL decode in full, then ``embed_images``."""
    from PIL import Image

    from assetsearch.encoders import get_encoder

    encoder = get_encoder()

    def embed(batch: list[Path]) -> object:
        encoder.batch_size = len(batch)
        return encoder.embed_images([Image.open(path).convert("RGB") for path in batch])

    return best_rate(paths, embed)


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


def backfill_throughput(folder: Path, batch: int) -> float:
    """Images per second of a host model's backfill, from the command's start to the last entry ready.

    The files are already in the host's storage and the ``Photo`` rows
    exist with no index entry, as rows a site had before it registered the
    model (``bulk_create`` sends no signals); ``assetsearch_reembed --model``
    enqueues them in batches for the worker, as README "Index your own
    models" says.
    """
    from django.conf import settings
    from django.core.management import call_command

    from assetsearch.models import IndexEntry
    from tests.hostapp.models import Photo

    paths = sorted(folder.iterdir())
    empty_catalogue()
    storage = Path(settings.MEDIA_ROOT) / "hostapp" / "photos"
    storage.mkdir(parents=True, exist_ok=True)
    for path in paths:
        shutil.copyfile(path, storage / path.name)
    Photo.objects.bulk_create([Photo(image=f"hostapp/photos/{path.name}", caption=path.stem) for path in paths])
    entries = IndexEntry.objects.for_model(Photo).search_alias()
    if entries.exists():
        raise SystemExit("the photos were indexed before the backfill")
    started = time.perf_counter()
    call_command("assetsearch_reembed", model=["hostapp.photo"], batch_size=batch, verbosity=0, stdout=io.StringIO())
    while entries.ready().count() < len(paths):
        if entries.failed().exists():
            raise SystemExit(f"the backfill failed: {entries.failed().first().error}")
        time.sleep(0.02)
    return len(paths) / (time.perf_counter() - started)


BACKFILL_ORDER = ("batched", "backfill", "backfill", "batched", "batched", "backfill")


def measure_pipeline(work: Path, name: str, env: dict[str, str], batch: int, backfill: bool = False) -> dict[str, float]:
    """Images/s of the pipeline (``batched``, ``naive``; ``backfill`` if asked) with a worker
    started with ``env``; warmed on its own files first."""
    worker = start_worker(env)
    try:
        warm = work / f"warm-up-{name}"
        make_files(warm, batch)
        pipeline_throughput(warm, one_task_per_image=False)
        pipeline_throughput(warm, one_task_per_image=True)
        if backfill:
            backfill_throughput(warm, batch)
        if backfill:
            # Alternated, import first and last (ABBA...): a load that rises or falls
            # during the run weighs on both alike; the median of each.
            runs: dict[str, list[float]] = {"batched": [], "backfill": []}
            for name in BACKFILL_ORDER:
                runs[name].append(
                    backfill_throughput(work / "images", batch) if name == "backfill"
                    else pipeline_throughput(work / "images", one_task_per_image=False)
                )
            rates = {name: statistics.median(values) for name, values in runs.items()}
        else:
            rates = {"batched": pipeline_throughput(work / "images", one_task_per_image=False)}
        rates["naive"] = pipeline_throughput(work / "images", one_task_per_image=True)
        return rates
    finally:
        worker.terminate()
        worker.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--model", default="assetsearch-demo", choices=["assetsearch-demo", "ViT-B-32"])
    parser.add_argument("--backend", default="torch", choices=list(ENCODER_BACKENDS), help="the worker's encoder backend")
    parser.add_argument("--photos", action="store_true", help="12-megapixel photo-like JPEGs instead of 512 px scenes")
    parser.add_argument(
        "--backfill", action="store_true",
        help="also backfill the same files as existing rows of a host model (tests.hostapp's Photo) with assetsearch_reembed",
    )
    parser.add_argument(
        "--compare-serial", action="store_true",
        help="also run the pipeline as it was before the decode pool: torch, one decode thread",
    )
    args = parser.parse_args()
    if args.model == "ViT-B-32":
        os.environ["ASSETSEARCH_MODEL"], os.environ["ASSETSEARCH_PRETRAINED"] = "ViT-B-32", "none"
    os.environ["ASSETSEARCH_LOG_LEVEL"] = "WARNING"
    os.environ["ASSETSEARCH_ENCODER_BACKEND"] = ENCODER_BACKENDS[args.backend]
    from project.embedded import RedisServer

    work = Path(tempfile.mkdtemp(prefix="assetsearch-ingest-"))
    redis = RedisServer(work / "redis").start()
    os.environ["CELERY_BROKER_URL"] = redis.url
    os.environ["DJANGO_MEDIA_ROOT"] = str(work / "media")
    setup_django()
    from assetsearch.encoders import get_encoder

    get_encoder().warm_up()  # exports the model first if needed: not throughput
    paths = make_files(work / "images", args.images, photos=args.photos)
    raw_rate, raw_batch = raw_open_clip(paths)
    rows = [[f"raw open_clip (batch {raw_batch})", raw_rate]]
    if args.backend != "torch":
        backend_rate, backend_batch = raw_backend(paths)
        rows.append([f"raw {args.backend} (PIL decode, batch {backend_batch})", backend_rate])
    encoder_rate = product_encoder(paths, raw_batch)
    rows.append([f"product decode + {args.backend} encoder, serial, no storage", encoder_rate])
    from django.conf import settings

    default = {**settings.ASSETSEARCH["ENCODERS"]["default"], "BATCH_SIZE": raw_batch}
    settings.ASSETSEARCH = {**settings.ASSETSEARCH, "ENCODERS": {"default": default}}  # task size here
    env = {**os.environ, "DATABASE_URL": bench_database_url(), "ASSETSEARCH_BATCH_SIZE": str(raw_batch)}
    try:
        rates = measure_pipeline(work, args.backend, env, raw_batch, backfill=args.backfill)
        naive = rates["naive"]
        rows += [[f"pipeline ({args.backend}, decode pool, batched tasks)", rates["batched"]], ["naive (one task per image)", naive]]
        if args.backfill:
            rows.append(["host model backfill (assetsearch_reembed --model hostapp.photo)", rates["backfill"]])
        if args.compare_serial:
            serial_env = {**env, "ASSETSEARCH_ENCODER_BACKEND": ENCODER_BACKENDS["torch"], "ASSETSEARCH_DECODE_THREADS": "1"}
            rows.append(["pipeline before (torch, serial decode)", measure_pipeline(work, "serial", serial_env, raw_batch)["batched"]])
    finally:
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)  # the generated images, media and Redis of this run
    kind = "12 MP photo-like (4000x3000)" if args.photos else "512x512"
    print(f"\n{args.images} JPEG files ({kind}), model {args.model}, worker backend {args.backend}, {os.cpu_count()} CPU cores\n")
    fastest_raw = max(row[1] for row in rows[: 2 if args.backend != "torch" else 1])
    print(table(
        ["path", "images/s", "vs raw open_clip", "vs fastest raw", "vs serial encoder", "vs naive"],
        [[label, value, value / raw_rate, value / fastest_raw, value / encoder_rate, value / naive] for label, value in rows],
    ))
    if args.backfill:
        print()
        print(table(
            ["images", "import pipeline images/s", "host model backfill images/s", "backfill / import"],
            [[args.images, rates["batched"], rates["backfill"], rates["backfill"] / rates["batched"]]],
        ))


if __name__ == "__main__":
    main()
