"""Search latency and recall at 10k and 100k stored 512-d vectors.

    .venv/bin/python benchmarks/search.py [--sizes 10000 100000] [--queries 100]

For each catalogue size: p50/p95 of text->image, image->image, filtered (1%
and 10% of the catalogue) and hybrid queries, split into encode time (the
bundled model, no cache) and database time; HNSW recall@10 against exact
search of the same queries in the same run; HNSW build time; and whether
filtered queries returned a full page. Vectors are clustered unit vectors
(like embeddings of a catalogue with topics); the assets are bulk-loaded
with COPY into the scratch database ``assetsearch_bench``.
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np

from _setup import empty_catalogue, median, p, setup_django, table, timed


def clustered_unit_vectors(rows: int, rng: np.random.Generator, clusters: int = 200) -> np.ndarray:
    centres = rng.normal(size=(clusters, 512)).astype(np.float32)
    vectors = centres[rng.integers(0, clusters, rows)] + rng.normal(scale=0.6, size=(rows, 512)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def load_catalogue(rows: int, rng: np.random.Generator, model_key: str) -> tuple[float, np.ndarray]:
    """Replace the scratch catalogue with ``rows`` assets; return HNSW build seconds and the vectors."""
    from django.db import connection

    from assetsearch.models import Asset, AssetEmbedding

    vectors = clustered_unit_vectors(rows, rng)
    words = ["harbour", "forest", "portrait", "skyline", "market", "festival", "mountain", "kitchen"]
    asset_table, embedding_table = Asset._meta.db_table, AssetEmbedding._meta.db_table
    with connection.cursor() as cursor:
        empty_catalogue()
        cursor.execute("DROP INDEX IF EXISTS assetsearch_embedding_hnsw")
        raw = cursor.connection
        with raw.cursor().copy(
            f"COPY {asset_table} (id, image, title, description, tags, content_hash, mime_type, created_at, updated_at,"
            " embedding_status, embedding_status_changed_at, embedding_error, embedding_attempts) FROM STDIN"
        ) as copy:
            for i in range(rows):
                tags = "{" + ",".join(t for t, every in (("rare", 100), ("common", 10)) if i % every == 0) + "}"
                title = f"{words[i % len(words)]} {i}"
                copy.write_row((i + 1, f"bench/{i}.jpg", title, "", tags, "", "image/jpeg", "now()", "now()", "ready", "now()", "", 1))
        with raw.cursor().copy(f"COPY {embedding_table} (asset_id, model_key, vector, content_hash, created_at) FROM STDIN") as copy:
            for i, vector in enumerate(vectors):
                copy.write_row((i + 1, model_key, "[" + ",".join(f"{x:.5f}" for x in vector) + "]", "", "now()"))
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{asset_table}', 'id'), {rows})")  # ids came from COPY
        cursor.execute("SET maintenance_work_mem = '1GB'")
        started = time.perf_counter()
        cursor.execute(
            f"CREATE INDEX assetsearch_embedding_hnsw ON {embedding_table} "
            "USING hnsw (vector halfvec_cosine_ops) WITH (m = 16, ef_construction = 64)"
        )
        build = time.perf_counter() - started
        cursor.execute(f"ANALYZE {asset_table}")
        cursor.execute(f"ANALYZE {embedding_table}")
    Asset.objects.update_search_documents()
    return build, vectors


def run(rows: int, queries: int, rng: np.random.Generator) -> list[list[object]]:
    from assetsearch.demo_model.synthetic import random_scene
    from assetsearch.encoders import get_encoder
    from assetsearch.models import Asset
    from assetsearch.search import Filters, Query, candidate_assets, fuse_rankings, use_exact_scan, keyword_ranking, vector_ranking

    encoder = get_encoder()
    key = encoder.key
    build, vectors = load_catalogue(rows, rng, key)
    picks = vectors[rng.integers(0, rows, queries)] + rng.normal(scale=0.02, size=(queries, 512)).astype(np.float32)
    picks /= np.linalg.norm(picks, axis=1, keepdims=True)
    all_assets = Asset.objects.all()

    texts = [f"a photo number {i} of a red circle" for i in range(queries)]
    text_iter = iter(texts)
    encode_text = timed(lambda: encoder.embed_texts([next(text_iter)]), queries)
    images = [random_scene(random.Random(i)).render(i) for i in range(min(queries, 50))]
    image_iter = iter(images * (queries // len(images) + 1))
    encode_image = timed(lambda: encoder.embed_images([next(image_iter)]), queries)

    def db_times(assets, exact: bool | None = None, depth: int = 20) -> tuple[list[float], int]:
        times, short = [], 0
        query = Query(text="x", filters=Filters(tags=assets) if isinstance(assets, list) else Filters())
        candidates = candidate_assets(query)
        use_exact = use_exact_scan(query, candidates) if exact is None else exact
        for q in picks:
            started = time.perf_counter()
            ranked = vector_ranking(q, candidates, depth=depth, exact=use_exact, model_key=key)
            times.append((time.perf_counter() - started) * 1000)
            short += len(ranked) < depth
        return times, short

    plain, _ = db_times(None)
    rare, rare_short = db_times(["rare"])
    common, common_short = db_times(["common"])
    exact, _ = db_times(None, exact=True)

    hybrid = []
    for i, q in enumerate(picks):
        started = time.perf_counter()
        by_vector = vector_ranking(q, all_assets, depth=100, exact=False, model_key=key)
        by_keyword = keyword_ranking(["harbour", "forest", "skyline"][i % 3], all_assets, depth=100)
        fuse_rankings({"vector": [pk for pk, _ in by_vector], "keyword": by_keyword})
        hybrid.append((time.perf_counter() - started) * 1000)

    overlaps = []
    for q in picks:
        approx = {pk for pk, _ in vector_ranking(q, all_assets, depth=10, exact=False, model_key=key)}
        truth = {pk for pk, _ in vector_ranking(q, all_assets, depth=10, exact=True, model_key=key)}
        overlaps.append(len(approx & truth) / 10)

    enc_t, enc_i = median(encode_text), median(encode_image)
    return [
        [rows, "text->image", enc_t, median(plain), p(plain, 95), enc_t + median(plain), "yes"],
        [rows, "image->image", enc_i, median(plain), p(plain, 95), enc_i + median(plain), "yes"],
        [rows, "filtered 1%", enc_t, median(rare), p(rare, 95), enc_t + median(rare), "yes" if not rare_short else f"{rare_short} short"],
        [rows, "filtered 10%", enc_t, median(common), p(common, 95), enc_t + median(common), "yes" if not common_short else f"{common_short} short"],
        [rows, "hybrid (RRF)", enc_t, median(hybrid), p(hybrid, 95), enc_t + median(hybrid), "yes"],
        [rows, "exact scan (baseline)", enc_t, median(exact), p(exact, 95), enc_t + median(exact), "yes"],
    ], {"rows": rows, "recall@10": float(np.mean(overlaps)), "hnsw_build_s": build,
        "index_speedup_p50": median(exact) / median(plain)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    setup_django()
    rng = np.random.default_rng(0)
    rows, summaries = [], []
    for size in args.sizes:
        print(f"loading {size:,} vectors ...", flush=True)
        table_rows, summary = run(size, args.queries, rng)
        rows += table_rows
        summaries.append(summary)
    print()
    print(table(["vectors", "query", "encode p50 ms", "db p50 ms", "db p95 ms", "total p50 ms", "full page"], rows))
    print()
    print(table(["vectors", "recall@10 (HNSW vs exact)", "HNSW build s", "exact p50 / HNSW p50"],
                [[s["rows"], s["recall@10"], s["hnsw_build_s"], s["index_speedup_p50"]] for s in summaries]))


if __name__ == "__main__":
    main()
