"""Import a folder of images as assets; embedding is enqueued in batches."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ...conf import app_settings
from ...images import content_hash
from ...models import Asset
from ...pipeline import chunked
from ...tasks import create_assets

EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}


class Command(BaseCommand):
    help = "Import every image in a folder as an asset (title from the file name); embedding follows in the background."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("folder", type=Path)
        parser.add_argument("--recursive", "-r", action="store_true", help="include sub-folders")
        parser.add_argument("--tag", action="append", default=[], dest="tags", help="tag every imported asset (repeatable)")
        parser.add_argument("--skip-existing", action="store_true", help="skip files whose content is already in the catalogue")

    def handle(self, folder: Path, recursive: bool, tags: list[str], skip_existing: bool, **options: Any) -> None:
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder.")
        pattern = "**/*" if recursive else "*"
        paths = sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in EXTENSIONS)
        if not paths:
            raise CommandError(f"No images ({', '.join(sorted(EXTENSIONS))}) in {folder}.")
        known = set(Asset.objects.values_list("content_hash", flat=True)) if skip_existing else set()
        created = skipped = 0
        progress = tqdm(total=len(paths), desc="Importing", unit="image", disable=options["verbosity"] == 0)
        # One INSERT, one commit and one task per batch: workers start
        # embedding while the import goes on, and an interruption keeps what
        # was done.
        for chunk in chunked(paths, app_settings.get_embedding_batch_size()):
            with ExitStack() as files:
                assets = []
                for path in chunk:
                    handle = files.enter_context(path.open("rb"))
                    if skip_existing and content_hash(handle) in known:
                        skipped += 1
                        continue
                    title = path.stem.replace("_", " ").replace("-", " ")
                    assets.append(Asset(image=File(handle, name=path.name), title=title, tags=list(tags)))
                created += len(create_assets(assets))
            progress.update(len(chunk))
        progress.close()
        if options["verbosity"]:
            self.stdout.write(self.style.SUCCESS(f"Imported {created} image(s), skipped {skipped}; embedding is queued."))
