"""Search latency and recall at 10k and 100k (or, with ``--scale 1m``, a million) stored 512-d vectors.

    .venv/bin/python benchmarks/search.py [--sizes 10000 100000] [--queries 100]
    .venv/bin/python benchmarks/search.py --scale 1m          # not in CI: ~5 GB of disk, 25-40 minutes
    .venv/bin/python benchmarks/search.py --sweep --sizes 100000 --hnsw 16:64 16:128 --ef-search 100 200 400
    .venv/bin/python benchmarks/search.py --host-model --sizes 100000

For each catalogue size: p50/p95 of text->image, image->image, filtered (1%
and 10% of the catalogue) and hybrid queries, split into encode time (the
bundled model, no cache) and database time; HNSW recall@10 against exact
search of the same queries in the same run; HNSW build time and index size
with the build parameters of the settings (``HNSW_M``,
``HNSW_EF_CONSTRUCTION``; ``HNSW_EF_SEARCH`` per query); and whether
filtered queries returned a full page. Vectors are clustered unit vectors
(like embeddings of a catalogue with topics); the assets are bulk-loaded
with COPY into the scratch database ``assetsearch_bench``.

``--sweep`` measures, for each ``--hnsw M:EF_CONSTRUCTION`` graph and each
``--ef-search`` value, recall against exact search and database p50 of a
first page (recall@10), a deep page (offset 80: recall@100) and a page
filtered to 10% of the catalogue (recall@10): the measurements behind the
defaults.

``--host-model`` measures a host's own model instead: ``tests.hostapp``'s
``Photo`` (image, caption, category FK, tags), registered as a site
registers it, at each size beside as many assets in the same entry table
and HNSW index: database p50 of the same text->image queries for both
models, interleaved, and against the assets alone in the index before the
photos came (today's catalogue); the photos' recall@10 against exact; a
category filter selecting 1% of the photos (as ``search()`` runs it, and
through the index forced) and whether it returned full pages; build time
and size of the index without and with the photos.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import numpy as np

from _setup import clustered_unit_vectors, empty_catalogue, median, p, setup_django, table, timed

SCALES = {"10k": [10_000], "100k": [100_000], "1m": [1_000_000]}
EF_CURVE = (100, 200, 400, 800)


def load_catalogue(rows: int, rng: np.random.Generator, model_key: str, clusters: int = 200,
                   vectors: np.ndarray | None = None) -> np.ndarray:
    """Replace the scratch catalogue with ``rows`` assets and their index entries, without the HNSW index.

    ``vectors``: the assets' vectors (default: ``rows`` new clustered ones).
    """
    from django.db import connection

    from assetsearch.encoders import get_encoder
    from assetsearch.index import drop_vector_index, index_name
    from assetsearch.models import Asset

    if vectors is None:
        vectors = clustered_unit_vectors(rows, rng, clusters=clusters)
    words = ["harbour", "forest", "portrait", "skyline", "market", "festival", "mountain", "kitchen"]
    asset_table = Asset._meta.db_table
    drop_vector_index(index_name(get_encoder().alias))
    with connection.cursor() as cursor:
        empty_catalogue()
        raw = cursor.connection
        with raw.cursor().copy(
            f"COPY {asset_table} (id, image, original_filename, title, description, tags, content_hash, mime_type, created_at,"
            " updated_at) FROM STDIN"
        ) as copy:
            for i in range(rows):
                tags = "{" + ",".join(t for t, every in (("rare", 100), ("common", 10)) if i % every == 0) + "}"
                title = f"{words[i % len(words)]} {i}"
                copy.write_row((i + 1, f"bench/{i}.jpg", f"{i}.jpg", title, "", tags, "", "image/jpeg", "now()", "now()"))
        copy_entries(Asset, vectors, model_key, [f"bench/{i}.jpg" for i in range(rows)])
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{asset_table}', 'id'), {rows})")  # ids came from COPY
    Asset.objects.update_search_documents()
    vacuum(Asset)
    return vectors


def copy_entries(model: Any, vectors: np.ndarray, model_key: str, source_keys: list[str]) -> None:
    """Ready index entries of the search alias for objects 1..n of ``model``, by binary COPY."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection
    from pgvector import HalfVector
    from pgvector.psycopg import register_vector

    from assetsearch.encoders import get_encoder
    from assetsearch.models import IndexEntry

    alias = get_encoder().alias
    content_type = ContentType.objects.get_for_model(model).pk
    now = datetime.now(timezone.utc)
    with connection.cursor() as cursor:
        raw = cursor.connection
        register_vector(raw)
        # Binary COPY: a million vectors as text literals would take minutes to format.
        with raw.cursor().copy(
            f"COPY {IndexEntry._meta.db_table} (content_type_id, object_id, encoder, model_key, vector, source_key, content_hash,"
            " status, status_changed_at, error, attempts, embedded_at) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int4", "int8", "varchar", "varchar", "halfvec", "varchar", "varchar", "varchar", "timestamptz",
                            "text", "int2", "timestamptz"])
            for i, (vector, source_key) in enumerate(zip(vectors, source_keys)):
                copy.write_row((content_type, i + 1, alias, model_key, HalfVector(vector), source_key, "", "ready", now, "", 1, now))


