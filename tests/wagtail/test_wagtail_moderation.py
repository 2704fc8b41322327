"""Moderation concepts, ad-hoc moderation queries and the embedding status page in the Wagtail admin,
for Wagtail users who are not Django staff; and their absence for users without the permission."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from assetsearch.constants import EmbeddingStatus
from assetsearch.models import IndexEntry, ModerationConcept, ModerationFlag
from tests.utils import wait_for

from .helpers import Image, collection_editor, entry_of, ids_in, logged_in, site, wait_until_ready  # noqa: F401  (site: a fixture)

pytestmark = [pytest.mark.django_db(transaction=True)]

CONCEPTS = reverse("assetsearch_concepts:index")
QUERY = reverse("assetsearch_wagtail:moderation_query")
STATUS = reverse("assetsearch_wagtail:embedding_status")
CONCEPT_PERMISSIONS = ("moderate_asset", "add_moderationconcept", "change_moderationconcept", "delete_moderationconcept")


def menu(client) -> str:
    """The Wagtail admin's home page, whose sidebar lists the menu items the user may see."""
    response = client.get(reverse("wagtailadmin_home"))
    assert response.status_code == 200
    return response.content.decode()


def refused(response) -> bool:
    """Wagtail answers a permission it does not grant with a 403 or a redirect to its home page."""
    return response.status_code == 403 or (response.status_code == 302 and "/concepts/" not in response.url)


def scores_in(html: str) -> list[float]:
    """The probabilities of the moderation query's rows, in page order."""
    return [float(score) for score in re.findall(r'<tr data-image-id="\d+" data-score="([0-9.]+)"', html)]


def concept_form(**fields: str) -> dict[str, str]:
    data = {"name": "red things", "prompts": "a red circle", "counter_prompts": "", "threshold": "0.5", "action": "flag"}
    return {**data, **fields}


def test_a_wagtail_moderator_lists_adds_edits_and_deletes_concepts_with_the_cores_validation(site):
    existing = ModerationConcept.objects.create(name="drawn weapons", prompts=["a drawn weapon"], threshold=0.7, action="hide")
    concepts_before = ModerationConcept.objects.count()
    moderator_user = collection_editor("concept-moderator", site["marketing"], extra=CONCEPT_PERMISSIONS)
    assert not moderator_user.is_staff
    moderator = logged_in(moderator_user)
    home = menu(moderator)
    assert "Image moderation" in home and CONCEPTS in home and QUERY in home

    listing = moderator.get(CONCEPTS)
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "drawn weapons" in html and reverse("assetsearch_concepts:add") in html and "Moderation concepts" in html

    # Adding: the core's form, whose validation is the model's (the Django admin's and the API's).
    response = moderator.post(reverse("assetsearch_concepts:add"), concept_form(prompts="a red circle, a red disc"))
    assert response.status_code == 302, response.content.decode()[-2000:]
    concept = ModerationConcept.objects.get(name="red things")
    assert (concept.prompts, concept.threshold, concept.enabled) == (["a red circle", "a red disc"], 0.5, False)
    for bad, message in (({"threshold": "1.5"}, "Constraint"), ({"name": "drawn weapons"}, "already exists"), ({"prompts": ""}, "This field is required")):
        response = moderator.post(reverse("assetsearch_concepts:add"), concept_form(**bad))
        assert response.status_code == 200 and message in response.content.decode(), bad
    assert ModerationConcept.objects.count() == concepts_before + 1

    # Editing an enabled concept re-scores the catalogue (the core's post_save, the real worker): flags follow.
    response = moderator.post(reverse("assetsearch_concepts:edit", args=[concept.pk]), concept_form(threshold="0.0", enabled="on"))
    assert response.status_code == 302
    wait_for(lambda: ModerationFlag.objects.filter(concept=concept).count() == len(site["images"]), message="the re-score")
    listing = moderator.get(CONCEPTS).content.decode()
    assert f"{len(site['images'])} / {len(site['images'])}" in listing  # the re-score's progress column

    response = moderator.post(reverse("assetsearch_concepts:delete", args=[concept.pk]))
    assert response.status_code == 302 and not ModerationConcept.objects.filter(pk=concept.pk).exists()

    # moderate_asset alone: concepts are listed and inspected, not changed (as in the Django admin and the API).
    reader = logged_in(collection_editor("concept-reader", site["marketing"], extra=("moderate_asset",)))
    listing = reader.get(CONCEPTS)
    assert listing.status_code == 200 and "drawn weapons" in listing.content.decode()
    assert reverse("assetsearch_concepts:add") not in listing.content.decode()
    assert reader.get(reverse("assetsearch_concepts:inspect", args=[existing.pk])).status_code == 200
    assert refused(reader.post(reverse("assetsearch_concepts:add"), concept_form(name="sneaky")))
    assert refused(reader.post(reverse("assetsearch_concepts:edit", args=[existing.pk]), concept_form(name="drawn weapons", threshold="0.1")))
    assert not ModerationConcept.objects.filter(name="sneaky").exists() and ModerationConcept.objects.get(pk=existing.pk).threshold == 0.7

    # A Wagtail editor without moderate_asset: no menu item, no page.
    editor = logged_in(site["editor"])
    home = menu(editor)
    assert "Image moderation" not in home and CONCEPTS not in home
    assert refused(editor.get(CONCEPTS)) and refused(editor.get(reverse("assetsearch_concepts:add")))


