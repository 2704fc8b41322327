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


def load_catalogue(rows: int, rng: np.random.Generator, model: str = "asset") -> tuple[float, np.ndarray]:
    """Replace the scratch catalogue with ``rows`` objects of ``model`` ("asset", or "photo": the test
    suite's plain host model, registered like any site's) and their index entries; return HNSW build
    seconds and the vectors."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection

    from assetsearch.encoders import get_encoder
    from assetsearch.models import Asset, IndexEntry
    from assetsearch.querysets import create_vector_index, drop_vector_index, vector_index_name
    from tests.hostapp.models import Category, Photo

    encoder = get_encoder()
    vectors = clustered_unit_vectors(rows, rng)
    words = ["harbour", "forest", "portrait", "skyline", "market", "festival", "mountain", "kitchen"]
    host = Photo if model == "photo" else Asset
    entry_table = IndexEntry._meta.db_table
    with connection.cursor() as cursor:
        empty_catalogue()
        index_name = vector_index_name(encoder.alias, encoder.dimensions)
        drop_vector_index(index_name)
        raw = cursor.connection
        if host is Photo:
            # 100 categories: a category filter keeps 1% of the rows.
            Category.objects.bulk_create([Category(id=c + 1, name=f"category {c}") for c in range(100)])
            with raw.cursor().copy(f"COPY {Photo._meta.db_table} (id, image, caption, category_id, tags, taken_at) FROM STDIN") as copy:
                for i in range(rows):
                    tags = "{" + ",".join(t for t, every in (("rare", 100), ("common", 10)) if i % every == 0) + "}"
                    copy.write_row((i + 1, f"bench/{i}.jpg", f"{words[i % len(words)]} {i}", i % 100 + 1, tags, "now()"))
        else:
            with raw.cursor().copy(
                f"COPY {Asset._meta.db_table} (id, image, title, description, tags, content_hash, mime_type, created_at, updated_at) FROM STDIN"
            ) as copy:
                for i in range(rows):
                    tags = "{" + ",".join(t for t, every in (("rare", 100), ("common", 10)) if i % every == 0) + "}"
                    copy.write_row((i + 1, f"bench/{i}.jpg", f"{words[i % len(words)]} {i}", "", tags, "", "image/jpeg", "now()", "now()"))
        content_type = ContentType.objects.get_for_model(host).pk
        with raw.cursor().copy(
            f"COPY {entry_table} (content_type_id, object_id, encoder, model_key, vector, source_key, content_hash,"
            " status, status_changed_at, error, attempts, embedded_at) FROM STDIN"
        ) as copy:
            for i, vector in enumerate(vectors):
                literal = "[" + ",".join(f"{x:.5f}" for x in vector) + "]"
                copy.write_row((content_type, i + 1, encoder.alias, encoder.key, literal, f"bench/{i}.jpg", "", "ready", "now()", "", 1, "now()"))
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{host._meta.db_table}', 'id'), {rows})")  # ids came from COPY
        cursor.execute("SET maintenance_work_mem = '1GB'")
        started = time.perf_counter()
        create_vector_index(entry_table, encoder.alias, encoder.dimensions)
        build = time.perf_counter() - started
        cursor.execute(f"ANALYZE {host._meta.db_table}")
        cursor.execute(f"ANALYZE {entry_table}")
    if host is Asset:
        Asset.objects.update_search_documents()
    return build, vectors


def run(rows: int, queries: int, rng: np.random.Generator, model: str = "asset") -> tuple[list[list[object]], dict]:
    from assetsearch.demo_model.synthetic import random_scene
    from assetsearch.encoders import get_encoder
    from assetsearch.search import Filters, Query, fuse_rankings, get_targets, keyword_ranking, use_exact_scan, vector_ranking

    encoder = get_encoder()
    build, vectors = load_catalogue(rows, rng, model)
    picks = vectors[rng.integers(0, rows, queries)] + rng.normal(scale=0.02, size=(queries, 512)).astype(np.float32)
    picks /= np.linalg.norm(picks, axis=1, keepdims=True)
    label = "hostapp.photo" if model == "photo" else "assetsearch.asset"
    everything = get_targets(Query(text="x", models=[label]))

    texts = [f"a photo number {i} of a red circle" for i in range(queries)]
    text_iter = iter(texts)
    encode_text = timed(lambda: encoder.embed_texts([next(text_iter)]), queries)
    images = [random_scene(random.Random(i)).render(i) for i in range(min(queries, 50))]
    image_iter = iter(images * (queries // len(images) + 1))
    encode_image = timed(lambda: encoder.embed_images([next(image_iter)]), queries)

    def db_times(filters: Filters, exact: bool | None = None, depth: int = 20) -> tuple[list[float], int]:
        times, short = [], 0
        query = Query(text="x", models=[label], filters=filters)
        targets = get_targets(query)
        use_exact = use_exact_scan(query, targets) if exact is None else exact
        for q in picks:
            started = time.perf_counter()
            ranked = vector_ranking(q, targets, depth=depth, exact=use_exact, alias=encoder.alias)
            times.append((time.perf_counter() - started) * 1000)
            short += len(ranked) < depth
        return times, short

    plain, _ = db_times(Filters())
    rare, rare_short = db_times(Filters(fields={"category": 7}) if model == "photo" else Filters(tags=["rare"]))
    common, common_short = db_times(Filters(tags=["common"]))
    exact, _ = db_times(Filters(), exact=True)

    hybrid = []
    for i, q in enumerate(picks):
        started = time.perf_counter()
        by_vector = vector_ranking(q, everything, depth=100, exact=False, alias=encoder.alias)
        by_keyword = keyword_ranking(["harbour", "forest", "skyline"][i % 3], everything, depth=100)
        fuse_rankings({"vector": [key for key, _ in by_vector], "keyword": by_keyword})
        hybrid.append((time.perf_counter() - started) * 1000)

    overlaps = []
    for q in picks:
        approx = {key for key, _ in vector_ranking(q, everything, depth=10, exact=False, alias=encoder.alias)}
        truth = {key for key, _ in vector_ranking(q, everything, depth=10, exact=True, alias=encoder.alias)}
        overlaps.append(len(approx & truth) / 10)

    enc_t, enc_i = median(encode_text), median(encode_image)
    name = "photo " if model == "photo" else ""
    rare_name = "filtered 1% (category FK)" if model == "photo" else "filtered 1%"
    return [
        [rows, f"{name}text->image", enc_t, median(plain), p(plain, 95), enc_t + median(plain), "yes"],
        [rows, f"{name}image->image", enc_i, median(plain), p(plain, 95), enc_i + median(plain), "yes"],
        [rows, f"{name}{rare_name}", enc_t, median(rare), p(rare, 95), enc_t + median(rare), "yes" if not rare_short else f"{rare_short} short"],
        [rows, f"{name}filtered 10%", enc_t, median(common), p(common, 95), enc_t + median(common), "yes" if not common_short else f"{common_short} short"],
        [rows, f"{name}hybrid (RRF)", enc_t, median(hybrid), p(hybrid, 95), enc_t + median(hybrid), "yes"],
        [rows, f"{name}exact scan (baseline)", enc_t, median(exact), p(exact, 95), enc_t + median(exact), "yes"],
    ], {"rows": rows, "model": label, "recall@10": float(np.mean(overlaps)), "hnsw_build_s": build,
        "index_speedup_p50": median(exact) / median(plain), "db_p50": median(plain)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--host-model", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure a plain registered host model (tests.hostapp Photo) at each size")
    args = parser.parse_args()
    setup_django()
    rng = np.random.default_rng(0)
    rows, summaries = [], []
    for size in args.sizes:
        for model in ["asset", "photo"] if args.host_model else ["asset"]:
            print(f"loading {size:,} vectors of {model} ...", flush=True)
            table_rows, summary = run(size, args.queries, rng, model)
            rows += table_rows
            summaries.append(summary)
    print()
    print(table(["vectors", "query", "encode p50 ms", "db p50 ms", "db p95 ms", "total p50 ms", "full page"], rows))
    print()
    print(table(["vectors", "model", "recall@10 (HNSW vs exact)", "HNSW build s", "exact p50 / HNSW p50"],
                [[s["rows"], s["model"], s["recall@10"], s["hnsw_build_s"], s["index_speedup_p50"]] for s in summaries]))
    by_size: dict[int, dict[str, float]] = {}
    for s in summaries:
        by_size.setdefault(s["rows"], {})[s["model"]] = s["db_p50"]
    ratios = [[n, m["hostapp.photo"] / m["assetsearch.asset"]] for n, m in by_size.items() if len(m) == 2]
    if ratios:
        print()
        print(table(["vectors", "photo text->image db p50 / asset db p50"], ratios))


if __name__ == "__main__":
    main()
