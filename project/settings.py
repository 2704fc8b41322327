"""Settings of the example site; the test suite uses them too.

Services: ``DATABASE_URL`` (PostgreSQL with pgvector) and
``CELERY_BROKER_URL`` (Redis) point at external servers. Unset, the database
is the embedded PostgreSQL (started on demand in ``var/pgdata``) and the
broker is the embedded Redis socket in ``var/redis`` (started by
``scripts/run`` and by the test suite).
"""

from __future__ import annotations

import os
from pathlib import Path

from . import embedded

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = embedded.var_dir()

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "assetsearch-example-insecure-key-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
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
    "django.middleware.security.SecurityMiddleware",
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
    import dj_database_url

    url = os.environ.get("DATABASE_URL") or embedded.postgres_url()
    return dj_database_url.parse(url, conn_max_age=60)


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "OPTIONS": {"MAX_ENTRIES": 10000}}}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
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
# A message not acknowledged in time is redelivered; embedding batches are short.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BEAT_SCHEDULE = {
    "assetsearch-sweep-pending": {"task": "assetsearch.tasks.sweep_pending_task", "schedule": 300.0},
}

# assetsearch: the bundled offline demo model. For real photos use
#   "MODEL": "ViT-B-32", "PRETRAINED": "laion2b_s34b_b79k"
_pretrained = os.environ.get("ASSETSEARCH_PRETRAINED", "bundled")
ASSETSEARCH = {
    "ENCODERS": {
        "default": {
            "MODEL": os.environ.get("ASSETSEARCH_MODEL", "assetsearch-demo"),
            "PRETRAINED": None if _pretrained.lower() in ("", "none") else _pretrained,  # none: random weights
            "DEVICE": os.environ.get("ASSETSEARCH_DEVICE", "auto"),
            "BATCH_SIZE": int(os.environ.get("ASSETSEARCH_BATCH_SIZE", "32")),
        },
    },
}

REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
SPECTACULAR_SETTINGS = {
    "TITLE": "assetsearch API",
    "DESCRIPTION": "Upload images, follow their embedding, and search them by meaning.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"assetsearch": {"handlers": ["console"], "level": os.environ.get("ASSETSEARCH_LOG_LEVEL", "INFO")}},
}
