"""Export the ONNX Runtime / OpenVINO encoders' models ahead of time (at deploy, before the web starts)."""

from __future__ import annotations

import time
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ...conf import app_settings
from ...encoder_exports import ExportError, export_encoder
from ...encoders import get_encoder
from ...runtime_encoders import BaseExportedEncoder


class Command(BaseCommand):
    help = (
        "Export the open_clip model of every encoder alias served by ONNX Runtime or OpenVINO "
        "(or the aliases named) to the export folder, convert it for its runtime and check it "
        "against torch, so that web processes and workers start without torch's export cost."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("aliases", nargs="*", help="encoder aliases (default: all that use an exported model)")
        parser.add_argument("--force", action="store_true", help="export again even if an export exists")

    def handle(self, *args: Any, **options: Any) -> None:
        aliases = options["aliases"] or list(dict.fromkeys(["default", *app_settings.ENCODERS]))
        try:
            encoders = [get_encoder(alias) for alias in aliases]
        except (KeyError, ImproperlyConfigured) as exc:
            raise CommandError(str(exc)) from exc
        exported = [encoder for encoder in encoders if isinstance(encoder, BaseExportedEncoder)]
        if options["aliases"] and len(exported) < len(encoders):
            others = ", ".join(encoder.alias for encoder in encoders if encoder not in exported)
            raise CommandError(f"Not served from an exported model: {others}")
        if not exported:
            self.stdout.write("No encoder uses ONNX Runtime or OpenVINO; nothing to export.")
            return
        for encoder in tqdm(exported, desc="Exporting", unit="encoder", disable=len(exported) < 2):
            started = time.perf_counter()
            try:
                folder = export_encoder(encoder.source, force=options["force"])
                encoder.warm_up()  # converts for the runtime and checks the probe
            except (ExportError, ImproperlyConfigured) as exc:
                raise CommandError(f"Encoder {encoder.alias!r}: {exc}") from exc
            self.stdout.write(
                f"{encoder.alias}: {encoder.key} for {encoder.runtime} ({encoder.precision}) "
                f"in {folder} ({time.perf_counter() - started:.1f} s)"
            )
