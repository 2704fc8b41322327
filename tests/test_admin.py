"""Django admin: semantic change-list search, visual search, similar assets,
tag suggestions, embedding status, moderation review, and who may use each.

Everything runs for real: the embedded PostgreSQL, the bundled CLIP model
(assets are embedded in-process with ``embed_assets``), and for the
re-enqueue button the real Redis broker and a real Celery worker.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from assetsearch.models import (
    Asset,
    ConceptAction,
    EmbeddingStatus,
    FlagStatus,
    ModerationConcept,
    ModerationFlag,
)
from assetsearch.moderation import flag_assets
from assetsearch.pipeline import embed_assets

from .admin_helpers import CATALOGUE, RED_CIRCLES, RED_SQUARES, editor_group, make_asset, make_catalogue, no_auto_embed, staff
from .utils import image_file, scene, wait_for



def client_for(user: User | None, **options: Any) -> Client:
    client = Client(**options)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def users(db: None) -> dict[str, User]:
    editor = staff("editor")
    editor.groups.add(editor_group())
    return {
        "nobody": staff("nobody"),
        "viewer": staff("viewer", "view_asset"),
        "editor": User.objects.get(pk=editor.pk),
        "moderator": staff("moderator", "view_asset", "moderate_asset"),
        "admin": staff("admin", superuser=True),
    }


def url(name: str, *args: Any) -> str:
    return reverse(f"admin:assetsearch_{name}", args=args)


def titles(assets: Any) -> list[str]:
    return [a.title for a in assets]


def hit_titles(response: Any) -> list[str]:
    return [hit.asset.title for hit in response.context["results"].hits]


def messages_of(response: Any) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def post_action(client: Client, changelist: str, action: str, ids: list[int]) -> Any:
    return client.post(changelist, {"action": action, "_selected_action": [str(pk) for pk in ids]}, follow=True)


def png_upload(parts: dict[str, str], seed: int, name: str = "query.png") -> Any:
    return image_file(scene(**parts), seed=seed, name=name)


# Access ---------------------------------------------------------------------

ASSET_PAGES = ["asset_changelist", "asset_visual_search", "asset_status"]
MODERATION_PAGES = ["moderationflag_changelist", "moderationflag_query", "moderationconcept_changelist"]


def test_anonymous_users_are_sent_to_the_login_page(db: None) -> None:
    asset = make_asset("x", dict(colour="red", shape="circle"), 1, [])
    client = Client()
    pages = [url(p) for p in ASSET_PAGES + MODERATION_PAGES] + [url("asset_change", asset.pk)]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 302, page
        assert response["Location"].startswith(reverse("admin:login") + "?next="), page
    response = client.post(url("asset_accept_tag", asset.pk), {"tag": "red"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    assert Asset.objects.get(pk=asset.pk).tags == []


def test_staff_without_permissions_get_403(users: dict[str, User]) -> None:
    asset = make_asset("x", dict(colour="red", shape="circle"), 1, [])
    client = client_for(users["nobody"])
    for page in [url(p) for p in ASSET_PAGES + MODERATION_PAGES] + [url("asset_change", asset.pk)]:
        assert client.get(page).status_code == 403, page
    assert client.post(url("asset_status")).status_code == 403
    assert client.post(url("asset_accept_tag", asset.pk), {"tag": "red"}).status_code == 403
    assert Asset.objects.get(pk=asset.pk).tags == []


def test_viewers_may_search_but_not_change_or_moderate(users: dict[str, User]) -> None:
    assets = make_catalogue()
    client = client_for(users["viewer"])
    for page in ASSET_PAGES:
        assert client.get(url(page)).status_code == 200, page
    assert client.get(url("asset_visual_search"), {"text": "a red circle"}).status_code == 200
    for page in MODERATION_PAGES:
        assert client.get(url(page)).status_code == 403, page

    status = client.get(url("asset_status"))
    assert 'id="requeue-form"' not in status.content.decode()
    assert client.post(url("asset_status")).status_code == 403

    change = client.get(url("asset_change", assets["bravo"].pk))
    assert change.status_code == 200
    html = change.content.decode()
    assert 'id="suggested-tags"' in html and 'form="assetsearch-accept-tag"' not in html
    assert client.post(url("asset_accept_tag", assets["bravo"].pk), {"tag": "red"}).status_code == 403
    assert Asset.objects.get(pk=assets["bravo"].pk).tags == []


def test_app_index_links_the_tools_by_permission(users: dict[str, User]) -> None:
    index = reverse("admin:app_list", args=["assetsearch"])
    viewer = client_for(users["viewer"]).get(index).content.decode()
    assert url("asset_visual_search") in viewer and url("asset_status") in viewer
    assert url("moderationflag_query") not in viewer
    moderator = client_for(users["moderator"]).get(index).content.decode()
    assert url("moderationflag_query") in moderator and url("moderationflag_changelist") in moderator
    changelist = client_for(users["viewer"]).get(url("asset_changelist")).content.decode()
    assert url("asset_visual_search") in changelist and url("asset_status") in changelist


# Change list search -------------------------------------------------------------


def test_changelist_search_orders_by_relevance_and_shows_the_score(users: dict[str, User]) -> None:
    assets = make_catalogue()
    client = client_for(users["editor"])
    response = client.get(url("asset_changelist"), {"q": "a red circle"})
    assert response.status_code == 200
    rows = list(response.context["cl"].result_list)
    assert set(titles(rows[:2])) == RED_CIRCLES, [(a.title, a.search_score) for a in rows]
    # Every embedded asset is ranked by meaning; scores fall along the vector ranking.
    assert len(rows) == len(assets)
    assert rows[0].search_score > rows[-1].search_score
    html = response.content.decode()
    assert "column-similarity" in html
    assert f"{rows[0].search_score:.3f}" in html

    # Without a search: no similarity column, the usual newest-first order.
    plain = client.get(url("asset_changelist"))
    assert "column-similarity" not in plain.content.decode()
    assert titles(plain.context["cl"].result_list) == list(reversed(list(CATALOGUE)))


def test_changelist_search_finds_an_exact_title_and_keyword_substrings(users: dict[str, User]) -> None:
    make_catalogue()
    client = client_for(users["editor"])
    rows = client.get(url("asset_changelist"), {"q": "Quarterly report cover"}).context["cl"].result_list
    assert rows[0].title == "Quarterly report cover"
    # A fragment no full-text index matches: the admin's own keyword search still finds it.
    rows = client.get(url("asset_changelist"), {"q": "Quarterl"}).context["cl"].result_list
    assert "Quarterly report cover" in titles(rows)


def test_changelist_search_keeps_the_filters_and_a_clicked_column_order(users: dict[str, User]) -> None:
    assets = make_catalogue()
    client = client_for(users["editor"])
    with no_auto_embed():
        Asset.objects.filter(pk=assets["alpha"].pk).set_status(EmbeddingStatus.FAILED, "boom")
    rows = client.get(url("asset_changelist"), {"q": "a red circle", "embedding_status__exact": "ready"}).context["cl"].result_list
    # Hybrid: echo (tagged "circle") and foxtrot ("red") match a query word each and
    # come first; bravo, the red circle left by the filter, leads everything else.
    found = titles(rows)
    assert "alpha" not in found and found[:3] == ["echo", "foxtrot", "bravo"], found
    # Clicking the title column (index 2: action checkbox, image, title) sorts by it instead.
    rows = client.get(url("asset_changelist"), {"q": "a red circle", "o": "2"}).context["cl"].result_list
    assert titles(rows) == sorted(titles(rows))


def test_unusable_search_text_falls_back_to_keywords_with_a_warning(users: dict[str, User]) -> None:
    make_catalogue()
    long_text = "Quarterly " + "x" * 1200
    response = client_for(users["editor"]).get(url("asset_changelist"), {"q": long_text})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []
    assert any(level == "warning" and "Semantic search did not run" in text for level, text in messages_of(response))


def test_hidden_assets_never_reach_users_without_the_moderation_permission(users: dict[str, User]) -> None:
    assets = make_catalogue()
    hidden = make_asset("hidden", dict(colour="purple", shape="heart"), 9, [])
    embed_assets([hidden.pk])
    concept = ModerationConcept.objects.create(
        enabled=False, action=ConceptAction.HIDE, name="purple hearts", prompts=["a purple heart"],
        counter_prompts=["a red circle", "a blue square", "a green star", "a purple circle", "a red heart"], threshold=0.5,
    )
    flag_assets(concept)
    ModerationConcept.objects.filter(pk=concept.pk).update(enabled=True)
    assert list(ModerationFlag.objects.values_list("entry__asset__title", flat=True)) == ["hidden"]

    editor = client_for(users["editor"])
    assert "hidden" not in titles(editor.get(url("asset_changelist")).context["cl"].result_list)
    assert "hidden" not in titles(editor.get(url("asset_changelist"), {"q": "a red circle"}).context["cl"].result_list)
    assert "hidden" not in hit_titles(editor.get(url("asset_visual_search"), {"text": "a red circle"}))
    assert "hidden" not in hit_titles(editor.get(url("asset_visual_search"), {"asset": assets["alpha"].pk}))
    change = editor.get(url("asset_change", assets["alpha"].pk))
    assert hidden.pk not in [hit.asset.pk for hit in change.context["assetsearch_panels"].similar]
    # Its own pages are as if it did not exist.
    assert editor.get(url("asset_change", hidden.pk)).status_code == 302
    assert editor.get(url("asset_visual_search"), {"asset": hidden.pk}).context["form"].errors["asset"]
    assert editor.post(url("asset_accept_tag", hidden.pk), {"tag": "x"}).status_code == 404

    admin = client_for(users["admin"])
    assert "hidden" in titles(admin.get(url("asset_changelist"), {"q": "a red circle"}).context["cl"].result_list)
    assert "hidden" in hit_titles(admin.get(url("asset_visual_search"), {"asset": assets["alpha"].pk}))


# Visual search ------------------------------------------------------------------


def test_visual_search_with_an_uploaded_image_ranks_the_same_scene_first(users: dict[str, User]) -> None:
    make_catalogue()
    client = client_for(users["editor"])
    response = client.post(url("asset_visual_search"), {"image": png_upload(dict(colour="red", shape="circle"), seed=42), "limit": "5"})
    assert response.status_code == 200, response.context["form"].errors
    assert set(hit_titles(response)[:2]) == RED_CIRCLES, hit_titles(response)
    assert len(hit_titles(response)) == 5
    html = response.content.decode()
    # A grid of thumbnails, each linking to its asset's change page; the query image shown inline.
    first = response.context["results"].hits[0].asset
    assert url("asset_change", first.pk) in html
    assert reverse("assetsearch:asset-thumbnail", args=[first.pk]) in html
    assert 'src="data:image/jpeg;base64,' in html


def test_visual_search_mixes_text_negatives_and_filters(users: dict[str, User]) -> None:
    assets = make_catalogue()
    client = client_for(users["editor"])
    # "a circle" but not red: the blue circle comes first. (Weights count in
    # catalogue standard deviations: a negative as strong as the text, 1,
    # would favour the least red picture, a yellow triangle, over circles.)
    response = client.get(url("asset_visual_search"), {"text": "a circle", "negative": "red", "negative_weight": "0.5"})
    assert hit_titles(response)[0] == "echo", hit_titles(response)
    # Tag filter: only assets tagged "square".
    response = client.get(url("asset_visual_search"), {"text": "a red circle", "tags": "square"})
    assert set(hit_titles(response)) == {"Quarterly report cover", "foxtrot"}
    assert hit_titles(response)[0] == "foxtrot"
    # File type filter: a JPEG among PNGs.
    jpeg = make_asset("jpeg red circle", dict(colour="red", shape="circle"), 11, [], fmt="JPEG")
    embed_assets([jpeg.pk])
    response = client.get(url("asset_visual_search"), {"text": "a red circle", "mime_types": "image/jpeg"})
    assert hit_titles(response) == ["jpeg red circle"]
    # Hybrid: the exact title wins even though the picture is a blue square.
    response = client.get(url("asset_visual_search"), {"text": "Quarterly report cover", "hybrid": "on"})
    assert hit_titles(response)[0] == "Quarterly report cover"
    assert response.context["results"].strategy.startswith("hybrid")
    # Text and image together, weighted.
    response = client.post(
        url("asset_visual_search"),
        {"image": png_upload(dict(colour="red", shape="circle"), seed=43), "text": "a square", "text_weight": "2", "image_weight": "1"},
    )
    assert hit_titles(response)[0] == "foxtrot", hit_titles(response)
    assert set(response.context["results"].hits[0].part_scores) == {"text", "image"}
    first = response.context["results"].hits[0]
    assert f"match {first.match:.3f}" in response.content.decode()  # what ordered them, beside each part's score
    assert assets


def test_visual_search_reports_bad_input_on_the_form(users: dict[str, User]) -> None:
    make_catalogue()
    client = client_for(users["editor"])
    empty = client.post(url("asset_visual_search"), {"text": "  "})
    assert empty.status_code == 200 and empty.context["results"] is None
    assert "Give text, an image or an asset" in str(empty.context["form"].non_field_errors())
    junk = client.post(url("asset_visual_search"), {"image": SimpleUploadedFile("junk.png", b"not an image", content_type="image/png")})
    assert junk.context["results"] is None and junk.context["form"].non_field_errors()
    negative_weight = client.get(url("asset_visual_search"), {"text": "a red circle", "text_weight": "-1"})
    assert negative_weight.context["form"].errors["text_weight"]
    too_many = client.get(url("asset_visual_search"), {"text": "a red circle", "limit": "1000"})
    assert too_many.context["form"].errors["limit"]
    blank = client.get(url("asset_visual_search"))
    assert blank.status_code == 200 and not blank.context["form"].is_bound


# Similar assets and tag suggestions ------------------------------------------------


def test_find_similar_from_the_changelist_and_the_change_page(users: dict[str, User]) -> None:
    assets = make_catalogue()
    client = client_for(users["editor"])
    alpha = assets["alpha"]
    similar_url = url("asset_visual_search") + f"?asset={alpha.pk}"
    assert similar_url in client.get(url("asset_changelist")).content.decode()

    response = client.get(similar_url)
    assert hit_titles(response)[0] == "bravo" and "alpha" not in hit_titles(response)
    assert response.context["query_asset"] == alpha

    change = client.get(url("asset_change", alpha.pk))
    html = change.content.decode()
    assert 'id="find-similar-link"' in html and similar_url.replace("&", "&amp;") in html
    similar = change.context["assetsearch_panels"].similar
    assert [hit.asset.title for hit in similar][0] == "bravo"
    assert alpha.pk not in [hit.asset.pk for hit in similar]
    assert len(similar) == 7  # everything else, best first
    assert [hit.score for hit in similar] == sorted((hit.score for hit in similar), reverse=True)
    panel = html[html.index('id="similar-assets"') :]
    assert reverse("assetsearch:asset-thumbnail", args=[assets["bravo"].pk]) in panel


def test_pending_asset_explains_why_it_has_no_similar_assets(users: dict[str, User]) -> None:
    asset = make_asset("pending one", dict(colour="red", shape="circle"), 1, [])
    response = client_for(users["editor"]).get(url("asset_change", asset.pk))
    html = response.content.decode()
    assert "has no embedding yet" in html and 'id="find-similar-link"' not in html


def test_accepting_a_suggested_tag_saves_it(users: dict[str, User]) -> None:
    assets = make_catalogue()
    bravo = assets["bravo"]
    client = client_for(users["editor"], enforce_csrf_checks=True)
    change = client.get(url("asset_change", bravo.pk))
    suggestions = [s.tag for s in change.context["assetsearch_panels"].suggestions]
    # The vocabulary is the catalogue's tags; a red circle is best described by them.
    assert {"red", "circle"} & set(suggestions[:3]), suggestions
    html = change.content.decode()
    assert f'form="assetsearch-accept-tag" name="tag" value="{suggestions[0]}"' in html
    token = re.search(r'id="assetsearch-accept-tag">\s*<input type="hidden" name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)

    # Without the CSRF token: refused.
    assert client.post(url("asset_accept_tag", bravo.pk), {"tag": suggestions[0]}).status_code == 403
    # GET does not change anything.
    assert client.get(url("asset_accept_tag", bravo.pk), {"tag": suggestions[0]}).status_code == 405
    assert Asset.objects.get(pk=bravo.pk).tags == []

    response = client.post(url("asset_accept_tag", bravo.pk), {"tag": suggestions[0], "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == url("asset_change", bravo.pk)
    bravo.refresh_from_db()
    assert bravo.tags == [suggestions[0]]
    assert LogEntry.objects.filter(object_id=str(bravo.pk), action_flag=CHANGE, user=users["editor"]).exists()
    # Accepted tags drop out of the suggestions, and the keyword index knows them.
    after = client.get(url("asset_change", bravo.pk))
    assert suggestions[0] not in [s.tag for s in after.context["assetsearch_panels"].suggestions]
    assert Asset.objects.filter(pk=bravo.pk, search_document=suggestions[0]).exists()
    # The same tag again changes nothing; an over-long one is refused.
    client.post(url("asset_accept_tag", bravo.pk), {"tag": suggestions[0], "csrfmiddlewaretoken": token})
    client.post(url("asset_accept_tag", bravo.pk), {"tag": "x" * 65, "csrfmiddlewaretoken": token})
    bravo.refresh_from_db()
    assert bravo.tags == [suggestions[0]]


# Embedding status --------------------------------------------------------------------


def test_status_panel_counts_states_and_models_and_lists_failures(users: dict[str, User]) -> None:
    assets = make_catalogue()
    make_asset("still pending", dict(colour="red", shape="star"), 12, [])
    broken = make_asset("broken", dict(colour="red", shape="circle"), 13, [])
    Asset.objects.filter(pk=broken.pk).update(image="assetsearch/missing/broken.png")
    result = embed_assets([broken.pk])
    assert result.failed, result
    response = client_for(users["editor"]).get(url("asset_status"))
    assert response.status_code == 200
    states = {value: count for value, _, count in response.context["states"]}
    assert states == {"pending": 1, "ready": len(assets), "failed": 1}
    assert [(row["model_key"], row["vectors"]) for row in response.context["models"]] == [(response.context["encoder_key"], len(assets))]
    html = response.content.decode()
    assert "The image file is missing from storage." in html and "broken" in html
    assert response.context["requeue_count"] == 2 and 'id="requeue-form"' in html
    assert response.context["broker_reachable"] is True


@contextmanager
def broker_down() -> Iterator[None]:
    """Point the producer at a port nobody listens on, as if Redis had died."""
    from project.celery import app

    from .conftest import use_broker

    original = app.conf.broker_url
    use_broker(app, "redis://127.0.0.1:9/0")
    try:
        yield
    finally:
        use_broker(app, original)


def test_requeue_with_the_broker_down_warns_and_keeps_the_assets_pending(users: dict[str, User]) -> None:
    asset = make_asset("waiting", dict(colour="red", shape="circle"), 1, [])
    Asset.objects.filter(pk=asset.pk).set_status(EmbeddingStatus.FAILED, "earlier failure")
    with broker_down():
        response = client_for(users["editor"]).post(url("asset_status"), follow=True)
        assert response.context["broker_reachable"] is False
    assert response.redirect_chain == [(url("asset_status"), 302)]
    assert any(level == "warning" and "unreachable" in text for level, text in messages_of(response))
    asset.refresh_from_db()
    assert asset.embedding_status == EmbeddingStatus.PENDING  # the sweep sends it later


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_requeue_with_the_broker_up_has_the_worker_embed_pending_and_failed_assets() -> None:
    editor = staff("editor2", "view_asset", "change_asset")
    pending = make_asset("pending", dict(colour="green", shape="star"), 1, [])
    failed = make_asset("failed", dict(colour="blue", shape="square"), 2, [])
    Asset.objects.filter(pk=failed.pk).set_status(EmbeddingStatus.FAILED, "worker crashed")
    response = client_for(editor).post(url("asset_status"), follow=True)
    assert ("success", "Queued 2 asset(s) for embedding (1 of them had failed).") in messages_of(response)
    for asset in (pending, failed):
        wait_for(lambda: Asset.objects.get(pk=asset.pk).embedding_status == EmbeddingStatus.READY, timeout=90, message=asset.title)
    assert Asset.objects.get(pk=failed.pk).embedding_error == ""
    nothing = client_for(editor).post(url("asset_status"), follow=True)
    assert ("info", "No asset is pending or failed; nothing to send.") in messages_of(nothing)


def test_reembed_action_marks_selected_pending_and_queues_them(users: dict[str, User]) -> None:
    assets = make_catalogue()
    selected = [assets["alpha"].pk, assets["bravo"].pk]
    response = post_action(client_for(users["editor"]), url("asset_changelist"), "reembed", selected)
    assert ("success", "Queued 2 assets for embedding.") in messages_of(response)
    assert set(Asset.objects.pending().values_list("pk", flat=True)) == set(selected)
    # Viewers do not have it.
    response = post_action(client_for(users["viewer"]), url("asset_changelist"), "reembed", [assets["echo"].pk])
    assert Asset.objects.get(pk=assets["echo"].pk).embedding_status == EmbeddingStatus.READY


# Moderation ----------------------------------------------------------------------------


def test_run_moderation_action_flags_selected_assets(users: dict[str, User]) -> None:
    assets = make_catalogue()
    concept = ModerationConcept.objects.create(enabled=False, **RED_SQUARES)
    client = client_for(users["moderator"])
    # Moderators without change permission still get the action; nothing to score without an enabled concept.
    response = post_action(client, url("asset_changelist"), "run_moderation", [assets["foxtrot"].pk])
    assert any("No moderation concept is enabled" in text for _, text in messages_of(response))
    ModerationConcept.objects.filter(pk=concept.pk).update(enabled=True)
    selected = [assets["foxtrot"].pk, assets["alpha"].pk, assets["Quarterly report cover"].pk]
    response = post_action(client, url("asset_changelist"), "run_moderation", selected)
    assert ("success", "Scored 3 asset(s) against 1 enabled concept(s): 1 flag(s) made or refreshed.") in messages_of(response)
    assert list(ModerationFlag.objects.values_list("entry__asset__title", flat=True)) == ["foxtrot"]
    # Editors without the moderation permission do not have the action.
    editor = client_for(users["editor"])
    assert "run_moderation" not in editor.get(url("asset_changelist")).content.decode()
    response = post_action(editor, url("asset_changelist"), "run_moderation", selected)
    assert response.status_code == 200 and ModerationFlag.objects.count() == 1


def test_flag_queue_bulk_confirm_and_dismiss_record_the_reviewer(users: dict[str, User]) -> None:
    assets = make_catalogue()
    concept = ModerationConcept.objects.create(enabled=False, **{**RED_SQUARES, "threshold": 0})
    flag_assets(concept)
    flags = {f.asset.title: f for f in ModerationFlag.objects.select_related("entry")}
    assert set(flags) == set(assets)
    client = client_for(users["moderator"])
    queue = client.get(url("moderationflag_changelist"), {"status__exact": "open"})
    assert queue.status_code == 200
    rows = list(queue.context["cl"].result_list)
    assert rows[0].asset.title == "foxtrot"  # highest score first
    assert reverse("assetsearch:asset-thumbnail", args=[assets["foxtrot"].pk]) in queue.content.decode()

    response = post_action(client, url("moderationflag_changelist"), "confirm", [flags["foxtrot"].pk])
    assert ("success", "Confirmed 1 flag(s).") in messages_of(response)
    response = post_action(client, url("moderationflag_changelist"), "dismiss", [flags["alpha"].pk, flags["echo"].pk])
    assert ("success", "Dismissed 2 flag(s).") in messages_of(response)
    reviewed = {f.asset.title: f for f in ModerationFlag.objects.select_related("entry").exclude(status=FlagStatus.OPEN)}
    assert {t: f.status for t, f in reviewed.items()} == {"foxtrot": "confirmed", "alpha": "dismissed", "echo": "dismissed"}
    assert all(f.reviewer == users["moderator"] and f.reviewed_at for f in reviewed.values())
    open_rows = client.get(url("moderationflag_changelist"), {"status__exact": "open"}).context["cl"].result_list
    assert len(open_rows) == len(assets) - 3

    # One flag at a time from its own page: the reviewer is recorded there too.
    golf = flags["golf"]
    page = client.get(url("moderationflag_change", golf.pk))
    assert page.status_code == 200 and reverse("assetsearch:asset-thumbnail", args=[assets["golf"].pk]) in page.content.decode()
    response = client.post(url("moderationflag_change", golf.pk), {"status": "dismissed"})
    assert response.status_code == 302
    golf.refresh_from_db()
    assert golf.status == FlagStatus.DISMISSED and golf.reviewer == users["moderator"] and golf.reviewed_at
    assert client.get(url("moderationflag_add")).status_code == 403  # flags come from scoring only

    # The status filter and the concept list: open counts and re-score progress.
    concepts = client.get(url("moderationconcept_changelist"))
    assert concepts.status_code == 200
    row = next(c for c in concepts.context["cl"].result_list if c.pk == concept.pk)
    assert row.open_flag_count == len(assets) - 4
    # Editors cannot reach the queue nor act on it.
    editor = client_for(users["editor"])
    assert editor.get(url("moderationflag_changelist")).status_code == 403
    assert post_action(editor, url("moderationflag_changelist"), "confirm", [flags["delta"].pk]).status_code == 403
    assert ModerationFlag.objects.get(pk=flags["delta"].pk).status == FlagStatus.OPEN


def test_concept_admin_shows_rescore_progress_and_calibration(users: dict[str, User]) -> None:
    from assetsearch.moderation import rescore_concept

    assets = make_catalogue()
    concept = ModerationConcept.objects.create(enabled=False, **RED_SQUARES)
    rescore_concept(concept.pk)
    client = client_for(users["admin"])
    html = client.get(url("moderationconcept_changelist")).content.decode()
    assert f'<progress max="{len(assets)}" value="{len(assets)}"></progress>' in html
    change = client.get(url("moderationconcept_change", concept.pk)).content.decode()
    assert "No reviewed flags yet" in change and "Its counter-prompts." in change
    # A concept without counter-prompts shows the model's look-alikes it is weighed against instead.
    bare = ModerationConcept.objects.create(enabled=False, name="red triangles", prompts=["a red triangle"])
    weighed = re.search(r"No counter-prompts, so: ([^<]+)<", client.get(url("moderationconcept_change", bare.pk)).content.decode())
    assert weighed and {"a red square", "a blue triangle"} <= set(weighed.group(1).split(", ")), weighed
    assert "a red triangle" not in weighed.group(1).split(", ")
    ModerationFlag.objects.filter(concept=concept).review(FlagStatus.CONFIRMED, users["admin"])
    change = client.get(url("moderationconcept_change", concept.pk)).content.decode()
    assert "Lowest threshold with at least 90% precision" in change
    # Viewing concepts needs the moderation permission; editing them the model permission too.
    moderator = client_for(users["moderator"])
    assert moderator.get(url("moderationconcept_changelist")).status_code == 200
    response = moderator.post(url("moderationconcept_change", concept.pk), {"name": "renamed"})
    assert response.status_code == 403
    assert ModerationConcept.objects.get(pk=concept.pk).name == RED_SQUARES["name"]


def test_moderation_query_ranks_assets_by_concept_score(users: dict[str, User]) -> None:
    make_catalogue()
    client = client_for(users["moderator"])
    response = client.get(url("moderationflag_query"), {"text": "a green star", "counter_prompts": "a green triangle, a blue star", "limit": "4"})
    assert response.status_code == 200
    hits = response.context["hits"]
    assert [h.asset.title for h in hits][0] == "charlie" and len(hits) == 4
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert 0 <= hits[-1].score <= hits[0].score <= 1
    assert url("asset_change", hits[0].asset.pk) in response.content.decode()
    assert client.get(url("moderationflag_query"), {"text": " "}).context["hits"] is None
    assert url("moderationflag_query") in client.get(url("moderationflag_changelist")).content.decode()


def test_visual_search_rerank_checkbox_reorders_and_reports(users: dict[str, User]) -> None:
    make_catalogue()
    client = client_for(users["editor"])
    response = client.get(url("asset_visual_search"), {"text": "a red circle", "rerank": "on", "limit": "5"})
    assert response.status_code == 200, response.context["form"].errors
    outcome = response.context["results"].rerank
    assert outcome.applied and outcome.reranker == "clip"
    assert set(hit_titles(response)[:2]) == RED_CIRCLES
    assert "Reranked by clip" in response.content.decode()
