"""System checks (``manage.py check``): the settings, the database and the encoder fit."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.files.storage import FileSystemStorage
from django.db import DatabaseError, connections

from .conf import app_settings
from .constants import VECTOR_DIMENSIONS
from .encoders import get_encoder
from .files import SignedURLBackend, get_file_serving_backend
from .models import Asset


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Warn about ASSETSEARCH keys that nothing reads (a typo, or a key removed in a release)."""
    return [
        Warning(
            f"ASSETSEARCH[{key!r}] is not an assetsearch setting; it is ignored.",
            hint="See assetsearch.conf.DEFAULTS for the settings and their defaults.",
            obj="settings.ASSETSEARCH",
            id="assetsearch.W002",
        )
        for key in app_settings.unknown_keys()
    ]


@register()
def check_file_serving(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The FILE_SERVING backend loads, and does not hand out public storage URLs."""
    try:
        backend = get_file_serving_backend()
    except (ImportError, TypeError) as exc:
        return [Error(f"ASSETSEARCH['FILE_SERVING'] cannot be loaded: {exc}", hint="See assetsearch.files for the backends.", id="assetsearch.E010")]
    if isinstance(backend, SignedURLBackend) and isinstance(Asset._meta.get_field("image").storage, FileSystemStorage):
        return [
            Warning(
                "SignedURLBackend redirects to the storage's URLs, and a FileSystemStorage's are public and never expire.",
                hint="Use it with object storage and signed URLs (django-storages S3, querystring_auth); "
                "else StreamingFileBackend or XAccelRedirectBackend.",
                id="assetsearch.W010",
            )
        ]
    return []


@register(Tags.database)
def check_database(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for alias in databases or []:
        connection = connections[alias]
        if connection.vendor != "postgresql":
            errors.append(
                Error(
                    f"assetsearch needs PostgreSQL with pgvector; database {alias!r} is {connection.vendor}.",
                    hint="Use a PostgreSQL database (ENGINE django.db.backends.postgresql) on a server with the pgvector extension.",
                    id="assetsearch.E001",
                )
            )
            continue
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
                available = cursor.fetchone() is not None
        except DatabaseError:
            continue  # unreachable database: Django reports that itself
        if not available:
            errors.append(
                Error(
                    f"The pgvector extension is not installed on database {alias!r}'s server.",
                    hint="Install pgvector (0.8 or newer); the first migration runs CREATE EXTENSION vector.",
                    id="assetsearch.E002",
                )
            )
    return errors


@register(Tags.models, deploy=True)
def check_encoder(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    # Deploy-only: it imports torch/open_clip (on the first dimensions read), too slow for every manage.py call.
    try:
        dimensions = get_encoder().dimensions
    except Exception as exc:  # noqa: BLE001 - report any configuration error as a check
        return [Error(f"The assetsearch encoder cannot be configured: {exc}", id="assetsearch.E003")]
    if dimensions != VECTOR_DIMENSIONS:
        return [
            Error(
                f"The encoder returns {dimensions}-d vectors but the database stores {VECTOR_DIMENSIONS}-d vectors.",
                hint="Use a model with 512-d embeddings (e.g. ViT-B-32), or migrate the vector column.",
                id="assetsearch.E004",
            )
        ]
    return []


@register(Tags.models, deploy=True)
def check_model_weights(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Warn when an encoder's weights are not on this machine and may not be downloaded: it would fail to load."""
    if app_settings.ALLOW_MODEL_DOWNLOAD:
        return []
    warnings: list[CheckMessage] = []
    for alias in app_settings.encoder_aliases():
        try:
            encoder = get_encoder(alias)
            missing = encoder.missing_weights()
        except Exception:  # noqa: BLE001 - a configuration error is E003's to report
            continue
        if missing:
            warnings.append(
                Warning(
                    f"The weights of encoder {alias!r} ({encoder.label}) cannot be loaded: {missing}, and downloads are off.",
                    hint="Put them in the cache once (`manage.py assetsearch_doctor --download` where the hub is reachable), "
                    "point PRETRAINED at a checkpoint file, or set ASSETSEARCH['ALLOW_MODEL_DOWNLOAD'] = True. See README 'The model'.",
                    id="assetsearch.W011",
                )
            )
    return warnings


@register(Tags.database)
def check_embeddings_current(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Warn when the configured model has not embedded the catalogue (a model change)."""
    if not databases or "default" not in databases:
        return []
    try:
        key = get_encoder().key
        missing = Asset.objects.ready().missing_embedding(key).count()
    except (DatabaseError, ValueError, OSError):
        return []
    if not missing:
        return []
    return [
        Warning(
            f"{missing} asset(s) have no vector from the configured model {key}; search cannot find them.",
            hint="Run `manage.py assetsearch_reembed --missing` (the model changed, or a backfill is unfinished).",
            id="assetsearch.W001",
        )
    ]


@register(Tags.database)
def check_index_parameters(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Warn when the live HNSW index was built with other parameters than the settings ask for."""
    if not databases or "default" not in databases:
        return []
    from .index import configured_parameters, live_parameters

    try:
        wanted, live = configured_parameters(), live_parameters()
    except ValueError as exc:
        return [Error(f"Invalid HNSW index setting: {exc}", id="assetsearch.E005")]
    except DatabaseError:
        return []  # unreachable or not migrated yet
    if live is None or live == wanted:
        return []
    return [
        Warning(
            f"The vector index was built with {live}; the settings ask for {wanted}.",
            hint="Run `manage.py assetsearch_rebuild_index` (a concurrent rebuild; searches go on meanwhile).",
            id="assetsearch.W003",
        )
    ]
