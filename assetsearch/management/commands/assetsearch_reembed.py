"""Backfill or refresh vectors of registered models: missing, stale, failed or all objects."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import QuerySet
from tqdm import tqdm

from ...encoders import get_encoder
from ...indexes import BaseImageIndex
from ...models import IndexEntry
from ...pipeline import chunked, embed_objects
from ...registry import NotRegistered, get_index, get_indexes
from ...tasks import enqueue_embedding


def select_objects(index: BaseImageIndex, alias: str, model_key: str, which: str) -> QuerySet:
    """The objects of ``index`` that ``which`` (missing, stale, failed, all) names for ``alias``."""
    objects = index.get_queryset().order_by("pk")
    entries = IndexEntry.objects.for_model(index.model).for_encoder(alias)
    if which == "all":
        return objects
    if which == "stale":
        return objects.filter(pk__in=entries.stale(model_key).values("object_id"))
    if which == "failed":
        return objects.filter(pk__in=entries.failed().values("object_id"))
    return objects.exclude(pk__in=entries.with_vector(model_key).values("object_id"))


class Command(BaseCommand):
    help = (
        "Embed objects of the registered models (--model app_label.Model, repeatable; default all) that have "
        "no vector from the encoder's model (--missing, the default; also rows that existed before the model "
        "was registered), whose vector is out of date (--stale), that failed (--failed), or all of them "
        "(--all). Enqueues batches for the workers, or embeds in this process with --sync."
    )

    def add_arguments(self, parser: Any) -> None:
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--missing", action="store_true", help="no vector from this model (default)")
        which.add_argument("--stale", action="store_true", help="a vector of another model, or of a replaced image")
        which.add_argument("--failed", action="store_true", help="objects whose embedding failed")
        which.add_argument("--all", action="store_true", help="every object (forces recomputation)")
        parser.add_argument("--model", action="append", default=None, help="app_label.model_name of a registered model (default: all)")
        parser.add_argument("--encoder", default=None, help="encoder alias (default SEARCH_ENCODER), e.g. the next model during a switch")
        parser.add_argument("--sync", action="store_true", help="embed here instead of enqueueing for the workers")
        parser.add_argument("--batch-size", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            encoder = get_encoder(options["encoder"])
            indexes = [get_index(label) for label in options["model"]] if options["model"] else get_indexes()
        except (KeyError, NotRegistered) as exc:
            raise CommandError(str(exc).strip('"')) from exc
        which = next((name for name in ("all", "stale", "failed") if options[name]), "missing")
        batch_size = options["batch_size"] or encoder.batch_size
        for index in indexes:
            ids = list(select_objects(index, encoder.alias, encoder.key, which).values_list("pk", flat=True))
            noun = index.model._meta.verbose_name_plural
            if not ids:
                self.stdout.write(f"Nothing to embed in {index.label} for {encoder.key}.")
                continue
            progress = tqdm(total=len(ids), desc=f"{index.label} ({encoder.key})", unit="img", disable=options["verbosity"] == 0)
            failed = 0
            for chunk in chunked(ids, batch_size):
                if options["sync"]:
                    failed += len(embed_objects(index.label, chunk, alias=encoder.alias, force=which == "all").failed)
                elif not enqueue_embedding(chunk, model=index.model, alias=encoder.alias, force=which == "all"):
                    raise CommandError("The broker is unreachable; nothing more was enqueued. Start it (or use --sync) and rerun.")
                progress.update(len(chunk))
            progress.close()
            verb = "Embedded" if options["sync"] else "Enqueued"
            self.stdout.write(self.style.SUCCESS(
                f"{verb} {len(ids)} {noun} of {index.label} for {encoder.key}" + (f"; {failed} failed." if failed else ".")
            ))
