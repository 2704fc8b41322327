"""Re-enqueue assets stuck in ``pending`` (e.g. saved while the broker was down)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand

from ...conf import app_settings
from ...tasks import sweep_pending


class Command(BaseCommand):
    help = "Re-enqueue assets that have been pending for longer than --older-than seconds."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--older-than", type=float, default=None,
            help=f"seconds (default: the SWEEP_AFTER_SECONDS setting, {app_settings.defaults['SWEEP_AFTER_SECONDS']})",
        )

    def handle(self, *args: Any, older_than: float | None, **options: Any) -> None:
        age = None if older_than is None else timedelta(seconds=older_than)
        count = sweep_pending(age)
        self.stdout.write(f"Re-enqueued {count} pending asset(s).")
