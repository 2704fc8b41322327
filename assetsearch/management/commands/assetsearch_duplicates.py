"""Report groups of near-duplicate assets."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand
from tqdm import tqdm

from ...conf import app_settings
from ...duplicates import duplicate_groups
from ...encoders import get_encoder
from ...models import Asset, IndexEntry


class Command(BaseCommand):
    help = (
        "List groups of assets whose images are copies of each other: cosine similarity >= --threshold, "
        "confirmed on pixels (re-encoded, resized or lightly cropped; DUPLICATE_PIXEL_TOLERANCE)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--threshold", type=float, default=None, help=f"default: DUPLICATE_THRESHOLD ({app_settings.defaults['DUPLICATE_THRESHOLD']})")
        parser.add_argument("--vectors-only", action="store_true", help="skip the pixel check: every pair above the threshold")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, threshold: float | None, **options: Any) -> None:
        total = IndexEntry.objects.for_model(Asset).for_encoder(get_encoder().alias).with_vector().count()
        bar = lambda rows: tqdm(rows, total=total, desc="Comparing", unit="asset", disable=options["verbosity"] == 0)  # noqa: E731
        groups = duplicate_groups(threshold, check_pixels=not options["vectors_only"], progress=bar)
        if options["json"]:
            self.stdout.write(json.dumps(groups))
            return
        titles = dict(Asset.objects.filter(pk__in=[pk for g in groups for pk in g]).values_list("pk", "title"))
        for n, group in enumerate(groups, start=1):
            self.stdout.write(f"Group {n} ({len(group)} assets): " + ", ".join(f"#{pk} {titles.get(pk, '')!r}" for pk in group))
        self.stdout.write(f"{len(groups)} duplicate group(s) among {total} embedded asset(s).")
