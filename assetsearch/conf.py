"""assetsearch settings: one ``ASSETSEARCH`` dict in the project's settings.

Every key is optional; :data:`DEFAULTS` documents them. Values are read
lazily and reloaded on ``setting_changed``, so ``override_settings`` works::

    from assetsearch.conf import app_settings
    app_settings.BATCH_SIZE

The top-level ``MODEL`` / ``PRETRAINED`` / ``DEVICE`` / ``BATCH_SIZE`` keys
configure the ``"default"`` encoder, the one whose vectors search uses.
``ENCODERS`` adds other aliases (e.g. the next model during a migration, or a
larger model for reranking), each a dict like ``CACHES`` entries::

    ASSETSEARCH = {
        "MODEL": "ViT-B-32",
        "PRETRAINED": "laion2b_s34b_b79k",
        "ENCODERS": {"large": {"MODEL": "ViT-L-14", "PRETRAINED": "laion2b_s32b_b82k"}},
    }
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

DEFAULTS: dict[str, Any] = {
    # The default encoder. "bundled" means the checkpoint shipped in
    # assetsearch/demo_model (only valid with MODEL "assetsearch-demo").
    "ENCODER_BACKEND": "assetsearch.encoders.OpenCLIPEncoder",
    "MODEL": "assetsearch-demo",
    "PRETRAINED": "bundled",
    # "auto" picks CUDA when available, else CPU.
    "DEVICE": "auto",
    # Images per model call in the worker.
    "BATCH_SIZE": 32,
    # torch threads in each process; None leaves torch's default.
    "TORCH_THREADS": None,
    "ENCODERS": {},
    # Dimension of the stored vectors (the column type); the encoder must match.
    "DIMENSIONS": 512,
    # Upload limits: bytes and decoded pixels (decompression-bomb guard).
    "MAX_UPLOAD_BYTES": 20 * 1024 * 1024,
    "MAX_IMAGE_PIXELS": 40_000_000,
    # Image decodes running at once in one process (web or worker): each holds
    # a decoded frame, so this bounds the memory that concurrent searches by
    # image can take (assetsearch.images).
    "MAX_CONCURRENT_DECODES": 2,
    # Enqueue embedding when an asset is saved with a new file.
    "AUTO_EMBED": True,
    # Pipeline: retries of transient errors, with exponential backoff.
    "MAX_RETRIES": 5,
    # Pending assets older than this (seconds) are re-enqueued by the sweep
    # (which beat runs every 15 s in the example site, and which skips its turn
    # while embedding messages are still queued: they hold those assets).
    "SWEEP_AFTER_SECONDS": 30,
    "QUEUE": None,  # Celery queue for embedding tasks; None uses the default queue.
    # Search.
    # HNSW candidate list per query: recall@10 0.975 at 100, 0.993 at 200 on
    # 100k vectors, at about the same latency (benchmarks/search.py).
    "HNSW_EF_SEARCH": 200,
    # Composed queries (text + image, negatives, ...) divide each part by how
    # much its similarity varies over the catalogue, estimated from this many
    # stored vectors and cached for COMPOSE_STATS_TIMEOUT seconds, so a weight
    # means the same for words and images (see assetsearch.search). 0 mixes
    # the parts' unit vectors as they are.
    "COMPOSE_SAMPLE_SIZE": 2000,
    "COMPOSE_STATS_TIMEOUT": 600,
    "PAGE_SIZE": 20,
    "MAX_PAGE_SIZE": 100,
    "TEXT_CACHE_TIMEOUT": 24 * 3600,
    "TEXT_CACHE_ALIAS": "default",
    # Filtered queries matching at most this many assets scan them exactly
    # (cheap, and exact) instead of walking the index with iterative scans.
    "EXACT_SCAN_MAX_ROWS": 1000,
    # Hybrid search: Postgres text search configuration, and the RRF constant.
    "FULL_TEXT_CONFIG": "english",
    "RRF_K": 60,
    # Candidates taken from each ranking before fusing (at least offset+limit).
    "HYBRID_CANDIDATES": 100,
    # Tag suggestions: extra labels beside the catalogue's own tags, and the
    # prompt each label is embedded with ("{}" is the label).
    "TAG_LABELS": [],
    "TAG_PROMPT": "{}",
    # Near-duplicates: cosine similarity at or above which two assets are duplicates.
    "DUPLICATE_THRESHOLD": 0.95,
    # Retrieve-and-rerank (assetsearch.rerank): backends like CACHES, the one
    # `rerank=True` uses, how many top candidates it reorders, and the total
    # time it may take before the vector order is kept.
    "RERANKERS": {"clip": {"BACKEND": "assetsearch.rerank.ClipReranker", "ENCODER": "default"}},
    "DEFAULT_RERANKER": "clip",
    "RERANK_TOP_N": 20,
    "RERANK_TIMEOUT": 20.0,
    # Moderation: what a concept is weighed against when it has no counter-prompts.
    "MODERATION_NEUTRAL_PROMPTS": ["a photo", "an ordinary picture", "a picture of everyday things"],
    # REST API (assetsearch.api). Authentication classes, as dotted paths; token
    # authentication needs "rest_framework.authtoken" in INSTALLED_APPS (ours
    # throttles failed tokens: THROTTLE_RATES["auth_failure"]).
    "API_AUTHENTICATION_CLASSES": [
        "assetsearch.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # True opens the read-only endpoints (asset list and detail, search, similar,
    # duplicates, tag suggestions, thumbnails) to anonymous users. Writes always
    # need the model permissions.
    "API_ANONYMOUS_SEARCH": False,
    # Requests per user (or IP when anonymous) for each throttle scope, in DRF's
    # "<count>/<sec|min|hour|day>" form; None turns a scope off. "search" covers
    # the search, similar, duplicates and tag-suggestion endpoints, "upload" the
    # asset upload and file replacement; "auth_failure" counts failed tokens
    # (and failed logins where throttle_failed_logins wraps the login view)
    # per address, which is then refused until the window has passed.
    "THROTTLE_RATES": {"search": "120/min", "upload": "30/min", "auth_failure": "10/min"},
    # Thumbnails: the longest side, in pixels, of the sizes that may be asked
    # for (anything else is refused, so clients cannot fill the storage), the
    # size the API links to, and the JPEG quality. They are cached in the
    # assets' storage under THUMBNAIL_PREFIX, keyed by content hash and size.
    "THUMBNAIL_SIZES": [128, 256, 512],
    "THUMBNAIL_DEFAULT_SIZE": 256,
    "THUMBNAIL_QUALITY": 85,
    "THUMBNAIL_PREFIX": "assetsearch/thumbnails",
}


class AppSettings:
    """Attribute access to ``settings.ASSETSEARCH`` merged over :data:`DEFAULTS`."""

    def __init__(self, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._cached: dict[str, Any] | None = None

    @property
    def user_settings(self) -> dict[str, Any]:
        if self._cached is None:
            self._cached = dict(getattr(settings, "ASSETSEARCH", {}) or {})
        return self._cached

    def __getattr__(self, name: str) -> Any:
        if name not in self.defaults:
            raise AttributeError(f"Invalid assetsearch setting: {name!r}")
        return self.user_settings.get(name, self.defaults[name])

    def encoder_config(self, alias: str = "default") -> dict[str, Any]:
        """The options of one encoder alias (``"default"`` is the top-level keys)."""
        base = {
            "BACKEND": self.ENCODER_BACKEND,
            "MODEL": self.MODEL,
            "PRETRAINED": self.PRETRAINED,
            "DEVICE": self.DEVICE,
            "BATCH_SIZE": self.BATCH_SIZE,
        }
        if alias == "default":
            return base
        try:
            return {**base, **self.ENCODERS[alias]}
        except KeyError:
            raise KeyError(f"Unknown assetsearch encoder alias {alias!r}; known: default, {', '.join(self.ENCODERS)}") from None

    def reload(self) -> None:
        self._cached = None


app_settings = AppSettings(DEFAULTS)


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "ASSETSEARCH":
        app_settings.reload()


setting_changed.connect(_reload)
