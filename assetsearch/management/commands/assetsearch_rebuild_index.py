"""Rebuild the per-alias HNSW indexes concurrently with the configured (or given) build parameters."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ...conf import app_settings
from ...index import IndexParameters, configured_parameters, index_size_bytes, live_parameters, rebuild_index


class Command(BaseCommand):
    help = (
        "Rebuild each indexed encoder alias's vector index with HNSW_M / HNSW_EF_CONSTRUCTION (or --m / --ef-construction): "
        "CREATE INDEX CONCURRENTLY beside the old index, then swap; searches and uploads go on meanwhile. "
        "Does nothing for an index that already has those parameters, unless --force. "
        "Which indexes exist is assetsearch_sync_indexes's concern."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--m", type=int, help="links per node (default: the HNSW_M setting)")
        parser.add_argument("--ef-construction", type=int, help="candidates per insertion (default: HNSW_EF_CONSTRUCTION)")
        parser.add_argument(
            "--encoder", action="append", metavar="ALIAS",
            help="the encoder alias whose index to rebuild (repeatable; default: every indexed alias)",
        )
        parser.add_argument("--force", action="store_true", help="rebuild even if the parameters are unchanged")
        parser.add_argument(
            "--maintenance-work-mem", default=None,
            help="PostgreSQL maintenance_work_mem for the build, e.g. 2GB (the graph should fit: about 1.4 GB per million vectors)",
        )
        parser.add_argument("--check", action="store_true", help="only say whether a rebuild is due (exit status 1 if it is)")

    def handle(self, *args: Any, m: int | None, ef_construction: int | None, encoder: list[str] | None, force: bool,
               maintenance_work_mem: str | None, check: bool, **options: Any) -> None:
        try:
            configured = configured_parameters()
            wanted = IndexParameters(m or configured.m, ef_construction or configured.ef_construction).validate()
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        aliases = encoder or app_settings.get_indexed_encoders()
        due = []
        for alias in aliases:
            live = live_parameters(alias)
            self.stdout.write(f"Encoder {alias!r}: live index {live or 'none'}; wanted: {wanted}.")
            if force or live != wanted:
                due.append(alias)
        if check:
            if due:
                raise CommandError("A rebuild is due: run manage.py assetsearch_rebuild_index.", returncode=1)
            self.stdout.write("Up to date.")
            return
        if not due:
            self.stdout.write("Up to date; nothing to do (--force rebuilds anyway).")
            return
        for alias in due:
            started = time.monotonic()
            with tqdm(total=0, unit="row", disable=options["verbosity"] < 1, file=self.stderr._out, desc=alias) as bar:

                def progress(phase: str, done: int, total: int) -> None:
                    bar.set_description(f"{alias}: {phase}")
                    bar.total = total
                    bar.n = done
                    bar.refresh()

                rebuild_index(wanted, alias=alias, maintenance_work_mem=maintenance_work_mem, progress=progress)
            self.stdout.write(self.style.SUCCESS(
                f"Rebuilt the index of {alias!r} with {wanted} in {time.monotonic() - started:.1f} s "
                f"({index_size_bytes(alias) / 1e6:,.0f} MB)."
            ))
