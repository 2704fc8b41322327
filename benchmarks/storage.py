"""vector(512) vs halfvec(512): HNSW recall@10, latency, build time and sizes.

    .venv/bin/python benchmarks/storage.py [--rows 20000] [--queries 200]

Runs in the scratch database ``assetsearch_bench`` on the embedded
PostgreSQL (under ``$ASSETSEARCH_VAR_DIR``) unless DATABASE_URL is set. Data: clustered unit vectors (like CLIP embeddings of a catalogue: many
near-duplicates around topics), queries near the clusters. Both layouts are
measured in the same run; the figures that count are the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import psycopg
from pgvector import HalfVector, Vector
from pgvector.psycopg import register_vector

from _setup import bench_conninfo, clustered_unit_vectors


def percentile(values: list[float], p: float) -> float:
    return float(np.percentile(values, p))


def run(conn: psycopg.Connection, kind: str, data: np.ndarray, queries: np.ndarray, ef_search: int) -> dict[str, float]:
    table = f"bench_{kind}"
    wrap = HalfVector if kind == "halfvec" else Vector
    dim = data.shape[1]
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, embedding {kind}({dim}))")
        with cur.copy(f"COPY {table} (id, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int4", kind])
            for i, row in enumerate(data):
                copy.write_row((i, wrap(row)))
        cur.execute(f"ANALYZE {table}")
        cur.execute("SET hnsw.ef_search = %s" % int(ef_search))
        started = time.perf_counter()
        cur.execute(f"CREATE INDEX ON {table} USING hnsw (embedding {kind}_cosine_ops) WITH (m = 16, ef_construction = 64)")
        build = time.perf_counter() - started
        cur.execute("SELECT pg_table_size(%s), pg_indexes_size(%s)", (table, table))
        table_bytes, index_bytes = cur.fetchone()
        sql = f"SELECT id FROM {table} ORDER BY embedding <=> %s LIMIT 10"
        # "+ 0" hides the expression from the index: a plain scan, the exact baseline.
        exact_sql = f"SELECT id FROM {table} ORDER BY (embedding <=> %s) + 0 LIMIT 10"

        def timed(q: np.ndarray, exact: bool) -> tuple[list[int], float]:
            t = time.perf_counter()
            cur.execute(exact_sql if exact else sql, (wrap(q),))
            ids = [r[0] for r in cur.fetchall()]
            return ids, time.perf_counter() - t

        for q in queries[:10]:  # warm the caches
            timed(q, False)
            timed(q, True)
        ann_times, exact_times, recalls = [], [], []
        for q in queries:
            approx, t_ann = timed(q, False)
            exact, t_exact = timed(q, True)
            ann_times.append(t_ann * 1000)
            exact_times.append(t_exact * 1000)
            recalls.append(len(set(approx) & set(exact)) / 10)
    return {
        "recall@10": statistics.mean(recalls),
        "ann_p50_ms": percentile(ann_times, 50),
        "ann_p95_ms": percentile(ann_times, 95),
        "exact_p50_ms": percentile(exact_times, 50),
        "build_s": build,
        "table_MB": table_bytes / 1e6,
        "index_MB": index_bytes / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef-search", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    data = clustered_unit_vectors(args.rows, rng, clusters=max(10, args.rows // 200))
    queries = data[rng.integers(0, args.rows, args.queries)] + rng.normal(scale=0.02, size=(args.queries, 512)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    with psycopg.connect(bench_conninfo(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(conn)
        conn.execute("SET maintenance_work_mem = '512MB'")
        results = {kind: run(conn, kind, data, queries, args.ef_search) for kind in ("vector", "halfvec")}
        for kind in results:
            conn.execute(f"DROP TABLE IF EXISTS bench_{kind}")
    metrics = list(results["vector"])
    print(f"{args.rows:,} rows x 512-d, {args.queries} queries, ef_search={args.ef_search}\n")
    print(f"| metric | vector | halfvec | halfvec / vector |\n|---|---|---|---|")
    for m in metrics:
        v, h = results["vector"][m], results["halfvec"][m]
        print(f"| {m} | {v:.3f} | {h:.3f} | {h / v if v else float('nan'):.2f} |")
    for kind in results:
        ratio = results[kind]["exact_p50_ms"] / results[kind]["ann_p50_ms"]
        print(f"{kind}: HNSW p50 is {ratio:.1f}x faster than an exact scan of the same table.")


if __name__ == "__main__":
    main()
