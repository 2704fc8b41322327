"""Moderation concepts scored over stored vectors: flags, review, hiding, calibration."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth.models import Permission, User
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from assetsearch.conf import app_settings
from assetsearch.models import Asset, EmbeddingStatus, FlagStatus, IndexEntry, ModerationConcept, ModerationFlag
from assetsearch.moderation import calibrate, default_counter_prompts, flag_assets, moderation_query, rescore_concept
from assetsearch.pipeline import embed_assets
from assetsearch.search import Query, search, similar_assets, near_duplicates

from .utils import image_file, scene, wait_for

RED_TRIANGLE = dict(
    name="red triangles",
    prompts=["a red triangle"],
    counter_prompts=["a red square", "a red circle", "a red star", "a blue triangle", "a green triangle", "a yellow triangle"],
    threshold=0.5,
)
COLOURS = ["red", "blue", "green", "yellow"]
SHAPES = ["triangle", "circle", "square", "star"]


def make_catalogue() -> dict[tuple[str, str], Asset]:
    with override_settings(ASSETSEARCH={"AUTO_EMBED": False}):
        assets = {
            (c, s): Asset.objects.create(image=image_file(scene(colour=c, shape=s), seed=i * 7 + j), title=f"{c} {s}", tags=[c, s])
            for i, c in enumerate(COLOURS)
            for j, s in enumerate(SHAPES)
        }
    embed_assets([a.pk for a in assets.values()])
    return assets


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_upload_is_scored_by_the_worker_and_flagged():
    ModerationConcept.objects.create(enabled=True, **RED_TRIANGLE)
    triangle = Asset.objects.create(image=image_file(scene(colour="red", shape="triangle")), title="t")
    circle = Asset.objects.create(image=image_file(scene(colour="blue", shape="circle")), title="c")
    for asset in (triangle, circle):
        wait_for(lambda: Asset.objects.get(pk=asset.pk).embedding_status == EmbeddingStatus.READY, timeout=90)
    flags = list(ModerationFlag.objects.all())
    assert [f.asset.pk for f in flags] == [triangle.pk], [(f.asset.pk, f.score) for f in flags]
    assert flags[0].score >= 0.5 and flags[0].status == FlagStatus.OPEN


@pytest.mark.django_db
def test_new_concept_backfills_flags_without_re_embedding():
    assets = make_catalogue()
    before = dict(IndexEntry.objects.values_list("object_id", "embedded_at"))
    concept = ModerationConcept.objects.create(enabled=False, **RED_TRIANGLE)  # disabled: no background job
    counts = rescore_concept(concept.pk)
    assert dict(IndexEntry.objects.values_list("object_id", "embedded_at")) == before
    flagged = set(concept.flags.values_list("entry__object_id", flat=True))
    assert flagged == {assets["red", "triangle"].pk}, counts
    concept.refresh_from_db()
    assert concept.rescore_done == concept.rescore_total == len(assets) and concept.rescored_at

    # Raising the threshold clears open flags; reviewed flags keep their status.
    concept.threshold = 0.999999
    concept.save()
    assert flag_assets(concept).cleared == 1 and not concept.flags.exists()


@pytest.mark.django_db
def test_a_batched_rescore_scores_every_batch_against_the_same_statistics():
    """The catalogue statistics are read once per rescore: a cache expiring between batches changes nothing."""
    assets = make_catalogue()
    concept = ModerationConcept.objects.create(enabled=False, **{**RED_TRIANGLE, "threshold": 0.0})
    rescore_concept(concept.pk)
    whole = dict(concept.flags.values_list("entry__object_id", "score"))
    assert len(whole) == len(assets)
    with CaptureQueriesContext(connection) as queries:
        rescore_concept(concept.pk, batch_size=3, progress=lambda done, total: caches[app_settings.TEXT_CACHE_ALIAS].clear())
    assert sum("TABLESAMPLE" in q["sql"] for q in queries.captured_queries) <= 1
    assert dict(concept.flags.values_list("entry__object_id", "score")) == pytest.approx(whole)


@pytest.mark.django_db
def test_review_and_hiding_in_every_listing():
    assets = make_catalogue()
    concept = ModerationConcept.objects.create(enabled=False, action="hide", **RED_TRIANGLE)
    rescore_concept(concept.pk)
    ModerationConcept.objects.filter(pk=concept.pk).update(enabled=True)
    hidden = assets["red", "triangle"]
    editor = User.objects.create_user("editor")
    moderator = User.objects.create_user("moderator")
    moderator.user_permissions.add(Permission.objects.get(codename="moderate_asset"))
    moderator = User.objects.get(pk=moderator.pk)

    def listings(user) -> dict[str, set[int]]:
        visible = Asset.objects.visible_to(user)
        return {
            "list": set(visible.values_list("pk", flat=True)),
            "search": {h.asset.pk for h in search(Query(text="a red triangle", limit=16, visible=visible)).hits},
            "similar": {h.asset.pk for h in similar_assets(assets["red", "square"].pk, limit=15, visible=visible).hits},
            "duplicates": {h.asset.pk for h in near_duplicates(assets["red", "square"].pk, threshold=-1, check_pixels=False, visible=visible)},
        }

    for name, ids in listings(editor).items():
        assert hidden.pk not in ids, name
    for name, ids in listings(moderator).items():
        assert hidden.pk in ids, name

    # Dismissing the flag makes it visible again; confirming keeps it hidden.
    ModerationFlag.objects.filter(entry__asset=hidden).review(FlagStatus.DISMISSED, moderator)
    assert hidden.pk in listings(editor)["list"]
    ModerationFlag.objects.filter(entry__asset=hidden).review(FlagStatus.CONFIRMED, moderator)
    assert hidden.pk not in listings(editor)["list"]
    flag = ModerationFlag.objects.get(entry__asset=hidden)
    assert flag.reviewer == moderator and flag.reviewed_at is not None


@pytest.mark.django_db
def test_a_concept_without_counter_prompts_is_weighed_against_the_model_s_lookalikes():
    assets = make_catalogue()
    counters = default_counter_prompts(["a red triangle"])
    assert len(counters) == app_settings.MODERATION_LOOKALIKES == 16 and "a red triangle" not in counters
    assert {"a red square", "a red star", "a blue triangle", "a green triangle"} <= set(counters)
    # A broad concept keeps its narrower cases ("a blue star") out of its counter-prompts.
    assert not any("blue" in counter for counter in default_counter_prompts(["blue"]))

    def flags(prompts: list[str], threshold: float = 0.5) -> dict[tuple[str, str], float]:
        """The score of each flagged asset of a concept without counter-prompts."""
        concept = ModerationConcept.objects.create(
            enabled=False, name=f"{prompts[0]} {ModerationConcept.objects.count()}", prompts=prompts, threshold=threshold
        )
        rescore_concept(concept.pk)
        scores = dict(concept.flags.values_list("entry__object_id", "score"))
        return {key: scores[asset.pk] for key, asset in assets.items() if asset.pk in scores}

    assert flags(["a red triangle"]).keys() == {("red", "triangle")}
    assert flags(["blue"]).keys() == {("blue", shape) for shape in SHAPES}
    assert flags(["a star"]).keys() == {(colour, "star") for colour in COLOURS}
    hits = moderation_query("a green star", limit=3)
    assert hits[0].asset == assets["green", "star"] and hits[0].score >= 0.5 > hits[1].score, [(h.asset.title, h.score) for h in hits]
    with override_settings(ASSETSEARCH={"MODERATION_LOOKALIKES": 0}):
        assert default_counter_prompts(["a red triangle"]) == app_settings.MODERATION_NEUTRAL_PROMPTS
        neutral = flags(["a red triangle"], threshold=0.0)
    lookalikes = flags(["a red triangle"], threshold=0.0)
    # Against the neutral prompts, which only stand for "something else", a red star and a blue triangle are each
    # about a third a red triangle (0.31 here); against the look-alikes they are not (under 0.001).
    others = [key for key in assets if key != ("red", "triangle")]
    assert min(neutral["red", "triangle"], lookalikes["red", "triangle"]) >= 0.9
    assert max(neutral[key] for key in others) >= 0.1 and max(lookalikes[key] for key in others) < 0.01, (neutral, lookalikes)


@pytest.mark.django_db
def test_ad_hoc_moderation_query_ranks_by_concept_score():
    assets = make_catalogue()
    hits = moderation_query("a green star", counter_prompts=["a green circle", "a blue star", "a red star"], limit=16)
    assert hits[0].asset == assets["green", "star"]
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True) and 0 <= scores[-1] <= scores[0] <= 1


@pytest.mark.django_db
def test_calibration_suggests_a_threshold_that_reaches_the_asked_precision():
    assets = make_catalogue()
    concept = ModerationConcept.objects.create(enabled=False, **{**RED_TRIANGLE, "threshold": 0.0001})
    rescore_concept(concept.pk)
    assert concept.flags.count() > 3  # a low threshold flags look-alikes too
    reviewer = User.objects.create_user("reviewer")
    truth = {assets["red", "triangle"].pk}
    for flag in concept.flags.all():
        ModerationFlag.objects.filter(pk=flag.pk).review(FlagStatus.CONFIRMED if flag.asset.pk in truth else FlagStatus.DISMISSED, reviewer)

    rows, suggestion = calibrate(concept, target_precision=0.9)
    assert suggestion is not None
    above = concept.flags.filter(score__gte=suggestion)
    precision = above.filter(status=FlagStatus.CONFIRMED).count() / above.count()
    assert precision >= 0.9

    out = io.StringIO()
    call_command("assetsearch_calibrate", concept.name, target_precision=0.9, apply=True, stdout=out)
    text = out.getvalue()
    assert "| threshold | precision | recall | flagged |" in text
    assert re.search(r"Suggested threshold for precision >= 0\.90: ([0-9.]+)", text).group(1) == f"{suggestion:.3f}"
    concept.refresh_from_db()
    assert concept.threshold == pytest.approx(suggestion)


@pytest.mark.django_db
def test_calibration_command_errors_are_clear():
    with pytest.raises(Exception, match="No concept named 'nope'"):
        call_command("assetsearch_calibrate", "nope")
    ModerationConcept.objects.create(**RED_TRIANGLE)
    with pytest.raises(Exception, match="no reviewed flags yet"):
        call_command("assetsearch_calibrate", RED_TRIANGLE["name"])


@pytest.mark.django_db
def test_starter_concepts_are_seeded_disabled():
    names = set(ModerationConcept.objects.values_list("name", flat=True))
    assert {"violence", "gore", "weapons", "nudity", "hate symbols", "drugs", "self-harm"} <= names
    assert not ModerationConcept.objects.filter(enabled=True).exists()
