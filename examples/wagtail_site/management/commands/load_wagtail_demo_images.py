"""Load the demo catalogue as Wagtail images, in two collections, titled the way cameras name files."""

from __future__ import annotations

import io
import random
from typing import Any

from django.core.files.images import ImageFile
from django.core.management.base import BaseCommand
from tqdm import tqdm
from wagtail.images import get_image_model
from wagtail.models import Collection

from assetsearch.demo_model.synthetic import random_scene

COLLECTIONS = ("Marketing", "Press")
TITLE = "DSC_{:04d}"


class Command(BaseCommand):
    help = "Create N Wagtail images from generated scenes (idempotent); the worker embeds them."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--count", type=int, default=60)
        parser.add_argument("--seed", type=int, default=2024)

    def handle(self, *args: Any, count: int, seed: int, **options: Any) -> None:
        Image = get_image_model()
        root = Collection.get_first_root_node() or Collection.add_root(name="Root")
        collections = [
            Collection.objects.filter(name=name).first() or root.add_child(name=name) for name in COLLECTIONS
        ]
        existing = Image.objects.filter(title__startswith="DSC_").count()
        if existing >= count:
            self.stdout.write(f"The demo already has {existing} images.")
            return
        rng = random.Random(seed)
        scenes = [random_scene(rng) for _ in range(count)]
        for i in tqdm(range(existing, count), desc="Demo images", unit="image", disable=options["verbosity"] == 0):
            buffer = io.BytesIO()
            scenes[i].render(seed * 1000 + i, size=256).save(buffer, format="JPEG", quality=90)
            # Titles that say nothing, as uploads from a camera: only search by meaning finds "a red circle".
            image = Image(title=TITLE.format(i + 1), collection=collections[i % len(collections)])
            image.file = ImageFile(buffer, name=f"{TITLE.format(i + 1)}.jpg")
            image.save()  # one save per image, as Wagtail's own upload views do; each is queued for embedding
        self.stdout.write(self.style.SUCCESS(f"Created {count - existing} Wagtail images; embedding is queued."))
