"""System checks (``manage.py check``): the settings, the database and the encoder fit."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.files.storage import FileSystemStorage
from django.db import DatabaseError, connections

from .conf import app_settings
from .encoders import get_encoder
from .files import SignedURLBackend, get_file_serving_backend
from .models import Asset, IndexEntry
from .registry import get_indexes


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
    errors: list[CheckMessage] = []
    for alias in app_settings.get_indexed_encoders():
        try:
            get_encoder(alias).dimensions
        except Exception as exc:  # noqa: BLE001 - report any configuration error as a check
            errors.append(Error(f"The assetsearch encoder {alias!r} cannot be configured: {exc}", id="assetsearch.E003"))
    return errors


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


@register(Tags.database, deploy=True)
def check_vector_indexes(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Each indexed encoder alias has its HNSW index at its dimension (else search scans every row)."""
    if not databases or "default" not in databases:
        return []
    from .index import plan_vector_indexes

    try:
        missing = plan_vector_indexes().missing
    except (DatabaseError, ValueError, OSError, KeyError):
        return []
    return [
        Warning(
            f"The encoder alias {alias!r} ({dimensions}-d) has no vector index; its searches scan every vector.",
            hint="Run `manage.py assetsearch_sync_indexes` (migrate also creates missing ones).",
            id="assetsearch.W004",
        )
        for alias, dimensions in missing.values()
    ]


@register(Tags.database)
def check_index_parameters(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Warn for each alias whose live HNSW index was built with other parameters than the settings ask for."""
    if not databases or "default" not in databases:
        return []
    from .index import configured_parameters, live_index_parameters

    try:
        wanted, live = configured_parameters(), live_index_parameters()
    except ValueError as exc:
        return [Error(f"Invalid HNSW index setting: {exc}", id="assetsearch.E005")]
    except (DatabaseError, OSError, KeyError):
        return []  # unreachable or not migrated yet; an unloadable encoder is E003's
    return [
        Warning(
            f"The vector index of encoder {alias!r} was built with {parameters}; the settings ask for {wanted}.",
            hint="Run `manage.py assetsearch_rebuild_index` (a concurrent rebuild; searches go on meanwhile).",
            id="assetsearch.W003",
        )
        for alias, parameters in live.items()
        if parameters is not None and parameters != wanted
    ]


@register(Tags.database)
def check_embeddings_current(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Warn when the configured model has not embedded a registered model's objects (a model change)."""
    if not databases or "default" not in databases:
        return []
    warnings: list[CheckMessage] = []
    try:
        encoder = get_encoder()
        for index in get_indexes():
            entries = IndexEntry.objects.for_model(index.model).for_encoder(encoder.alias)
            missing = entries.ready().exclude(model_key=encoder.key).count()
            if missing:
                warnings.append(
                    Warning(
                        f"{missing} {index.model._meta.verbose_name}(s) have no vector from the configured model {encoder.key}; search cannot find them.",
                        hint=f"Run `manage.py assetsearch_reembed --model {index.label} --stale` (the model changed, or a backfill is unfinished).",
                        id="assetsearch.W001",
                    )
                )
    except (DatabaseError, ValueError, OSError):
        return []
    return warnings
