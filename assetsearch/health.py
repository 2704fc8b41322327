"""Health of the pipeline's parts, for monitoring: :func:`get_health`.

Each check answers ``ok``, ``warning`` or ``error`` with a message a person
can act on. They are cheap enough to poll every few seconds and never load
the model into the calling (web) process: whether the weights are there is
read from the file system, and whether a worker holds the model shows in the
pipeline itself (a failing model fails assets; pending work then ages).

The HTTP endpoint is ``/api/health/`` (:mod:`assetsearch.api.health`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db import DatabaseError
from django.utils import timezone

from .conf import app_settings
from .querysets import pgvector_version

OK, WARNING, ERROR = "ok", "warning", "error"
SEVERITY = {OK: 0, WARNING: 1, ERROR: 2}


@dataclass
class CheckResult:
    status: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    took_ms: float = 0.0


def check_database() -> CheckResult:
    """The database answers and has the ``vector`` extension."""
    try:
        version = pgvector_version()
    except DatabaseError as exc:
        return CheckResult(ERROR, f"The database does not answer: {exc}".strip())
    if version is None:
        return CheckResult(ERROR, "The pgvector extension is not created in the database; run manage.py migrate.")
    return CheckResult(OK, f"PostgreSQL with pgvector {version}.", {"pgvector": version})


def get_celery_app() -> Any:
    from celery import current_app

    return current_app


def get_embedding_queue() -> str:
    """The queue embedding tasks go to: ``QUEUE``, else the Celery app's default queue."""
    return app_settings.QUEUE or get_celery_app().conf.task_default_queue


def check_broker() -> CheckResult:
    """The broker accepts a connection within ``HEALTH_TIMEOUT``."""
    app = get_celery_app()
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=app_settings.HEALTH_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - any failure to connect is the answer
        return CheckResult(ERROR, f"The broker does not answer: {exc}")
    return CheckResult(OK, "The broker answers.", {"transport": app.conf.broker_url.split(":", 1)[0]})


def check_worker() -> CheckResult:
    """A live worker consumes the embedding queue: it answers a broadcast within ``HEALTH_TIMEOUT``."""
    queue = get_embedding_queue()
    try:
        replies = get_celery_app().control.inspect(timeout=app_settings.HEALTH_TIMEOUT).active_queues() or {}
    except Exception as exc:  # noqa: BLE001 - no broker means no worker can be asked
        return CheckResult(ERROR, f"Workers cannot be asked (broker): {exc}", {"queue": queue})
    workers = sorted(name for name, queues in replies.items() if any(q.get("name") == queue for q in queues or []))
    if not workers:
        return CheckResult(
            ERROR,
            f"No worker consumes the queue {queue!r} (none answered within {app_settings.HEALTH_TIMEOUT:g} s); "
            "uploads stay pending until one runs.",
            {"queue": queue, "workers": []},
        )
    return CheckResult(OK, f"{len(workers)} worker(s) consume {queue!r}.", {"queue": queue, "workers": workers})


def check_model() -> CheckResult:
    """The default encoder's weights can be read on this machine, checked without loading the model.

    The same test as the ``assetsearch.W011`` system check
    (:meth:`~assetsearch.encoders.BaseEncoder.missing_weights`).
    """
    from .encoders import get_encoder

    try:
        encoder = get_encoder()
        key = encoder.key
        missing = encoder.missing_weights()
    except Exception as exc:  # noqa: BLE001 - a configuration error is the answer
        return CheckResult(ERROR, f"The encoder cannot be configured: {exc}")
    details = {"model": key}
    if getattr(encoder, "checkpoint", "") is None:
        return CheckResult(WARNING, f"The model {key} has random weights (PRETRAINED is None): search is meaningless.", details)
    if missing and app_settings.ALLOW_MODEL_DOWNLOAD:
        return CheckResult(WARNING, f"The model {encoder.label} will be downloaded on first use: {missing}.", details)
    if missing:
        return CheckResult(ERROR, f"The model {encoder.label} cannot be loaded: {missing}, and downloads are off.", details)
    return CheckResult(OK, f"The weights of {encoder.label} are on this machine.", details)


def check_pending() -> CheckResult:
    """Pending work does not wait longer than ``HEALTH_PENDING_WARN_SECONDS``."""
    from .models import IndexEntry

    # Every registered model's entries, every indexed alias: all work the workers owe.
    count, oldest = IndexEntry.objects.pending().count_and_oldest()
    if oldest is None:
        return CheckResult(OK, "No pending work.", {"pending": 0, "oldest_pending_age_s": None})
    age = (timezone.now() - oldest).total_seconds()
    details = {"pending": count, "oldest_pending_age_s": round(age, 1)}
    limit = app_settings.HEALTH_PENDING_WARN_SECONDS
    if age > limit:
        return CheckResult(
            WARNING, f"The oldest pending image has waited {age:.0f} s (more than {limit} s): are the workers keeping up?", details
        )
    return CheckResult(OK, f"{details['pending']} pending; the oldest has waited {age:.0f} s.", details)


CHECKS: dict[str, Callable[[], CheckResult]] = {
    "database": check_database,
    "broker": check_broker,
    "worker": check_worker,
    "model": check_model,
    "pending": check_pending,
}


def timed(check: Callable[[], CheckResult]) -> CheckResult:
    started = time.perf_counter()
    result = check()
    result.took_ms = round((time.perf_counter() - started) * 1000, 1)
    return result


def get_health() -> dict[str, Any]:
    """Every check's result, and the worst status of them as ``status``.

    The pending-work check needs the database; it is skipped when the
    database check fails.
    """
    results: dict[str, CheckResult] = {}
    for name, check in CHECKS.items():
        if name == "pending" and results["database"].status == ERROR:
            results[name] = CheckResult(ERROR, "Not checked: the database is unavailable.")
            continue
        results[name] = timed(check)
    status = max((r.status for r in results.values()), key=SEVERITY.__getitem__)
    return {"status": status, "checks": {name: asdict(result) for name, result in results.items()}}
