"""Suggest a concept's threshold from its reviewed flags."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ...models import ModerationConcept
from ...moderation import calibrate


class Command(BaseCommand):
    help = (
        "Print precision and recall of a moderation concept's reviewed flags (confirmed = right, "
        "dismissed = wrong) at candidate thresholds, and the lowest threshold reaching --target-precision."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("concept", help="concept name")
        parser.add_argument("--target-precision", type=float, default=0.9)
        parser.add_argument("--apply", action="store_true", help="save the suggested threshold on the concept")

    def handle(self, concept: str, target_precision: float, apply: bool, **options: Any) -> None:
        if not 0 < target_precision <= 1:
            raise CommandError("--target-precision must be in (0, 1].")
        try:
            obj = ModerationConcept.objects.get(name=concept)
        except ModerationConcept.DoesNotExist:
            names = ", ".join(ModerationConcept.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"No concept named {concept!r} (known: {names}).") from None
        rows, suggestion = calibrate(obj, target_precision=target_precision)
        if not rows:
            raise CommandError(f"{obj.name!r} has no reviewed flags yet; confirm or dismiss some first.")
        self.stdout.write("| threshold | precision | recall | flagged |\n|---|---|---|---|")
        for row in rows:
            self.stdout.write(f"| {row.threshold:.3f} | {row.precision:.3f} | {row.recall:.3f} | {row.flagged} |")
        if suggestion is None:
            self.stdout.write(self.style.WARNING(f"No threshold reaches precision {target_precision:.2f}."))
            return
        self.stdout.write(self.style.SUCCESS(f"Suggested threshold for precision >= {target_precision:.2f}: {suggestion:.3f} (current {obj.threshold:.3f})"))
        if apply:
            obj.threshold = suggestion
            obj.save()
            self.stdout.write("Saved; the catalogue is being re-scored.")
