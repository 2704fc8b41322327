"""Where each registered model stands, per encoder alias: ready, pending, failed, missing."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from ...conf import app_settings
from ...encoders import get_encoder
from ...models import IndexEntry
from ...registry import get_indexes


class Command(BaseCommand):
    help = "Print, per registered model and indexed encoder alias, how many objects are ready, pending, failed and missing."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        stuck_after = timezone.now() - timedelta(seconds=app_settings.SWEEP_AFTER_SECONDS)
        rows = []
        for index in get_indexes():
            objects = index.get_queryset().order_by().count()
            for alias in app_settings.get_indexed_encoders():
                encoder = get_encoder(alias)
                report = IndexEntry.objects.for_model(index.model).for_encoder(alias).report(encoder.key, stuck_after, failures=0)
                states = {value: count for value, _label, count in report.states}
                current = IndexEntry.objects.for_model(index.model).for_encoder(alias).with_vector(encoder.key).count()
                rows.append({
                    "model": index.label, "encoder": alias, "model_key": encoder.key, "objects": objects, **states,
                    "missing": max(objects - current, 0), "stale": report.stale, "stuck": report.stuck,
                    "search": alias == app_settings.SEARCH_ENCODER,
                })
        if options["json"]:
            self.stdout.write(json.dumps(rows))
            return
        header = f"{'model':<28} {'encoder':<12} {'objects':>8} {'ready':>8} {'pending':>8} {'failed':>8} {'missing':>8} {'stale':>6}"
        self.stdout.write(header)
        for row in rows:
            self.stdout.write(
                f"{row['model']:<28} {row['encoder'] + ('*' if row['search'] else ''):<12} {row['objects']:>8} {row['ready']:>8} "
                f"{row['pending']:>8} {row['failed']:>8} {row['missing']:>8} {row['stale']:>6}"
            )
        self.stdout.write("* the alias search uses (SEARCH_ENCODER); missing: objects without a vector from its current model.")
