"""Backfill or refresh vectors: missing, stale, failed or all assets."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ...encoders import get_encoder
from ...models import Asset
from ...pipeline import chunked, embed_assets
from ...tasks import enqueue_embedding


class Command(BaseCommand):
    help = (
        "Embed assets that have no vector from the configured model (--missing, the default), "
        "whose file changed since (--stale), that failed (--failed), or all of them (--all). "
        "Enqueues batches for the workers, or embeds in this process with --sync."
    )

    def add_arguments(self, parser: Any) -> None:
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--missing", action="store_true", help="no vector from this model (default)")
        which.add_argument("--stale", action="store_true", help="vector made from an older file")
        which.add_argument("--failed", action="store_true", help="assets whose embedding failed")
        which.add_argument("--all", action="store_true", help="every asset (forces recomputation)")
        parser.add_argument("--encoder", default="default", help="encoder alias, e.g. the next model during a switch")
        parser.add_argument("--sync", action="store_true", help="embed here instead of enqueueing for the workers")
        parser.add_argument("--batch-size", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            encoder = get_encoder(options["encoder"])
        except KeyError as exc:
            raise CommandError(str(exc)) from exc
        assets = Asset.objects.order_by("pk")
        if options["all"]:
            selected = assets
        elif options["stale"]:
            selected = assets.stale_embedding(encoder.key)
        elif options["failed"]:
            selected = assets.failed()
        else:
            selected = assets.missing_embedding(encoder.key)
        ids = list(selected.values_list("pk", flat=True))
        if not ids:
            self.stdout.write(f"Nothing to embed for {encoder.key}.")
            return
        batch_size = options["batch_size"] or encoder.batch_size
        progress = tqdm(total=len(ids), desc=f"Embedding ({encoder.key})", unit="asset", disable=options["verbosity"] == 0)
        failed = 0
        for chunk in chunked(ids, batch_size):
            if options["sync"]:
                failed += len(embed_assets(chunk, alias=options["encoder"], force=options["all"]).failed)
            elif not enqueue_embedding(chunk, alias=options["encoder"], force=options["all"]):
                raise CommandError("The broker is unreachable; nothing more was enqueued. Start it (or use --sync) and rerun.")
            progress.update(len(chunk))
        progress.close()
        verb = "Embedded" if options["sync"] else "Enqueued"
        self.stdout.write(self.style.SUCCESS(f"{verb} {len(ids)} asset(s) for {encoder.key}" + (f"; {failed} failed." if failed else ".")))
