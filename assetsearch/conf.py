"""assetsearch settings: one ``ASSETSEARCH`` dict in the project's settings.

Every key is optional; :data:`DEFAULTS` documents them. Values are read
lazily and reloaded on ``setting_changed``, so ``override_settings`` works::

    from assetsearch.conf import app_settings
    app_settings.PAGE_SIZE

Encoders and rerankers are configured like ``CACHES``: aliases, each a dict
with ``BACKEND`` and its options. ``"default"`` is the encoder whose vectors
search uses; another alias (the next model during a migration, a larger
model for reranking) starts from the default's options and changes some::

    ASSETSEARCH = {
        "ENCODERS": {
            "default": {"MODEL": "ViT-B-32", "PRETRAINED": "laion2b_s34b_b79k"},
            "large": {"MODEL": "ViT-L-14", "PRETRAINED": "laion2b_s32b_b82k"},
        },
    }

The top-level ``MODEL``, ``PRETRAINED``, ``DEVICE``, ``BATCH_SIZE`` and
``ENCODER_BACKEND`` keys of earlier releases still configure the default
encoder, with a ``DeprecationWarning``; they go in the next release.
"""

from __future__ import annotations

import warnings
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

DEFAULTS: dict[str, Any] = {
    # Encoders by alias, like CACHES. PRETRAINED "bundled" means the
    # checkpoint shipped in assetsearch/demo_model (only valid with MODEL
    # "assetsearch-demo"); DEVICE "auto" picks CUDA when available, else CPU;
    # BATCH_SIZE is images per model call, and assets per embedding task of
    # the default encoder. Other aliases start from the default's options.
    # Vectors of any dimension are stored; each alias in INDEXED_ENCODERS gets
    # its own partial HNSW index at its model's dimension (manage.py
    # assetsearch_sync_indexes; migrate creates missing ones).
    # FIT is how a non-square image is fitted to the model's square input:
    # "centre-crop" (open_clip's own: the ends of wide and tall images are
    # cut away), "letterbox" (the whole image, shrunk and padded to a
    # square), "tiles" (overlapping square tiles across the long side, one
    # model call each, pooled into one vector) or "auto": the fit the model
    # reads best (centre-crop for open_clip's models; tiles, by measurement,
    # for the bundled one: README "The model"). Letterbox and tiles keep
    # banners' and tall posters' ends searchable. A fit other than
    # centre-crop is part of the encoder key, so a change marks stored
    # vectors stale (W-check, status page); `manage.py assetsearch_reembed
    # --stale` re-embeds them.
    # LABELS are phrases the model tells apart, the look-alikes a moderation
    # concept without counter-prompts is weighed against (MODERATION_LOOKALIKES):
    # a list, None, or "auto": the model's own (the bundled model's colour and
    # shape phrases; none for open_clip's models).
    "ENCODERS": {
        "default": {
            "BACKEND": "assetsearch.encoders.OpenCLIPEncoder",
            "MODEL": "assetsearch-demo",
            "PRETRAINED": "bundled",
            "DEVICE": "auto",
            "BATCH_SIZE": 32,
            "FIT": "auto",
            "LABELS": "auto",
        },
    },
    # Whether loading a model may download its weights (open_clip tags fetch
    # from the Hugging Face hub). Off: weights must be a checkpoint file,
    # "bundled", or already in the open_clip / Hugging Face cache, and a model
    # whose weights are not there fails at once (ModelUnavailable; check
    # assetsearch.W011 and `manage.py assetsearch_doctor` say so beforehand)
    # instead of hanging a request or a task on an unreachable hub.
    # `manage.py assetsearch_doctor --download` fetches them once.
    "ALLOW_MODEL_DOWNLOAD": False,
    # Seconds a process remembers that its model could not be loaded before
    # trying again, so requests and tasks fail at once meanwhile.
    "MODEL_RETRY_SECONDS": 60,
    # The encoder alias whose vectors search, moderation and duplicates use.
    # To change models without downtime: add the new alias to
    # INDEXED_ENCODERS, backfill it (assetsearch_reembed --encoder NEW), then
    # point SEARCH_ENCODER at it.
    "SEARCH_ENCODER": "default",
    # Aliases every new or changed image is embedded with; None: SEARCH_ENCODER only.
    "INDEXED_ENCODERS": None,
    # Host models to index, {"app_label.Model": "dotted.path.IndexClass"}; the
    # same as calling assetsearch.register(Model, IndexClass) in a ready().
    # assetsearch.Asset is always registered (assetsearch.indexes.AssetIndex).
    "INDEXES": {},
    # torch threads in each process; None leaves torch's default.
    "TORCH_THREADS": None,
    # Where ONNX Runtime / OpenVINO encoders keep the exported models (see
    # assetsearch.encoder_exports); None: $XDG_CACHE_HOME/assetsearch/encoders.
    "ENCODER_EXPORT_DIR": None,
    # Threads that decode a batch's files in the worker; None: the CPUs the
    # process may use (its affinity mask). 1 decodes one file at a time.
    "DECODE_THREADS": None,
    # Upload limits: bytes and decoded pixels (decompression-bomb guard).
    "MAX_UPLOAD_BYTES": 20 * 1024 * 1024,
    "MAX_IMAGE_PIXELS": 40_000_000,
    # Search images (decoded in the web process): JPEGs and 1/2/4-bit PNGs are
    # decoded at reduced size whatever their size; other formats are decoded in
    # full (up to 4 bytes a pixel) and refused above this, so one search image
    # stays under ~40 MB (assetsearch.images.decode_search_image).
    "MAX_QUERY_IMAGE_PIXELS": 6_000_000,
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
    # The HNSW index (assetsearch.index). M (links per node) and
    # EF_CONSTRUCTION (candidates per insertion) shape the graph when it is
    # built: after changing them run `manage.py assetsearch_rebuild_index`
    # (a concurrent rebuild, per encoder alias; check assetsearch.W003 says when it is due).
    # EF_SEARCH is the candidate list per query on a graph of 100k vectors;
    # ADAPTIVE_EF_SEARCH scales it by sqrt(vectors / 100k) and raises it for
    # deep pages and filtered scans (assetsearch.index.get_ef_search).
    # Chosen by measurement at 10k, 100k and 1M vectors (README "Benchmarks"):
    # 400 gives recall@10 1.000 at 100k; 10k vectors need no more than 40;
    # 1M: 0.962 at 400, 0.975 at 800, 0.984 scaled to 1000.
    "HNSW_M": 16,
    "HNSW_EF_CONSTRUCTION": 128,
    "HNSW_EF_SEARCH": 400,
    "HNSW_ADAPTIVE_EF_SEARCH": True,
    # Composed queries (text + image, negatives, ...) divide each part by how
    # much its similarity varies over the catalogue, estimated from this many
    # stored vectors and cached for COMPOSE_STATS_TIMEOUT seconds, so a weight
    # means the same for words and images, and order the COMPOSE_CANDIDATES
    # the index returns by each part's z-score capped at COMPOSE_PART_CAP
    # standard deviations, so no part outvotes the others (assetsearch.catalogue).
    # 0 mixes the parts' unit vectors as they are, in the index's order; the
    # same statistics calibrate moderation (MODERATION_BACKGROUND_SPREADS).
    "COMPOSE_SAMPLE_SIZE": 2000,
    "COMPOSE_STATS_TIMEOUT": 600,
    "COMPOSE_CANDIDATES": 200,
    "COMPOSE_PART_CAP": 1.5,
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
    # Near-duplicates: cosine similarity at or above which two objects are
    # candidates, and how far a candidate's pixels may be from a re-encoded,
    # resized or lightly cropped copy and still be listed (assetsearch.copies;
    # None lists every candidate, then raise the threshold to about 0.95).
    "DUPLICATE_THRESHOLD": 0.65,
    "DUPLICATE_PIXEL_TOLERANCE": 0.19,
    # Retrieve-and-rerank (assetsearch.rerank): backends like CACHES, the one
    # `rerank=True` uses, how many top candidates it reorders, and the total
    # time it may take before the vector order is kept.
    "RERANKERS": {"clip": {"BACKEND": "assetsearch.rerank.ClipReranker", "ENCODER": "default"}},
    "DEFAULT_RERANKER": "clip",
    "RERANK_TOP_N": 20,
    "RERANK_TIMEOUT": 20.0,
    # Moderation: what a concept is weighed against when it has no
    # counter-prompts: this many of the encoder's LABELS nearest its prompts,
    # narrower cases of a prompt skipped (its look-alikes, assetsearch.lookalikes;
    # the bundled model declares its colours and shapes, open_clip's models
    # none) ...
    "MODERATION_LOOKALIKES": 16,
    # ... or, where the encoder has no labels or MODERATION_LOOKALIKES is 0, these.
    "MODERATION_NEUTRAL_PROMPTS": ["a photo", "an ordinary picture", "a picture of everyday things"],
    # ... and always against "none of these": the catalogue's typical similarity
    # to each prompt plus this many standard deviations of it, so an asset
    # must stand out from the catalogue to score high (assetsearch.catalogue).
    # None: the prompts only.
    "MODERATION_BACKGROUND_SPREADS": 1.0,
    # While an enabled "hide" concept exists, an asset that is not ready yet
    # (pending or failed: not embedded, so not scored) is visible only to its
    # uploader and to users with the moderation permission, everywhere (API,
    # admin, search). False shows new uploads to everyone at once, before a
    # hide concept had its say.
    "HIDE_UNMODERATED": True,
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
    # The cache the throttle counters live in. Every web process must share
    # it (Redis, Memcached), or each process allows the whole rate; a
    # per-process cache (LocMemCache) is only right for a single process.
    # Answers 409 (asset not embedded yet) and 429 cost nothing; status
    # polls (GET /api/assets/<id>/) are not throttled.
    "THROTTLE_CACHE_ALIAS": "default",
    # Thumbnails: the longest side, in pixels, of the sizes that may be asked
    # for (anything else is refused, so clients cannot fill the storage), the
    # size the API links to, and the JPEG quality. They are cached in the
    # assets' storage under THUMBNAIL_PREFIX, keyed by a token of the stored
    # original (not by its bytes) and the size.
    "THUMBNAIL_SIZES": [128, 256, 512],
    "THUMBNAIL_DEFAULT_SIZE": 256,
    "THUMBNAIL_QUALITY": 85,
    "THUMBNAIL_PREFIX": "assetsearch/thumbnails",
    # Health checks (assetsearch.health, GET /api/health/): a shared secret a
    # monitor sends as "Authorization: Bearer <token>" (None: staff users
    # only), seconds to wait for the broker and for workers to answer, and
    # the age in seconds of the oldest pending asset that makes a warning.
    "HEALTH_TOKEN": None,
    "HEALTH_TIMEOUT": 2.0,
    "HEALTH_PENDING_WARN_SECONDS": 600,
    # How the file views (assets/<id>/original/ and .../thumbnail/) send a file
    # once the user may see it: BACKEND plus its options (assetsearch.files).
    # StreamingFileBackend: Django streams it from storage. XAccelRedirectBackend
    # ("LOCATION": an internal nginx location aliasing the storage root) and
    # XSendfileBackend (a local path for mod_xsendfile / lighttpd): the web
    # server sends it. SignedURLBackend ("EXPIRES": seconds): a redirect to the
    # storage's signed, expiring URL (django-storages S3 with querystring_auth).
    "FILE_SERVING": {"BACKEND": "assetsearch.files.StreamingFileBackend"},
}