def vacuum(model: Any) -> None:
    """VACUUM ANALYZE the model's table and the entry table: no dead rows, statistics for the planner."""
    from django.db import connection

    from assetsearch.models import IndexEntry

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
        cursor.execute(f"VACUUM ANALYZE {IndexEntry._meta.db_table}")


def build_index(m: int | None = None, ef_construction: int | None = None) -> dict[str, Any]:
    """(Re)build the search alias's HNSW index as the product does, with these or the configured parameters."""
    from django.db import connection

    from assetsearch.encoders import get_encoder
    from assetsearch.index import IndexParameters, configured_parameters, create_index_sql, drop_vector_index, index_name, index_size_bytes

    configured = configured_parameters()
    parameters = IndexParameters(m or configured.m, ef_construction or configured.ef_construction).validate()
    encoder = get_encoder()
    drop_vector_index(index_name(encoder.alias))
    with connection.cursor() as cursor:
        # The graph is built in memory (about 1.4 GB per million halfvecs at m=16);
        # one that does not fit is built far more slowly.
        cursor.execute("SET maintenance_work_mem = '3GB'")
        started = time.perf_counter()
        cursor.execute(create_index_sql(parameters, alias=encoder.alias, dimensions=encoder.dimensions))
        build = time.perf_counter() - started
    return {"parameters": parameters, "build_s": build, "index_MB": index_size_bytes() / 1e6}


@contextlib.contextmanager
def ef_search(value: int | None = None, adaptive: bool = False) -> Iterator[None]:
    """``hnsw.ef_search`` = ``value`` (default: the setting), raised for deep pages and filters only if ``adaptive``."""
    from django.conf import settings
    from django.test import override_settings

    changes = {"HNSW_ADAPTIVE_EF_SEARCH": adaptive, **({"HNSW_EF_SEARCH": value} if value else {})}
    with override_settings(ASSETSEARCH={**settings.ASSETSEARCH, **changes}):
        yield


