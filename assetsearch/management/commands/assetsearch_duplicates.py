"""Report groups of copies among the objects of one registered model (assets by default)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ...conf import app_settings
from ...duplicates import duplicate_groups
from ...encoders import get_encoder
from ...models import IndexEntry
from ...registry import NotRegistered, get_index


class Command(BaseCommand):
    help = (
        "List groups of objects (assets, or --model app_label.Model) whose images are copies of each other: "
        "cosine similarity >= --threshold, confirmed on pixels (re-encoded, resized or lightly cropped; "
        "DUPLICATE_PIXEL_TOLERANCE)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--model", default="assetsearch.asset", help="app_label.model_name of a registered model (default: assets)")
        parser.add_argument("--threshold", type=float, default=None, help=f"default: DUPLICATE_THRESHOLD ({app_settings.defaults['DUPLICATE_THRESHOLD']})")
        parser.add_argument("--vectors-only", action="store_true", help="skip the pixel check: every pair above the threshold")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, threshold: float | None, **options: Any) -> None:
        try:
            index = get_index(options["model"])
        except NotRegistered as exc:
            raise CommandError(str(exc)) from exc
        model, noun = index.model, index.model._meta.verbose_name_plural
        total = IndexEntry.objects.for_model(model).for_encoder(get_encoder().alias).with_vector().count()
        bar = lambda rows: tqdm(rows, total=total, desc="Comparing", unit="object", disable=options["verbosity"] == 0)  # noqa: E731
        groups = duplicate_groups(threshold, model=model, check_pixels=not options["vectors_only"], progress=bar)
        if options["json"]:
            self.stdout.write(json.dumps(groups))
            return
        names = {obj.pk: str(obj) for obj in model._default_manager.filter(pk__in=[pk for g in groups for pk in g])}
        for n, group in enumerate(groups, start=1):
            self.stdout.write(f"Group {n} ({len(group)} {noun}): " + ", ".join(f"#{pk} {names.get(pk, '')!r}" for pk in group))
        self.stdout.write(f"{len(groups)} duplicate group(s) among {total} embedded {noun}.")