# Top-level keys of earlier releases, read for one more release: option of the default encoder each sets.
DEPRECATED_ENCODER_KEYS = {
    "ENCODER_BACKEND": "BACKEND",
    "MODEL": "MODEL",
    "PRETRAINED": "PRETRAINED",
    "DEVICE": "DEVICE",
    "BATCH_SIZE": "BATCH_SIZE",
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

    def unknown_keys(self) -> list[str]:
        """Keys of ``settings.ASSETSEARCH`` that assetsearch does not read (typos, removed keys)."""
        return sorted(set(self.user_settings) - set(self.defaults) - set(DEPRECATED_ENCODER_KEYS))

    def encoder_config(self, alias: str = "default") -> dict[str, Any]:
        """The options of one encoder alias; any alias but ``"default"`` starts from the default's."""
        encoders = self.user_settings.get("ENCODERS", {})
        default = {**self.defaults["ENCODERS"]["default"], **self._deprecated_encoder_options(), **encoders.get("default", {})}
        if alias == "default":
            return default
        try:
            return {**default, **encoders[alias]}
        except KeyError:
            known = ", ".join(self.encoder_aliases())
            raise KeyError(f"Unknown assetsearch encoder alias {alias!r}; known: {known}") from None

    def encoder_aliases(self) -> list[str]:
        """Every configured encoder alias, ``"default"`` first."""
        return list(dict.fromkeys(["default", *self.user_settings.get("ENCODERS", {})]))

    def get_indexed_encoders(self) -> list[str]:
        """The aliases new and changed images are embedded with, the search alias first."""
        return list(dict.fromkeys([self.SEARCH_ENCODER, *(self.INDEXED_ENCODERS or ())]))

    def get_embedding_batch_size(self) -> int:
        """Assets per embedding task: the default encoder's ``BATCH_SIZE``."""
        return int(self.encoder_config()["BATCH_SIZE"])

    def _deprecated_encoder_options(self) -> dict[str, Any]:
        options = {new: self.user_settings[old] for old, new in DEPRECATED_ENCODER_KEYS.items() if old in self.user_settings}
        if options:
            old_keys = ", ".join(old for old in DEPRECATED_ENCODER_KEYS if old in self.user_settings)
            warnings.warn(
                f"ASSETSEARCH[{old_keys}] are deprecated; set them in ASSETSEARCH['ENCODERS']['default'] "
                "(BACKEND instead of ENCODER_BACKEND). They are read until the next release.",
                DeprecationWarning,
                stacklevel=4,
            )
        return options

    def reload(self) -> None:
        self._cached = None


app_settings = AppSettings(DEFAULTS)


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "ASSETSEARCH":
        app_settings.reload()


setting_changed.connect(_reload)
