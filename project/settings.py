"""Settings of the example site; the test suite uses them too.

Services: ``DATABASE_URL`` (PostgreSQL with pgvector) and
``CELERY_BROKER_URL`` (Redis) point at external servers. Unset, the database
is the embedded PostgreSQL (started on demand in ``var/pgdata``) and the
broker is the embedded Redis socket in ``var/redis`` (started by
``scripts/run`` and by the test suite).

Safe by default: ``DEBUG`` only with ``DJANGO_DEBUG=1``; the secret key is
``DJANGO_SECRET_KEY`` or a random one made once per install and kept in
``<var>/secret-key`` (mode 0600); ``DJANGO_HTTPS=1`` (a site served over
HTTPS, behind a proxy that sets ``X-Forwarded-Proto``) turns on secure
cookies, HSTS and the HTTPS redirect, so ``manage.py check --deploy`` is clean.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import embedded

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = embedded.var_dir()


def _install_secret_key(path: Path) -> str:
    """The key kept in ``path``, made (random, mode 0600) by the first process that needs it."""
    from django.core.management.utils import get_random_secret_key

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if key := path.read_text().strip():
            return key
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)  # left empty by a process that died while making it
    with os.fdopen(fd, "w") as handle:
        handle.write(get_random_secret_key() + "\n")
    return path.read_text().strip()


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or _install_secret_key(VAR_DIR / "secret-key")
DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "assetsearch",
    # The example site itself: its management commands (load_demo_catalogue).
    "project",
    # A host's own app whose images are indexed in place (the test suite's; README "Index your own models").
    "tests.hostapp",
]

MIDDLEWARE = [
    # Outermost: API answers stay JSON even when a middleware below fails.
    "assetsearch.api.middleware.APIErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]


def _database() -> dict:
    """The database, with a bounded pool of connections per process.

    Each process (a web worker with its threads, the Celery worker) holds at
    most ``DJANGO_DB_POOL_SIZE`` connections, whatever the server's threading;
    a request that cannot get one within 5 s is answered 503 (the API's
    error handler), never left to pile up. Health checks drop connections a
    database restart broke before a request uses them.
    """
    import dj_database_url

    url = os.environ.get("DATABASE_URL") or embedded.postgres_url()
    database = dj_database_url.parse(url, conn_max_age=0, conn_health_checks=True)
    pool_size = int(os.environ.get("DJANGO_DB_POOL_SIZE", "8"))
    if pool_size:
        # reconnect_timeout: psycopg_pool retries a failed connection with a
        # doubling delay and lets one such attempt grow the pool at a time, so
        # after a long outage it could wait a minute before trying again; given
        # up after 5 s, the next request tries at once.
        database.setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1, "max_size": pool_size, "timeout": 5.0, "reconnect_timeout": 5.0,
        }
    return database


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "OPTIONS": {"MAX_ENTRIES": 10000}}}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# scripts/run collects the static files; WhiteNoise serves them (gzip, cache headers).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("DJANGO_MEDIA_ROOT") or VAR_DIR / "media")
DATA_UPLOAD_MAX_MEMORY_SIZE = 30 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# Celery: broker from the environment, else the embedded Redis socket.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or embedded.redis_url(embedded.redis_socket())
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Recovery. Late acks and reject-on-worker-lost put a task back when its
# worker dies; Redis redelivers an unacknowledged message only after the
# visibility timeout, which must exceed the longest batch (and retry
# countdown, at most 32 s) or running batches are sent twice. So the fast
# path after a worker's death or a broker outage is the sweep: every 15 s it
# re-enqueues assets pending for over SWEEP_AFTER_SECONDS (30 s) once the
# queue has drained, so such assets are ready within about a minute.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 300}
CELERY_BEAT_SCHEDULE = {
    # Sweeps that queued up while no worker ran expire instead of running in a row.
    "assetsearch-sweep-pending": {"task": "assetsearch.tasks.sweep_pending_task", "schedule": 15.0, "options": {"expires": 14}},
}

# assetsearch: the bundled offline demo model. For real photos use
#   "MODEL": "ViT-B-32", "PRETRAINED": "laion2b_s34b_b79k"
_pretrained = os.environ.get("ASSETSEARCH_PRETRAINED", "bundled")
ASSETSEARCH = {
    "ENCODERS": {
        "default": {
            # e.g. assetsearch.runtime_encoders.ONNXRuntimeEncoder (see README "Deployment").
            "BACKEND": os.environ.get("ASSETSEARCH_ENCODER_BACKEND", "assetsearch.encoders.OpenCLIPEncoder"),
            "MODEL": os.environ.get("ASSETSEARCH_MODEL", "assetsearch-demo"),
            "PRETRAINED": None if _pretrained.lower() in ("", "none") else _pretrained,  # none: random weights
            "DEVICE": os.environ.get("ASSETSEARCH_DEVICE", "auto"),
            "BATCH_SIZE": int(os.environ.get("ASSETSEARCH_BATCH_SIZE", "32")),
        },
    },
    "ENCODER_EXPORT_DIR": VAR_DIR / "encoder-exports",
    "DECODE_THREADS": int(os.environ.get("ASSETSEARCH_DECODE_THREADS") or 0) or None,
}

# API throttle counters, shared by every web process: a cache on the Redis the
# site already runs (database 1; Celery's queues are in database 0).
CACHES["throttle"] = {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": embedded.redis_cache_url(CELERY_BROKER_URL, db=1),
}
ASSETSEARCH["THROTTLE_CACHE_ALIAS"] = "throttle"

REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
SPECTACULAR_SETTINGS = {
    "TITLE": "assetsearch API",
    "DESCRIPTION": "Upload images, follow their embedding, and search them by meaning.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The API has two "status" choice sets; name them (else `check --deploy` warns drf_spectacular.W001).
    "ENUM_NAME_OVERRIDES": {
        "EmbeddingStatusEnum": "assetsearch.models.EmbeddingStatus",
        "FlagStatusEnum": "assetsearch.models.FlagStatus",
    },
}

# A site served over HTTPS (behind a proxy that sets X-Forwarded-Proto).
if os.environ.get("DJANGO_HTTPS") == "1":
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"assetsearch": {"handlers": ["console"], "level": os.environ.get("ASSETSEARCH_LOG_LEVEL", "INFO")}},
}
