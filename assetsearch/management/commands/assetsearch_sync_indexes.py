"""Create (and with --prune drop) the per-alias HNSW vector indexes (assetsearch.index); rebuilding one with other parameters is assetsearch_rebuild_index."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ...index import plan_vector_indexes, sync_vector_indexes


class Command(BaseCommand):
    help = (
        "Create the HNSW index of each indexed encoder alias at its dimension (a partial index per alias); "
        "--prune drops those of aliases no longer indexed; --concurrently builds without blocking writes."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--prune", action="store_true", help="drop indexes of aliases no longer indexed (or of another dimension)")
        parser.add_argument("--concurrently", action="store_true", help="CREATE/DROP INDEX CONCURRENTLY (no write lock; slower)")
        parser.add_argument("--check", action="store_true", help="only say what would change")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["check"]:
            plan = plan_vector_indexes()
            for name, (alias, dimensions) in plan.wanted.items():
                state = "missing" if name in plan.missing else "present"
                self.stdout.write(f"{name}: alias {alias!r}, {dimensions}-d, {state}")
            for name in plan.obsolete:
                self.stdout.write(f"{name}: obsolete (--prune drops it)")
            return
        created, dropped = sync_vector_indexes(prune=options["prune"], concurrently=options["concurrently"])
        for name in created:
            self.stdout.write(f"Created {name}")
        for name in dropped:
            self.stdout.write(f"Dropped {name}")
        if not created and not dropped:
            self.stdout.write("The vector indexes are in place.")
