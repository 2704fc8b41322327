"""Load each encoder's model, embed a probe image and a probe text, and say what works."""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Any

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.test import override_settings

from ...conf import app_settings
from ...encoders import BaseEncoder, get_encoder

PROBE_TEXT = "a red circle"


def probe_image(side: int) -> Any:
    """A small picture any model can take: a red disc on white."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (side, side), "white")
    ImageDraw.Draw(image).ellipse((side // 4, side // 4, 3 * side // 4, 3 * side // 4), fill=(220, 30, 30))
    return image


def timed(call: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = call()
    return result, (time.perf_counter() - started) * 1000


class Command(BaseCommand):
    help = (
        "Load the model of each encoder alias (or --encoder), embed a probe image and a probe text, "
        "and print the model, key, dimension and timings; exits non-zero with the reason when one fails."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--encoder", action="append", help="an encoder alias (repeatable); default: all")
        parser.add_argument(
            "--download", action="store_true", help="allow downloading missing weights for this run (ALLOW_MODEL_DOWNLOAD)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        aliases = options["encoder"] or app_settings.encoder_aliases()
        overrides = {**getattr(settings, "ASSETSEARCH", {}), "ALLOW_MODEL_DOWNLOAD": True} if options["download"] else None
        failures = []
        with override_settings(ASSETSEARCH=overrides) if overrides else nullcontext():
            for alias in aliases:
                try:
                    self.stdout.write(self.probe(alias, get_encoder(alias)))
                except Exception as exc:  # noqa: BLE001 - every failure is reported, then the exit status says it
                    failures.append(f"{alias}: {exc}")
                    self.stderr.write(self.style.ERROR(f"{alias}: FAILED: {exc}"))
        if failures:
            raise CommandError(f"{len(failures)} of {len(aliases)} encoder(s) do not work:\n" + "\n".join(failures))

    def probe(self, alias: str, encoder: BaseEncoder) -> str:
        _, load_ms = timed(encoder.warm_up)
        images, image_ms = timed(lambda: encoder.embed_images([probe_image(encoder.image_size)]))
        texts, text_ms = timed(lambda: encoder.embed_texts([PROBE_TEXT]))
        for what, vectors in (("image", images), ("text", texts)):
            if vectors.shape != (1, encoder.dimensions) or not np.isclose(np.linalg.norm(vectors[0]), 1.0, atol=1e-3):
                raise ValueError(
                    f"the {what} vector has shape {vectors.shape} and norm {np.linalg.norm(vectors):.3f}; "
                    f"expected (1, {encoder.dimensions}) of norm 1"
                )
        return self.style.SUCCESS(
            f"{alias}: ok: model {encoder.label}, key {encoder.key}, {encoder.dimensions}-d; "
            f"load {load_ms:.0f} ms, image {image_ms:.0f} ms, text {text_ms:.0f} ms, "
            f"probe similarity {float(images[0] @ texts[0]):.3f}"
        )

