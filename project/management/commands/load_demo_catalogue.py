"""Fill the catalogue with generated images the bundled demo model knows."""

from __future__ import annotations

import io
import random
from typing import Any

from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand
from tqdm import tqdm

from assetsearch.demo_model.synthetic import describe, random_scene
from assetsearch.models import Asset
from assetsearch.tasks import create_assets

DEMO_TAG = "demo"


class Command(BaseCommand):
    help = "Create N demo assets from generated captioned images (idempotent); embedding is queued."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--count", type=int, default=60)
        parser.add_argument("--seed", type=int, default=2024)

    def handle(self, *args: Any, count: int, seed: int, **options: Any) -> None:
        existing = Asset.objects.filter(tags__contains=[DEMO_TAG]).count()
        if existing >= count:
            self.stdout.write(f"Demo catalogue already has {existing} assets.")
            return
        rng = random.Random(seed)
        scenes = [random_scene(rng) for _ in range(count)][existing:]
        assets = []
        for i, scene in enumerate(tqdm(scenes, desc="Demo catalogue", unit="image", disable=options["verbosity"] == 0), start=existing):
            caption = describe(scene, rng, stated=("colour", "fill", "background", "size", "position"))
            buffer = io.BytesIO()
            scene.render(seed * 1000 + i, size=256).save(buffer, format="JPEG", quality=90)
            assets.append(Asset(
                image=ContentFile(buffer.getvalue(), name=f"demo-{i:04d}.jpg"),
                title=caption.text[0].upper() + caption.text[1:],
                description=f"Generated demo image: {caption.text}.",
                tags=[DEMO_TAG, scene.colour, scene.shape, scene.fill, scene.background],
            ))
        create_assets(assets)
        self.stdout.write(self.style.SUCCESS(f"Created {len(scenes)} demo assets; embedding is queued."))