def query_vectors(vectors: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    picks = vectors[rng.integers(0, len(vectors), count)] + rng.normal(scale=0.02, size=(count, vectors.shape[1])).astype(np.float32)
    return picks / np.linalg.norm(picks, axis=1, keepdims=True)


def ranked(picks: np.ndarray, assets: Any, *, depth: int, exact: bool, model_key: str,
           filtered: bool = False) -> tuple[list[list[int]], list[float]]:
    """Each query's asset ids (best first) and milliseconds, through the product's vector_ranking."""
    from assetsearch.search import vector_ranking

    results, times = [], []
    for q in picks:
        started = time.perf_counter()
        results.append([pk for pk, _ in vector_ranking(q, assets, depth=depth, exact=exact, model_key=model_key, filtered=filtered)])
        times.append((time.perf_counter() - started) * 1000)
    return results, times


def recall(approx: list[list[int]], truth: list[list[int]], k: int) -> float:
    return float(np.mean([len(set(a[:k]) & set(t[:k])) / k for a, t in zip(approx, truth)]))


def run(rows: int, queries: int, rng: np.random.Generator, clusters: int) -> tuple[list[list[object]], dict[str, Any]]:
    from assetsearch.demo_model.synthetic import random_scene
    from assetsearch.encoders import get_encoder
    from assetsearch.models import Asset
    from assetsearch.search import Filters, Query, candidate_assets, fuse_rankings, use_exact_scan, keyword_ranking, vector_ranking

    encoder = get_encoder()
    key = encoder.key
    started = time.perf_counter()
    vectors = load_catalogue(rows, rng, key, clusters)
    print(f"loaded in {time.perf_counter() - started:.0f} s; building the index ...", flush=True)
    index = build_index()
    print(f"built {index['parameters']} in {index['build_s']:.0f} s, {index['index_MB']:,.0f} MB", flush=True)
    picks = query_vectors(vectors, queries, rng)
    all_assets = Asset.objects.all()

    texts = [f"a photo number {i} of a red circle" for i in range(queries)]
    text_iter = iter(texts)
    encode_text = timed(lambda: encoder.embed_texts([next(text_iter)]), queries)
    images = [random_scene(random.Random(i)).render(i) for i in range(min(queries, 50))]
    image_iter = iter(images * (queries // len(images) + 1))
    encode_image = timed(lambda: encoder.embed_images([next(image_iter)]), queries)

    def filtered(tags: list[str]) -> tuple[list[float], int]:
        query = Query(text="x", filters=Filters(tags=tags))
        candidates = candidate_assets(query)
        results, times = ranked(picks, candidates, depth=20, exact=use_exact_scan(query, candidates), model_key=key, filtered=True)
        return times, sum(len(r) < 20 for r in results)

    ranked(picks[:10], all_assets, depth=20, exact=False, model_key=key)  # warm the index's pages
    by_index, plain = ranked(picks, all_assets, depth=20, exact=False, model_key=key)
    by_exact, exact = ranked(picks, all_assets, depth=20, exact=True, model_key=key)
    rare, rare_short = filtered(["rare"])
    common, common_short = filtered(["common"])

    hybrid = []
    for i, q in enumerate(picks):
        started = time.perf_counter()
        by_vector = vector_ranking(q, all_assets, depth=100, exact=False, model_key=key)
        by_keyword = keyword_ranking(["harbour", "forest", "skyline"][i % 3], all_assets, depth=100)
        fuse_rankings({"vector": [pk for pk, _ in by_vector], "keyword": by_keyword})
        hybrid.append((time.perf_counter() - started) * 1000)

    # The same graph at other ef_search values: where the default sits on the curve.
    ef_curve = []
    for ef in EF_CURVE:
        with ef_search(ef):
            approx, times = ranked(picks, all_assets, depth=20, exact=False, model_key=key)
        ef_curve.append((ef, recall(approx, by_exact, 10), median(times)))
    # Adaptive ef_search against the fixed list, on the pages it raises it for.
    adaptive = []
    common_assets = Asset.objects.filter(tags__contains=["common"])
    truth_deep, _ = ranked(picks, all_assets, depth=200, exact=True, model_key=key)
    truth_common, _ = ranked(picks, common_assets, depth=10, exact=True, model_key=key)
    for name, assets, depth, k, truth, filtered_scan in (
        ("deep page (offset 180), recall@200", all_assets, 200, 200, truth_deep, False),
        ("filtered 10%, recall@10", common_assets, 10, 10, truth_common, True),
    ):
        row = [rows, name]
        for is_adaptive in (False, True):
            with ef_search(adaptive=is_adaptive):
                approx, times = ranked(picks, assets, depth=depth, exact=False, model_key=key, filtered=filtered_scan)
            row += [recall(approx, truth, k), median(times)]
        adaptive.append(row)

    enc_t, enc_i = median(encode_text), median(encode_image)
    return [
        [rows, "text->image", enc_t, median(plain), p(plain, 95), enc_t + median(plain), "yes"],
        [rows, "image->image", enc_i, median(plain), p(plain, 95), enc_i + median(plain), "yes"],
        [rows, "filtered 1%", enc_t, median(rare), p(rare, 95), enc_t + median(rare), "yes" if not rare_short else f"{rare_short} short"],
        [rows, "filtered 10%", enc_t, median(common), p(common, 95), enc_t + median(common), "yes" if not common_short else f"{common_short} short"],
        [rows, "hybrid (RRF)", enc_t, median(hybrid), p(hybrid, 95), enc_t + median(hybrid), "yes"],
        [rows, "exact scan (baseline)", enc_t, median(exact), p(exact, 95), enc_t + median(exact), "yes"],
    ], {"rows": rows, "recall@10": recall(by_index, by_exact, 10), **index, "index_speedup_p50": median(exact) / median(plain),
        "ef_search": current_ef_search(),
        "ef_curve": ef_curve, "adaptive": adaptive}


# The host-model case ------------------------------------------------------

CATEGORIES = 100  # photos per category: 1% of them, the selective FK filter
PAGE = 20  # the search page size (Query.limit's default)


def load_photos(vectors: np.ndarray, model_key: str) -> None:
    """Add ``len(vectors)`` photos (tests.hostapp's plain registered model) in ``CATEGORIES`` categories, with entries.

    Drops the HNSW index first: a graph built once is far faster than one
    grown by as many inserts.
    """
    from django.db import connection

    from assetsearch.encoders import get_encoder
    from assetsearch.index import drop_vector_index, index_name
    from tests.hostapp.models import Category, Photo

    rows = len(vectors)
    drop_vector_index(index_name(get_encoder().alias))
    words = ["harbour", "forest", "portrait", "skyline", "market", "festival", "mountain", "kitchen"]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Category._meta.db_table} RESTART IDENTITY CASCADE")
        raw = cursor.connection
        with raw.cursor().copy(f"COPY {Category._meta.db_table} (id, name) FROM STDIN") as copy:
            for c in range(CATEGORIES):
                copy.write_row((c + 1, f"category {c + 1}"))
        with raw.cursor().copy(f"COPY {Photo._meta.db_table} (id, image, caption, category_id, tags, taken_at) FROM STDIN") as copy:
            for i in range(rows):
                tags = "{" + ("common" if i % 10 == 0 else "") + "}"
                copy.write_row((i + 1, f"hostapp/photos/{i}.jpg", f"{words[i % len(words)]} {i}", i % CATEGORIES + 1, tags, "now()"))
        copy_entries(Photo, vectors, model_key, [f"hostapp/photos/{i}.jpg" for i in range(rows)])
        for model, last in ((Category, CATEGORIES), (Photo, rows)):  # ids came from COPY
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{model._meta.db_table}', 'id'), {last})")
    vacuum(Photo)


def run_host(rows: int, queries: int, rng: np.random.Generator, clusters: int) -> tuple[list[list[object]], dict[str, Any]]:
    """Photo (a plain registered host model) against Asset, ``rows`` each, through the product's query path.

    The assets are searched first alone in the index (today's catalogue),
    then beside as many photos (one entry table, one HNSW index per alias)
    with each query run for both models in turn: the ratio of those two
    interleaved p50s is the cost of a host model. Both models' vectors share
    the same topics, so neither model's rows are easier to reach in the graph.
    """
    from assetsearch.encoders import get_encoder
    from assetsearch.models import Asset
    from assetsearch.search import Filters, Query, get_targets, use_exact_scan
    from tests.hostapp.models import Photo

    key = get_encoder().key
    vectors = clustered_unit_vectors(2 * rows, rng, clusters=clusters)  # one set of topics for both models
    started = time.perf_counter()
    load_catalogue(rows, rng, key, vectors=vectors[:rows])
    print(f"loaded {rows:,} assets in {time.perf_counter() - started:.0f} s; building the index ...", flush=True)
    alone = build_index()
    print(f"built {alone['parameters']} in {alone['build_s']:.0f} s, {alone['index_MB']:,.0f} MB", flush=True)
    picks = query_vectors(vectors, queries, rng)
    assets = get_targets(Query(models=[Asset]))
    ranked(picks[:10], assets, depth=PAGE, exact=False, model_key=key)  # warm the index's pages
    found_alone, asset_alone = ranked(picks, assets, depth=PAGE, exact=False, model_key=key)

    started = time.perf_counter()
    load_photos(vectors[rows:], key)
    print(f"loaded {rows:,} photos in {time.perf_counter() - started:.0f} s; building the index of both ...", flush=True)
    mixed = build_index()
    print(f"built {mixed['parameters']} in {mixed['build_s']:.0f} s, {mixed['index_MB']:,.0f} MB", flush=True)
    photos = get_targets(Query(models=[Photo]))
    for targets in (assets, photos):
        ranked(picks[:10], targets, depth=PAGE, exact=False, model_key=key)
    found: dict[str, list[list[Any]]] = {"asset": [], "photo": []}
    times: dict[str, list[float]] = {"asset": [], "photo": []}
    for i, q in enumerate(picks):  # interleaved, each model first every other query
        for name in ("asset", "photo") if i % 2 == 0 else ("photo", "asset"):
            result, took = ranked(q[None], assets if name == "asset" else photos, depth=PAGE, exact=False, model_key=key)
            found[name] += result
            times[name] += took
    truth_assets, _ = ranked(picks, assets, depth=PAGE, exact=True, model_key=key)
    truth_photos, exact_photos = ranked(picks, photos, depth=PAGE, exact=True, model_key=key)

    # A category filter (1% of the photos), as search() runs it: the filtered
    # targets, then the exact scan or the index as use_exact_scan decides.
    chosen: dict[str, list[float]] = {"product": [], "index": []}
    short = {"product": 0, "index": 0}
    strategies = set()
    for i, q in enumerate(picks):
        query = Query(models=[Photo], filters=Filters(fields={"category": i % CATEGORIES + 1}))
        targets = get_targets(query)
        exact = use_exact_scan(query, targets)
        strategies.add("exact" if exact else "index")
        for name, scan_exactly in (("product", exact), ("index", False)):
            result, took = ranked(q[None], targets, depth=PAGE, exact=scan_exactly, model_key=key, filtered=True)
            chosen[name] += took
            short[name] += sum(len(r) < PAGE for r in result)

    def full(results: list[list[Any]] | int) -> str:
        missing = results if isinstance(results, int) else sum(len(r) < PAGE for r in results)
        return "yes" if not missing else f"{missing} short"

    table_rows = [
        [rows, "asset, alone in the index", median(asset_alone), p(asset_alone, 95), full(found_alone)],
        [rows, "asset, beside the photos", median(times["asset"]), p(times["asset"], 95), full(found["asset"])],
        [rows, "photo, beside the assets", median(times["photo"]), p(times["photo"], 95), full(found["photo"])],
        [rows, f"photo, category filter 1% ({'/'.join(sorted(strategies))}, as search() picks)", median(chosen["product"]),
         p(chosen["product"], 95), full(short["product"])],
        [rows, "photo, category filter 1% (index forced: iterative scan)", median(chosen["index"]), p(chosen["index"], 95),
         full(short["index"])],
        [rows, "photo, exact scan (baseline)", median(exact_photos), p(exact_photos, 95), full(truth_photos)],
    ]
    summary = {
        "rows": rows, "ratio": median(times["photo"]) / median(times["asset"]), "ratio_alone": median(times["photo"]) / median(asset_alone),
        "recall_photo": recall(found["photo"], truth_photos, 10), "recall_asset": recall(found["asset"], truth_assets, 10),
        "alone": alone, "mixed": mixed,
    }
    return table_rows, summary


HOST_HEADERS = ["rows per model", "query (text->image, db)", "db p50 ms", "db p95 ms", "full page"]
HOST_SUMMARY_HEADERS = [
    "rows per model", "photo / asset p50 (interleaved)", "photo / asset-alone p50", "recall@10 photo", "recall@10 asset",
    "build s (assets alone)", "index MB (assets alone)", "build s (both)", "index MB (both)",
]


def report_host(sizes: list[int], queries: int, rng: np.random.Generator, clusters: int) -> None:
    rows, summaries = [], []
    for size in sizes:
        table_rows, summary = run_host(size, queries, rng, clusters)
        rows += table_rows
        summaries.append(summary)
    print()
    print(table(HOST_HEADERS, rows))
    print()
    print(table(HOST_SUMMARY_HEADERS, [
        [s["rows"], s["ratio"], s["ratio_alone"], s["recall_photo"], s["recall_asset"], s["alone"]["build_s"], s["alone"]["index_MB"],
         s["mixed"]["build_s"], s["mixed"]["index_MB"]] for s in summaries
    ]))


def sweep(rows: int, queries: int, graphs: list[tuple[int, int]], ef_values: list[int], rng: np.random.Generator,
          clusters: int) -> list[list[object]]:
    """Recall and database p50 of first, deep and filtered pages for each graph and ef_search."""
    from assetsearch.encoders import get_encoder
    from assetsearch.models import Asset

    key = get_encoder().key
    vectors = load_catalogue(rows, rng, key, clusters)
    picks = query_vectors(vectors, queries, rng)
    everything, common = Asset.objects.all(), Asset.objects.filter(tags__contains=["common"])
    truth_deep, _ = ranked(picks, everything, depth=100, exact=True, model_key=key)
    truth_filtered, _ = ranked(picks, common, depth=10, exact=True, model_key=key)
    out = []
    for m, ef_construction in graphs:
        index = build_index(m, ef_construction)
        ranked(picks[:10], everything, depth=20, exact=False, model_key=key)  # warm the index's pages
        for ef in ef_values:
            with ef_search(ef):
                first, t_first = ranked(picks, everything, depth=20, exact=False, model_key=key)
                deep, t_deep = ranked(picks, everything, depth=100, exact=False, model_key=key)
                filtered, t_filtered = ranked(picks, common, depth=10, exact=False, model_key=key)
            out.append([
                rows, f"{m}:{ef_construction}", index["build_s"], index["index_MB"], ef,
                recall(first, truth_deep, 10), median(t_first),
                recall(deep, truth_deep, 100), median(t_deep),
                recall(filtered, truth_filtered, 10), median(t_filtered),
            ])
            print(table(SWEEP_HEADERS, [out[-1]]).splitlines()[-1], flush=True)
    return out


SWEEP_HEADERS = ["vectors", "m:ef_construction", "build s", "index MB", "ef_search", "recall@10", "p50 ms",
                 "deep recall@100", "deep p50 ms", "filtered 10% recall@10", "filtered p50 ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--scale", choices=sorted(SCALES), help="one catalogue size instead of --sizes (1m: not in CI)")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--clusters", type=int, default=200,
                        help="topics the vectors crowd around (200; fewer, at 100k, crowds each like 200 do at 1M)")
    parser.add_argument("--host-model", action="store_true",
                        help="the host-model case at each size: tests.hostapp's Photo beside as many assets")
    parser.add_argument("--sweep", action="store_true", help="recall and latency per graph (--hnsw) and --ef-search")
    parser.add_argument("--hnsw", nargs="+", default=["16:64"], help="M:EF_CONSTRUCTION graphs for --sweep")
    parser.add_argument("--ef-search", type=int, nargs="+", default=[40, 100, 200, 400], help="ef_search values for --sweep")
    args = parser.parse_args()
    sizes = SCALES[args.scale] if args.scale else args.sizes
    setup_django()
    try:
        report(args, sizes)
    finally:
        empty_catalogue()  # TRUNCATE gives the disk back at once (a million vectors and their index: ~3 GB)
        if args.host_model:
            empty_categories()


def report(args: argparse.Namespace, sizes: list[int]) -> None:
    rng = np.random.default_rng(0)
    if args.host_model:
        report_host(sizes, args.queries, rng, args.clusters)
        return
    if args.sweep:
        graphs = [tuple(int(x) for x in spec.split(":")) for spec in args.hnsw]
        rows = [row for size in sizes for row in sweep(size, args.queries, graphs, args.ef_search, rng, args.clusters)]
        print()
        print(table(SWEEP_HEADERS, rows))
        return
    rows, summaries = [], []
    for size in sizes:
        print(f"loading {size:,} vectors ...", flush=True)
        table_rows, summary = run(size, args.queries, rng, args.clusters)
        rows += table_rows
        summaries.append(summary)
    print()
    print(table(["vectors", "query", "encode p50 ms", "db p50 ms", "db p95 ms", "total p50 ms", "full page"], rows))
    print()
    print(table(
        ["vectors", "HNSW", "ef_search", "recall@10 (HNSW vs exact)", "HNSW build s", "index MB", "exact p50 / HNSW p50"],
        [[s["rows"], str(s["parameters"]), s["ef_search"], s["recall@10"], s["build_s"], s["index_MB"], s["index_speedup_p50"]]
         for s in summaries],
    ))
    print()
    print(table(
        ["vectors", "HNSW", *[f"ef_search {ef}: recall@10 / p50 ms" for ef in EF_CURVE]],
        [[s["rows"], str(s["parameters"]), *[f"{r:.3f} / {t:.2f}" for _, r, t in s["ef_curve"]]] for s in summaries],
    ))
    print()
    print(table(
        ["vectors", "page", "fixed ef_search: recall", "p50 ms", "adaptive: recall", "p50 ms"],
        [row for s in summaries for row in s["adaptive"]],
    ))


def empty_categories() -> None:
    from django.db import connection

    from tests.hostapp.models import Category

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Category._meta.db_table} RESTART IDENTITY CASCADE")


def current_ef_search() -> str:
    """The setting, and the list a first page of 20 walks on this graph (scaled by its size when adaptive)."""
    from assetsearch.conf import app_settings
    from assetsearch.encoders import get_encoder
    from assetsearch.index import get_ef_search, get_graph_size

    setting = int(app_settings.HNSW_EF_SEARCH)
    walked = get_ef_search(20, vectors=get_graph_size(get_encoder().alias))
    return f"{setting}" if walked == setting else f"{setting} (walks {walked})"


if __name__ == "__main__":
    main()