def test_an_ad_hoc_moderation_query_ranks_the_moderators_images_and_saves_as_a_hiding_concept(site):
    images = site["images"]
    marketing_ids = {image.pk for (place, *_), image in images.items() if place == "Marketing"}
    moderator = logged_in(collection_editor("query-moderator", site["marketing"], extra=CONCEPT_PERMISSIONS))

    response = moderator.get(QUERY, {"text": "a yellow triangle", "counter_prompts": "a yellow square, a red triangle"})
    assert response.status_code == 200
    html = response.content.decode()
    ranked = ids_in(html, r'<tr data-image-id="(\d+)"')
    # The moderator's collection only, the yellow triangle first, scores from high to low.
    assert ranked[0] == images["Marketing", "yellow", "triangle"].pk and set(ranked) == marketing_ids
    scores = scores_in(html)
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.5
    assert "Moderation query" in html and 'href="/admin/images/"' in html  # Wagtail's frame and breadcrumbs
    assert ModerationFlag.objects.count() == 0  # nothing is flagged by a query

    # "Save as a concept": the concept form, filled in with the query's phrases.
    save = moderator.get(QUERY, {"text": "a yellow triangle"})
    add_url = save.context["save_url"]
    assert add_url.startswith(reverse("assetsearch_concepts:add"))
    form_page = moderator.get(add_url).content.decode()
    assert 'value="a yellow triangle"' in form_page

    # An empty query is the form's error, not a traceback.
    assert "This field is required" in moderator.get(QUERY, {"text": ""}).content.decode()

    # Editors without moderate_asset: no page, no menu item.
    editor = logged_in(site["editor"])
    assert refused(editor.get(QUERY, {"text": "a yellow triangle"})) and QUERY not in menu(editor)


def test_the_embedding_status_page_counts_the_users_images_lists_failures_and_re_enqueues_them(site):
    images = site["images"]
    failed = images["Marketing", "green", "star"]
    IndexEntry.objects.for_objects(Image, [failed.pk]).search_alias().set_status(EmbeddingStatus.FAILED, "cannot identify image file")
    press_failed = images["Press", "purple", "heart"]
    IndexEntry.objects.for_objects(Image, [press_failed.pk]).search_alias().set_status(EmbeddingStatus.FAILED, "a Press failure")

    editor_user = site["editor"]
    editor = logged_in(editor_user)
    assert not editor_user.is_staff and STATUS in menu(editor)
    response = editor.get(STATUS)
    assert response.status_code == 200
    context = response.context
    states = {value: count for value, _label, count in context["states"]}
    # The editor's collection only (four Marketing images): three ready, one failed.
    assert (states[EmbeddingStatus.READY], states[EmbeddingStatus.FAILED], context["total"], context["requeue_count"]) == (3, 1, 4, 1)
    html = response.content.decode()
    assert 'id="state-ready">3<' in html and "cannot identify image file" in html and "a Press failure" not in html
    assert ids_in(html, r'<tr data-object-id="(\d+)"') == [failed.pk]

    response = editor.post(STATUS)
    assert response.status_code == 302
    wait_until_ready(failed)
    assert entry_of(press_failed).status == EmbeddingStatus.FAILED  # not the editor's to send
    assert "No failures." in editor.get(STATUS).content.decode()

    # Someone with no image permission: no menu item, no page.
    outsider = logged_in(collection_editor("status-outsider"))
    assert STATUS not in menu(outsider) and refused(outsider.get(STATUS)) and refused(outsider.post(STATUS))
