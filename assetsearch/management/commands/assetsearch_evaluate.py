"""Print retrieval quality and latency for a labelled query set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ...evaluation import evaluate, load_query_set
from ...exceptions import SearchError


class Command(BaseCommand):
    help = "Evaluate search on a labelled query set (JSON; see assetsearch.evaluation) and print a table."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("query_set", type=Path)
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def handle(self, query_set: Path, **options: Any) -> None:
        try:
            items = json.loads(query_set.read_text())
            queries = load_query_set(items, base_dir=query_set.parent)
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read {query_set}: {exc}") from exc
        if not queries:
            raise CommandError(f"{query_set} holds no queries.")
        try:
            metrics = evaluate(queries)
        except SearchError as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(metrics, indent=2))
            return
        self.stdout.write("| metric | value |\n|---|---|")
        for name, value in metrics.items():
            self.stdout.write(f"| {name} | {value:.3f} |" if isinstance(value, float) else f"| {name} | {value} |")
