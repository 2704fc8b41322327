"""Encoder backends side by side: torch (open_clip), ONNX Runtime, OpenVINO.

    .venv/bin/python benchmarks/encoders.py [--model assetsearch-demo|ViT-B-32] [--rounds 3]

A row per backend and precision, each measured in a process of its own (the
runtimes' idle threads slow each other down when they share one), on the
same decoded images and query texts, rounds interleaved across backends
(these machines are noisy; each figure is the best round):

* img/s at batch 1 and batch 16: ``embed_images`` on decoded images
  (preprocess included, file decoding not);
* query ms: ``embed_texts`` of one query, the median over varied queries;
* ratios to torch fp32 measured in the same run;
* max cosine difference: 1 - the least cosine between the backend's vectors
  and torch's, over the images and texts;
* load s: creating the encoder and loading both towers (the export exists).

With ``--model ViT-B-32`` the architecture has random (seeded) weights:
speed and agreement only. Exports are cached in ``ENCODER_EXPORT_DIR``.
Precisions a CPU lacks (bf16 without AVX512_BF16/AMX) are listed as such.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _setup import ENCODER_BACKENDS, setup_django, table

QUERIES = [
    "a red circle", "two blue stars on a white background", "a striped green triangle in the top left",
    "three small yellow hearts", "a large purple square at the bottom", "a dotted orange circle on grey",
    "four black stars", "a tiny pink heart in the corner", "a checkered cyan square", "one brown triangle",
]
BACKENDS = [(name, ENCODER_BACKENDS[name], precision) for name, precision in
            [("torch", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "bf16")]]


def images(count: int) -> list[Any]:
    from assetsearch.demo_model.synthetic import random_scene

    rng = random.Random(0)
    return [random_scene(rng).render(i, size=256).convert("RGB") for i in range(count)]


def make_encoder(backend: str, precision: str, model: str, pretrained: str | None) -> Any:
    from django.utils.module_loading import import_string

    options = {"MODEL": model, "PRETRAINED": pretrained, "DEVICE": "cpu", "BATCH_SIZE": 16, "PRECISION": precision}
    encoder = import_string(backend)(f"bench-{precision}", options)
    encoder.warm_up()
    return encoder


def images_per_second(encoder: Any, batch: list[Any], repeats: int) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        encoder.embed_images(batch)
    return repeats * len(batch) / (time.perf_counter() - started)


def query_ms(encoder: Any) -> float:
    timings = []
    for query in QUERIES:
        started = time.perf_counter()
        encoder.embed_texts([query])
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def measure(key: str, model: str, out: Path) -> None:
    """One backend in this process (runtimes' idle threads would slow each other in one process)."""
    name, backend, precision = next(row for row in BACKENDS if f"{row[0]} {row[2]}" == key)
    setup_django()
    pretrained = "bundled" if model == "assetsearch-demo" else None
    started = time.perf_counter()
    encoder = make_encoder(backend, precision, model, pretrained)
    load_s = time.perf_counter() - started
    batch = images(16)
    encoder.embed_images(batch[:1]), encoder.embed_images(batch), query_ms(encoder)  # first calls: kernel set-up
    single = 4 if model == "ViT-B-32" else 16  # batch-1 calls
    figures = [images_per_second(encoder, batch[:1], single), images_per_second(encoder, batch, 1), query_ms(encoder), load_s]
    np.savez(out, figures=np.array(figures), images=encoder.embed_images(batch), texts=encoder.embed_texts(QUERIES))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="assetsearch-demo", choices=["assetsearch-demo", "ViT-B-32"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one backend, in a subprocess
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ["ASSETSEARCH_LOG_LEVEL"] = "WARNING"
    if args.measure:
        return measure(args.measure, args.model, args.out)
    keys = [f"{name} {precision}" for name, _, precision in BACKENDS]
    work = Path(tempfile.mkdtemp(prefix="assetsearch-encoders-"))
    results: dict[str, list[dict[str, np.ndarray]]] = {key: [] for key in keys}
    skipped: dict[str, str] = {}
    for round_ in range(args.rounds):  # rounds interleaved: A B C A B C
        for key in keys:
            if key in skipped:
                continue
            out = work / f"{key.replace(' ', '-')}-{round_}.npz"
            run = subprocess.run(
                [sys.executable, __file__, "--model", args.model, "--measure", key, "--out", str(out)],
                capture_output=True, text=True,
            )
            if run.returncode:
                skipped[key] = run.stderr.strip().splitlines()[-1]  # the exception's message
                continue
            with np.load(out) as loaded:
                results[key].append({name: loaded[name] for name in loaded.files})
    shutil.rmtree(work, ignore_errors=True)
    reference = results["torch fp32"][0]
    best = {}
    for key, runs in results.items():
        if runs:
            figures = np.stack([run["figures"] for run in runs])
            best[key] = (figures[:, 0].max(), figures[:, 1].max(), figures[:, 2].min(), float(np.median(figures[:, 3])))
    torch_best = best["torch fp32"]
    rows = []
    for key, (one, sixteen, ms, load_s) in best.items():
        run = results[key][0]
        cosines = np.concatenate([(run["images"] * reference["images"]).sum(1), (run["texts"] * reference["texts"]).sum(1)])
        rows.append([
            key, one, one / torch_best[0], sixteen, sixteen / torch_best[1], ms, torch_best[2] / ms,
            f"{1 - float(cosines.min()):.1e}", f"{load_s:.1f}",
        ])
    weights = "bundled weights" if args.model == "assetsearch-demo" else "random weights"
    print(f"\nModel {args.model} ({weights}), {os.cpu_count()} CPU cores, best of {args.rounds} interleaved rounds, one process per backend\n")
    print(table(["backend", "img/s b1", "x torch", "img/s b16", "x torch", "query ms", "x torch", "max cos diff", "load s"], rows))
    for key, reason in skipped.items():
        print(f"\nNot measured: {key}: {reason}")


if __name__ == "__main__":
    main()
