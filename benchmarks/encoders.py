"""Encoder backends side by side: torch (open_clip), ONNX Runtime, OpenVINO.

    .venv/bin/python benchmarks/encoders.py [--model assetsearch-demo|ViT-B-32] [--rounds 3]

A row per backend and precision, all measured in this process on the same
decoded images and query texts, rounds interleaved (these machines are
noisy; each figure is the best round):

* img/s at batch 1 and batch 16: ``embed_images`` on decoded images
  (preprocess included, file decoding not);
* query ms: ``embed_texts`` of one query, the median over varied queries;
* ratios to torch fp32 measured in the same run;
* max cosine difference: 1 - the least cosine between the backend's vectors
  and torch's, over the images and texts.

With ``--model ViT-B-32`` the architecture has random (seeded) weights:
speed and agreement only. Exports are cached in ``ENCODER_EXPORT_DIR``.
Precisions a CPU lacks (bf16 without AVX512_BF16/AMX) are listed as such.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from typing import Any

import numpy as np
from _setup import setup_django, table

QUERIES = [
    "a red circle", "two blue stars on a white background", "a striped green triangle in the top left",
    "three small yellow hearts", "a large purple square at the bottom", "a dotted orange circle on grey",
    "four black stars", "a tiny pink heart in the corner", "a checkered cyan square", "one brown triangle",
]
BACKENDS = [
    ("torch", "assetsearch.encoders.OpenCLIPEncoder", "fp32"),
    ("onnxruntime", "assetsearch.runtime_encoders.ONNXRuntimeEncoder", "fp32"),
    ("openvino", "assetsearch.runtime_encoders.OpenVINOEncoder", "fp32"),
    ("openvino", "assetsearch.runtime_encoders.OpenVINOEncoder", "bf16"),
]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="assetsearch-demo", choices=["assetsearch-demo", "ViT-B-32"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ["ASSETSEARCH_LOG_LEVEL"] = "WARNING"
    setup_django()
    from django.core.exceptions import ImproperlyConfigured

    pretrained = "bundled" if args.model == "assetsearch-demo" else None
    single = 4 if args.model == "ViT-B-32" else 16  # batch-1 calls per round
    batch = images(16)
    encoders, skipped = {}, []
    for name, backend, precision in BACKENDS:
        try:
            started = time.perf_counter()
            encoders[name, precision] = (make_encoder(backend, precision, args.model, pretrained), time.perf_counter() - started)
        except ImproperlyConfigured as exc:
            skipped.append(f"{name} {precision}: {exc}")
    reference = encoders["torch", "fp32"][0]
    ref_images, ref_texts = reference.embed_images(batch), reference.embed_texts(QUERIES)
    best: dict[tuple[str, str], list[float]] = {key: [0.0, 0.0, float("inf")] for key in encoders}
    for key, (encoder, _) in encoders.items():  # first calls (kernel selection) are not throughput
        encoder.embed_images(batch[:1]), encoder.embed_images(batch), query_ms(encoder)
    for _ in range(args.rounds):
        for key, (encoder, _) in encoders.items():
            figures = best[key]
            figures[0] = max(figures[0], images_per_second(encoder, batch[:1], single))
            figures[1] = max(figures[1], images_per_second(encoder, batch, 1))
            figures[2] = min(figures[2], query_ms(encoder))
    torch_figures = best["torch", "fp32"]
    rows = []
    for key, (encoder, load_s) in encoders.items():
        one, sixteen, ms = best[key]
        cosines = np.concatenate([(encoder.embed_images(batch) * ref_images).sum(1), (encoder.embed_texts(QUERIES) * ref_texts).sum(1)])
        rows.append([
            f"{key[0]} {key[1]}", one, one / torch_figures[0], sixteen, sixteen / torch_figures[1], ms,
            torch_figures[2] / ms, f"{1 - float(cosines.min()):.1e}", f"{load_s:.1f}",
        ])
    print(f"\nModel {args.model} ({'bundled weights' if pretrained else 'random weights'}), {os.cpu_count()} CPU cores, best of {args.rounds} rounds\n")
    print(table(
        ["backend", "img/s b1", "x torch", "img/s b16", "x torch", "query ms", "x torch", "max cos diff", "load s"],
        rows,
    ))
    for line in skipped:
        print(f"\nNot measured: {line}")


if __name__ == "__main__":
    main()
