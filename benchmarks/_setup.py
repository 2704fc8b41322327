"""Shared set-up for the benchmarks: a Django environment on a scratch database.

The benchmarks never touch the product's database: they use
``assetsearch_bench`` on the same server (the embedded PostgreSQL unless
DATABASE_URL is set), migrated on first use. Run one benchmark at a time:
they share that database, and each empties it first.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the example project's settings and embedded servers
# ASSETSEARCH_BENCH_DB: another name, e.g. for the test suite's smoke run beside a real one.
BENCH_DB = os.environ.get("ASSETSEARCH_BENCH_DB", "assetsearch_bench")
# The encoder backends the benchmarks compare, by short name.
ENCODER_BACKENDS = {
    "torch": "assetsearch.encoders.OpenCLIPEncoder",
    "onnxruntime": "assetsearch.runtime_encoders.ONNXRuntimeEncoder",
    "openvino": "assetsearch.runtime_encoders.OpenVINOEncoder",
}
# Worker flags as in production (README): no gossip, mingle or heartbeat
# broadcasts over Redis, which embedding workers do not use.
QUIET_WORKER = ["--without-gossip", "--without-mingle", "--without-heartbeat"]


def server_url() -> str:
    """The database server's URL: ``DATABASE_URL``, or the embedded PostgreSQL
    in ``$ASSETSEARCH_VAR_DIR/pgdata`` (``var/`` by default), started on demand."""
    from project import embedded

    return os.environ.get("DATABASE_URL") or embedded.postgres_url()


def bench_conninfo() -> str:
    """A libpq conninfo for the scratch database, created on first use (no Django needed)."""
    import dj_database_url
    import psycopg

    config = dj_database_url.parse(server_url())
    with psycopg.connect(_conninfo(config), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone():
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    return _conninfo({**config, "NAME": BENCH_DB})


def setup_django() -> None:
    """Point Django at the scratch database, create and migrate it, and set up."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    bench_conninfo()
    os.environ["DATABASE_URL"] = server_url()
    import django
    from django.conf import settings

    django.setup()
    settings.DATABASES["default"]["NAME"] = BENCH_DB
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def empty_catalogue() -> None:
    """Empty the scratch tables with TRUNCATE: unlike DELETE it leaves no dead
    rows behind, so autovacuum (which also walks the HNSW index) does not run
    during the next measurement."""
    from django.db import connection

    from assetsearch.models import Asset, IndexEntry
    from assetsearch.registry import get_indexes

    tables = {Asset._meta.db_table, IndexEntry._meta.db_table, *(index.model._meta.db_table for index in get_indexes())}
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(sorted(tables))} RESTART IDENTITY CASCADE")


def bench_database_url() -> str:
    """A DATABASE_URL for the scratch database, for worker subprocesses."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    host = db.get("HOST") or db.get("OPTIONS", {}).get("host") or ""
    if host.startswith("/"):
        return f"postgresql://{db['USER']}:{db.get('PASSWORD') or ''}@/{BENCH_DB}?host={host}"
    return f"postgresql://{db['USER']}:{db.get('PASSWORD') or ''}@{host}:{db.get('PORT') or 5432}/{BENCH_DB}"


def _conninfo(config: dict) -> str:
    parts = {"dbname": config["NAME"], "user": config.get("USER"), "password": config.get("PASSWORD"),
             "host": config.get("HOST") or config.get("OPTIONS", {}).get("host"), "port": config.get("PORT")}
    return " ".join(f"{k}='{v}'" for k, v in parts.items() if v)


def clustered_unit_vectors(rows: int, rng: np.random.Generator, clusters: int = 200, dim: int = 512) -> np.ndarray:
    """Unit vectors around ``clusters`` random centres, like the CLIP embeddings
    of a catalogue with topics (many near neighbours per topic)."""
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    vectors = np.empty((rows, dim), dtype=np.float32)
    for start in range(0, rows, 100_000):  # in chunks: 1M x 512 float64 noise would need 4 GB at once
        stop = min(rows, start + 100_000)
        chunk = centres[rng.integers(0, clusters, stop - start)] + rng.normal(scale=0.6, size=(stop - start, dim)).astype(np.float32)
        vectors[start:stop] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return vectors


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    """Milliseconds of ``repeat`` calls."""
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(headers: list[str], rows: list[list[object]]) -> str:
    def fmt(v: object) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
