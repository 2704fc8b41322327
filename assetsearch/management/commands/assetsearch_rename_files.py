"""Give files stored by earlier releases (named after the client's file) a server-chosen name."""

from __future__ import annotations

import os
from typing import Any

from django.core.files import File
from django.core.management.base import BaseCommand
from django.db import transaction
from tqdm import tqdm

from ...files import is_server_name
from ...models import Asset


class Command(BaseCommand):
    help = (
        "Store under a server-chosen name (random, extension from the detected format) every asset file "
        "that still has the name its uploader gave it; the old file and its thumbnails are removed."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        legacy = [asset.pk for asset in Asset.objects.only("pk", "image").iterator() if not is_server_name(asset.image.name)]
        renamed = missing = 0
        for pk in tqdm(legacy, desc="Renaming", unit="file", disable=options["verbosity"] == 0):
            asset = Asset.objects.get(pk=pk)
            client_name = asset.original_filename or os.path.basename(asset.image.name)
            try:
                stored = asset.image.open("rb")
            except FileNotFoundError:
                missing += 1
                continue
            # A replacement by the same bytes: save() stores it under a new name, keeps the
            # embedding (same content hash), and the old file goes after commit (assetsearch.signals).
            with stored, transaction.atomic():
                asset.image = File(stored.file, name=client_name)
                asset.save(update_fields=["image", "updated_at"])
            renamed += 1
        if options["verbosity"]:
            self.stdout.write(self.style.SUCCESS(f"Renamed {renamed} file(s); {missing} missing from storage."))
