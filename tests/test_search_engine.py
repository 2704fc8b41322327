"""Every search mode on the bundled model's synthetic catalogue."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.management import call_command
from django.test import override_settings

from assetsearch.encoders import get_encoder
from assetsearch.models import Asset
from assetsearch.pipeline import embed_assets
from assetsearch.search import (
    AssetNotEmbedded,
    EmptyQuery,
    Filters,
    InvalidQueryImage,
    Query,
    SearchError,
    UnknownAsset,
    keyword_ranking,
    near_duplicates,
    search,
    similar_assets,
)
from assetsearch.suggestions import suggest_tags

from .utils import image_file, scene

pytestmark = pytest.mark.django_db

COLOURS = ["red", "blue", "green", "yellow", "purple", "orange"]
SHAPES = ["circle", "square", "triangle", "star", "heart"]


@pytest.fixture(scope="module")
def catalogue(django_db_setup, django_db_blocker):
    """30 coloured shapes and one asset whose title says what its image does not."""
    with django_db_blocker.unblock(), override_settings(ASSETSEARCH={"AUTO_EMBED": False}):
        assets = {}
        for i, colour in enumerate(COLOURS):
            for j, shape in enumerate(SHAPES):
                assets[colour, shape] = Asset.objects.create(
                    image=image_file(scene(colour=colour, shape=shape), seed=10 * i + j),
                    title=f"{colour} {shape}",
                    tags=[colour, shape],
                )
        assets["zebra"] = Asset.objects.create(
            image=image_file(scene(colour="brown", shape="hexagon"), seed=99),
            title="Quarterly zebra migration report",
            tags=["report"],
        )
        result = embed_assets([a.pk for a in assets.values()])
        assert len(result.embedded) == len(assets), result
        yield assets
        Asset.objects.all().delete()


def ranks(results) -> dict[int, int]:
    return {hit.asset.pk: hit.rank for hit in results.hits}


def titles(results) -> list[str]:
    return [hit.asset.title for hit in results.hits]


def test_text_ranks_the_described_image_first(catalogue):
    for colour, shape in [("red", "circle"), ("blue", "star"), ("green", "triangle"), ("purple", "heart")]:
        results = search(Query(text=f"a {colour} {shape}", limit=5))
        assert results.hits[0].asset == catalogue[colour, shape], titles(results)
        assert results.strategy == "index"
        assert results.hits[0].part_scores == {} and results.hits[0].part_ranks == {"vector": 1}


def test_image_query_finds_the_other_rendering_of_the_same_scene(catalogue):
    query_image = scene(colour="yellow", shape="square").render(seed=12345)
    buffer = io.BytesIO()
    query_image.save(buffer, format="JPEG")
    results = search(Query(image=buffer.getvalue(), limit=5))
    assert results.hits[0].asset == catalogue["yellow", "square"], titles(results)


def test_more_like_this_excludes_the_asset_itself(catalogue):
    red_circle = catalogue["red", "circle"]
    results = similar_assets(red_circle.pk, limit=10)
    assert red_circle.pk not in ranks(results)
    top = results.hits[0].asset
    assert top.tags[0] == "red" or top.tags[1] == "circle", titles(results)


def test_composed_image_plus_text_moves_toward_the_text(catalogue):
    red_circle_image = scene(colour="red", shape="circle").render(seed=777)
    results = search(Query(image=red_circle_image, text="a square", limit=31))
    r = ranks(results)
    red_square, blue_circle, red_circle = (catalogue[k].pk for k in [("red", "square"), ("blue", "circle"), ("red", "circle")])
    assert r[red_square] < r[blue_circle] and r[red_square] < r[red_circle], titles(results)[:6]
    assert set(results.hits[0].part_scores) == {"text", "image"}


def test_composition_weighs_each_part_by_its_spread_over_the_catalogue(catalogue):
    from assetsearch.models import IndexEntry
    from assetsearch.search import compose, part_spreads

    alias = get_encoder().alias
    assert IndexEntry.objects.sample_vectors(alias, 10, 512).shape == (10, 512)
    assert IndexEntry.objects.sample_vectors(alias, 1000, 512).shape == (31, 512)
    assert IndexEntry.objects.sample_vectors("no-such-alias", 10, 512).shape == (0, 512)

    red_circle_image = scene(colour="red", shape="circle").render(seed=777)
    query = Query(image=red_circle_image, text="a square", limit=3)
    spreads = part_spreads(compose(query).parts)
    assert spreads["image"] > spreads["text"]  # the modality gap, measured on this catalogue
    with override_settings(ASSETSEARCH={"COMPOSE_SAMPLE_SIZE": 0}):
        unit_vectors = search(query)
    assert unit_vectors.hits[0].asset == catalogue["red", "circle"]  # the image outvotes the words
    weighed = search(query)
    r = ranks(weighed)
    shapes = [asset for key, asset in catalogue.items() if key != "zebra"]
    # Of the 30 coloured shapes the red square comes first, above the red circle the image alone picks.
    assert min(shapes, key=lambda asset: r.get(asset.pk, len(catalogue))) == catalogue["red", "square"], titles(weighed)
    # The one asset allowed before it: the zebra report's brown hexagon, which the checkpoints since the
    # 1,500-step one read as nearly as much "a red circle, but a square" (match 0.648 against 0.648, now
    # 0.505 against 0.500; the 1,000-step checkpoint put the red square first).
    assert weighed.hits[0].asset in (catalogue["red", "square"], catalogue["zebra"]), titles(weighed)


def test_a_near_copy_of_the_query_image_does_not_outvote_the_words(catalogue):
    red_circle, red_square = catalogue["red", "circle"], catalogue["red", "square"]
    with red_circle.image.open("rb") as stored:
        query = Query(image=stored.read(), text="a square", limit=31)  # the stored picture itself
    results = search(query)
    r = ranks(results)
    assert r[red_square.pk] < r[red_circle.pk], titles(results)[:6]
    copy = next(hit for hit in results.hits if hit.asset == red_circle)
    assert copy.part_scores["image"] > 0.99
    matches = [hit.match for hit in results.hits]
    assert matches == sorted(matches, reverse=True) and max(matches) <= 1.5  # ordered by the match, each part capped
    with override_settings(ASSETSEARCH={"COMPOSE_PART_CAP": 1e9}):
        uncapped = search(query)
    # Uncapped, the copy's image part (4+ standard deviations) lifts it above everything the cap keeps it under.
    assert ranks(uncapped)[red_circle.pk] < r[red_circle.pk], (titles(uncapped)[:6], titles(results)[:6])


def test_negative_term_pushes_matching_items_down(catalogue):
    plain = ranks(search(Query(text="a circle", limit=31)))
    pushed = ranks(search(Query(text="a circle", negative=["red"], limit=31)))
    red_circle = catalogue["red", "circle"].pk
    assert pushed[red_circle] > plain[red_circle]
    top_non_red = [hit.asset.tags[0] for hit in search(Query(text="a circle", negative=["red"], limit=3)).hits]
    assert "red" not in top_non_red


def test_filters_narrow_and_min_score_cuts(catalogue):
    results = search(Query(text="a circle", filters=Filters(tags=["blue"]), limit=10))
    assert {hit.asset.tags[0] for hit in results.hits} == {"blue"} and len(results.hits) == 5
    assert results.hits[0].asset == catalogue["blue", "circle"]
    assert results.strategy == "exact"  # 5 of 31 rows, under the exact-scan threshold
    cut = search(Query(text="a red circle", min_score=results.hits[0].score, limit=31))
    assert all(hit.score >= results.hits[0].score for hit in cut.hits)
    assert len(search(Query(text="a circle", filters=Filters(mime_types=["image/jpeg"]))).hits) == 0


def test_hybrid_finds_a_title_word_the_image_does_not_show(catalogue):
    vector_only = search(Query(text="zebra", limit=5))
    assert catalogue["zebra"].pk not in ranks(vector_only)
    hybrid = search(Query(text="zebra", hybrid=True, limit=5))
    assert hybrid.hits[0].asset == catalogue["zebra"]
    assert hybrid.hits[0].part_ranks["keyword"] == 1
    assert hybrid.strategy == "hybrid:index" and hybrid.hits[0].fused_score > 0


@pytest.mark.parametrize(
    "text, within",
    [
        ("a picture of a zebra", 1),
        ("Zebras?", 1),
        ("the zebra's report", 1),
        # The blue heart matches both ways; the zebra's title word lifts it next.
        ("two blue hearts zebra", 2),
    ],
)
def test_hybrid_finds_a_title_word_inside_a_sentence(catalogue, text, within):
    hybrid = search(Query(text=text, hybrid=True, limit=within))
    assert catalogue["zebra"].pk in ranks(hybrid), (text, titles(hybrid))
    # The rare title word outweighs the common ones: first in the keyword ranking.
    keyword = keyword_ranking(text, Asset.objects.all(), depth=10)
    assert keyword[0] == catalogue["zebra"].pk, (text, keyword)


def test_keyword_side_ranks_more_and_rarer_words_higher(catalogue):
    # "blue" (5 assets) and "heart" (6): weights ln(1 + 10/5) + ln(1 + 10/6) = 2.08 for the blue heart;
    # a blue square (1.10) or a red heart (0.98) alone falls below 3/4 of it and is left to the vectors.
    assert keyword_ranking("a blue heart", Asset.objects.all(), depth=50) == [catalogue["blue", "heart"].pk]
    # With the rare word: zebra (ln 12 = 2.48) first, the blue heart (2.20) within 3/4 of it, nothing else.
    assert keyword_ranking("two blue hearts zebra", Asset.objects.all(), depth=50) == [
        catalogue["zebra"].pk, catalogue["blue", "heart"].pk]
    # One word: every match is as good.
    blue = keyword_ranking("blue", Asset.objects.all(), depth=50)
    assert blue == sorted(catalogue["blue", shape].pk for shape in SHAPES)
    assert keyword_ranking("a of the", Asset.objects.all(), depth=10) == []  # stop words only
    assert keyword_ranking("?! --", Asset.objects.all(), depth=10) == []
    # A narrowed candidate set is honoured.
    assert keyword_ranking("blue", Asset.objects.filter(tags__contains=["heart"]), depth=10) == [catalogue["blue", "heart"].pk]


def test_pages_are_stable_and_ranked_over_the_whole_list(catalogue):
    full = search(Query(text="a green star", limit=12))
    page2 = search(Query(text="a green star", limit=6, offset=6))
    assert [h.asset.pk for h in page2.hits] == [h.asset.pk for h in full.hits[6:]]
    assert [h.rank for h in page2.hits] == list(range(7, 13))
    scores = [h.score for h in full.hits]
    assert scores == sorted(scores, reverse=True)


def test_suggested_tags_describe_the_image(catalogue):
    suggestions = suggest_tags(catalogue["green", "star"].pk, include_existing=True, limit=4)
    top = [s.tag for s in suggestions[:2]]
    assert set(top) == {"green", "star"}, suggestions
    assert suggestions[0].score > suggestions[3].score and 0 < suggestions[0].probability <= 1
    assert "green" not in [s.tag for s in suggest_tags(catalogue["green", "star"].pk)]


def test_near_duplicates_and_the_duplicates_command(catalogue):
    original = catalogue["orange", "heart"]
    with override_settings(ASSETSEARCH={"AUTO_EMBED": False}):
        copy = Asset.objects.create(image=image_file(scene(colour="orange", shape="heart"), seed=54, name="copy.png"), title="copy")
        # The same scene drawn again (another seed moves and turns the heart): another picture.
        look_alike = Asset.objects.create(image=image_file(scene(colour="orange", shape="heart"), seed=41), title="look-alike")
    embed_assets([copy.pk, look_alike.pk])
    try:
        # The demo model sees same-coloured shapes as very alike; a re-upload is ~1.0.
        duplicates = near_duplicates(original.pk, threshold=0.995)
        assert [hit.asset for hit in duplicates] == [copy] and duplicates[0].score > 0.99
        # At the default threshold the look-alike is a candidate, and its pixels rule it out.
        candidates = near_duplicates(original.pk, check_pixels=False)
        assert look_alike in [hit.asset for hit in candidates], [(hit.asset, hit.score) for hit in candidates]
        assert [(hit.asset, hit.rank) for hit in near_duplicates(original.pk)] == [(copy, 1)]
        out = io.StringIO()
        call_command("assetsearch_duplicates", json=True, stdout=out, verbosity=0)
        assert json.loads(out.getvalue()) == [sorted([original.pk, copy.pk])]
        out = io.StringIO()
        call_command("assetsearch_duplicates", vectors_only=True, json=True, stdout=out, verbosity=0)
        assert any({original.pk, copy.pk, look_alike.pk} <= set(group) for group in json.loads(out.getvalue()))
    finally:
        copy.delete()
        look_alike.delete()


def test_evaluation_command_prints_its_table(catalogue, tmp_path):
    query_set = [
        {"text": f"a {c} {s}", "relevant": [catalogue[c, s].pk]} for c in COLOURS[:3] for s in SHAPES[:3]
    ] + [{"asset_id": catalogue["red", "circle"].pk, "relevant": [catalogue["red", "square"].pk, catalogue["orange", "circle"].pk]}]
    path = tmp_path / "queries.json"
    path.write_text(json.dumps(query_set))
    out = io.StringIO()
    call_command("assetsearch_evaluate", str(path), stdout=out)
    table = out.getvalue()
    for metric in ["recall@1", "recall@5", "recall@10", "MRR", "mAP@10", "latency_p50_ms", "latency_p95_ms", "ann_recall@10_vs_exact"]:
        assert f"| {metric} |" in table
    out = io.StringIO()
    call_command("assetsearch_evaluate", str(path), json=True, stdout=out)
    metrics = json.loads(out.getvalue())
    assert metrics["queries"] == 10 and metrics["recall@10"] >= 0.9 and metrics["ann_recall@10_vs_exact"] == 1.0


@pytest.mark.parametrize(
    "query, error, message",
    [
        (Query(text="   "), EmptyQuery, "empty"),
        (Query(), EmptyQuery, "Give text, an image or an asset"),
        (Query(image=b"not an image"), InvalidQueryImage, "not an image"),
        (Query(asset_id=10**9), UnknownAsset, "no asset with id 1000000000"),
        (Query(text="a circle", text_weight=float("nan")), SearchError, "finite number"),
        (Query(text="a circle", text_weight="heavy"), SearchError, "must be a number"),
        (Query(text="a circle", limit=0), SearchError, "limit must be between 1 and 100"),
        (Query(text="a circle", limit=10**6), SearchError, "limit must be between 1 and 100"),
        (Query(text="a circle", offset=-1), SearchError, "offset must be between"),
    ],
)
def test_bad_queries_raise_typed_errors_with_clear_messages(catalogue, query, error, message):
    with pytest.raises(error, match=message):
        search(query)


@pytest.mark.parametrize(
    "query",
    [
        Query(text="a circle", text_weight=0),
        Query(text="a circle", negative=["a circle"], text_weight=1, negative_weight=1),
    ],
    ids=["zero weight", "negative equals text"],
)
def test_parts_that_cancel_out_rank_nothing_and_say_why(catalogue, query):
    results = search(query)
    assert results.hits == [] and results.notices == ["The weights cancel out, so nothing was ranked; give at least one part a positive weight."]


def test_a_tiny_weight_still_gives_a_direction(catalogue):
    """The cancellation test is relative: a weight of 1e-30 ranks like a weight of 1."""
    tiny, unit = search(Query(text="a red circle", text_weight=1e-30, limit=5)), search(Query(text="a red circle", limit=5))
    assert [h.asset.pk for h in tiny.hits] == [h.asset.pk for h in unit.hits] and len(unit.hits) == 5


def test_unembedded_asset_is_a_clear_error(catalogue):
    with override_settings(ASSETSEARCH={"AUTO_EMBED": False}):
        pending = Asset.objects.create(image=image_file(), title="pending")
    with pytest.raises(AssetNotEmbedded, match="no embedding yet \\(status: pending\\)"):
        similar_assets(pending.pk)
    pending.delete()


def test_long_text_is_truncated_and_says_so(catalogue):
    results = search(Query(text=" ".join(["a red circle on the left"] * 10), limit=3))
    assert results.notices and "truncated" in results.notices[0]
    assert not search(Query(text="a red circle", limit=3)).notices


def test_repeated_text_query_uses_the_cache(catalogue):
    from assetsearch.encoders import get_encoder

    encoder = get_encoder()
    calls = []
    original = encoder.embed_texts
    encoder.embed_texts = lambda texts: calls.append(list(texts)) or original(texts)  # count real calls
    try:
        search(Query(text="three tiny purple hearts", limit=3))
        search(Query(text="three tiny purple hearts", limit=3))
    finally:
        del encoder.embed_texts
    assert calls == [["three tiny purple hearts"]]
    assert np.isfinite(search(Query(text="three tiny purple hearts", limit=1)).hits[0].score)
