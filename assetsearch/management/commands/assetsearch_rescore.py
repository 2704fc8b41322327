"""Re-score the catalogue for moderation concepts (no re-embedding)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ...models import ModerationConcept
from ...moderation import rescore_concept


class Command(BaseCommand):
    help = "Re-score every embedded asset against the named (or all enabled) moderation concepts, here and now."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("concepts", nargs="*", help="concept names (default: all enabled)")

    def handle(self, *args: Any, concepts: list[str], **options: Any) -> None:
        selected = ModerationConcept.objects.filter(name__in=concepts) if concepts else ModerationConcept.objects.filter(enabled=True)
        missing = set(concepts) - set(selected.values_list("name", flat=True))
        if missing:
            raise CommandError(f"Unknown concept(s): {', '.join(sorted(missing))}.")
        for concept in selected:
            bar = tqdm(desc=concept.name, unit="asset", disable=options["verbosity"] == 0)

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.n = done
                bar.refresh()

            counts = rescore_concept(concept.pk, progress=progress)
            bar.close()
            self.stdout.write(f"{concept.name}: {counts.flagged} flag(s) set or refreshed, {counts.cleared} cleared.")
