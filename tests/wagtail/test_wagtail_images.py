"""Wagtail's own images on a real Wagtail site, indexed in place by the real worker, searched in Wagtail's admin."""

from __future__ import annotations

import pytest
from django.db.models.signals import post_delete
from django.urls import reverse
from wagtail.images.signal_handlers import post_delete_file_cleanup
from wagtail.search.backends import get_search_backend

from assetsearch.constants import EmbeddingStatus
from assetsearch.models import IndexEntry, ModerationConcept, ModerationFlag
from assetsearch.moderation import rescore_concept
from assetsearch.registry import get_index
from assetsearch.search import Filters, Query, search

from .helpers import (  # noqa: F401  (site: a fixture)
    Image, api_ids, chooser_ids, collection_editor, entry_of, ids_in, library_ids, logged_in, site, visual_search_ids,
    wait_until_ready,
)

pytestmark = [pytest.mark.django_db(transaction=True)]

def test_images_uploaded_through_wagtails_multiple_upload_view_are_embedded_by_the_worker(site):
    image = site["images"]["Marketing", "red", "circle"]
    entry = entry_of(image)
    assert (entry.status, entry.attempts, entry.source_key) == (EmbeddingStatus.READY, 1, image.file.name)
    assert len(entry.content_hash) == 64 and entry.vector is not None
    index = get_index(Image)
    assert index.owns_files is False and index.thumbnail_url(image, 128).startswith("/media/images/")
    # Saving the image's title again leaves the entry as it is: nothing new to embed.
    image.title = "IMG_renamed"
    image.save()
    assert (entry_of(image).status, entry_of(image).embedded_at) == (EmbeddingStatus.READY, entry.embedded_at)


def test_the_image_library_lists_the_red_circle_first_where_wagtails_own_search_finds_nothing(site):
    red_circle = site["images"]["Marketing", "red", "circle"]
    # Wagtail's stock search (its database backend) matches words, and no title says "red circle".
    assert list(get_search_backend().search("a red circle", Image)) == []

    client = logged_in(site["editor"])
    listed = library_ids(client, q="a red circle")
    assert listed[0] == red_circle.pk, listed
    assert library_ids(client, q="a green star")[0] == site["images"]["Marketing", "green", "star"].pk
    # The search form always sends its "Sort by" (default: newest); a chosen ordering wins over relevance.
    assert library_ids(client, q="a red circle", ordering="-created_at")[0] == red_circle.pk
    assert library_ids(client, q="a red circle", ordering="title")[0] == min(
        site["images"][key].pk for key in site["images"] if key[0] == "Marketing"
    )
    # An exact title still comes first: Wagtail's keyword match is blended in.
    blue_square = site["images"]["Marketing", "blue", "square"]
    assert library_ids(client, q=blue_square.title)[0] == blue_square.pk
    # The full page, not only the results fragment, is Wagtail's own listing.
    page = client.get(reverse("wagtailimages:index"), {"q": "a red circle"})
    assert page.status_code == 200 and f'href="/admin/images/{red_circle.pk}/' in page.content.decode()


def test_the_image_edit_page_links_to_similar_images_and_the_menu_shows_visual_search_to_editors(site):
    red_circle = site["images"]["Marketing", "red", "circle"]
    editor = logged_in(site["editor"])
    assert not site["editor"].is_staff
    edit_page = editor.get(reverse("wagtailimages:edit", args=[red_circle.pk])).content.decode()
    similar_url = reverse("assetsearch_wagtail:visual_search") + f"?asset={red_circle.pk}"
    assert similar_url in edit_page and "Find similar" in edit_page
    similar = visual_search_ids(editor, asset=red_circle.pk)
    assert similar and red_circle.pk not in similar
    home = editor.get(reverse("wagtailadmin_home")).content.decode()
    assert "Visual search" in home and reverse("assetsearch_wagtail:visual_search") in home
    # Someone with no image permission gets neither the menu item nor the page.
    outsider = collection_editor("outsider")
    assert "Visual search" not in logged_in(outsider).get(reverse("wagtailadmin_home")).content.decode()
    assert logged_in(outsider).get(reverse("assetsearch_wagtail:visual_search")).status_code in (302, 403)


def test_the_chooser_returns_semantic_results(site):
    client = logged_in(site["editor"])
    assert chooser_ids(client, q="a yellow triangle")[0] == site["images"]["Marketing", "yellow", "triangle"].pk
    # The chooser modal itself (opened from any image field) ranks the same way.
    modal = client.get(reverse("wagtailimages_chooser:choose"), {"q": "a green star"})
    assert modal.status_code == 200
    html = modal.json()["html"]
    assert f"/admin/images/chooser/chosen/{site['images']['Marketing', 'green', 'star'].pk}/" in html


def test_a_user_limited_to_one_collection_never_sees_another_collections_images(site):
    press_ids = {image.pk for (place, *_), image in site["images"].items() if place == "Press"}
    marketing_ids = {image.pk for (place, *_), image in site["images"].items() if place == "Marketing"}
    editor = logged_in(site["editor"])
    press_red_circle = site["images"]["Press", "red", "circle"]

    seen = {
        "library": library_ids(editor, q="a red circle"),
        "library unfiltered": library_ids(editor),
        "chooser": chooser_ids(editor, q="a red circle"),
        "visual search": visual_search_ids(editor, text="a red circle", limit=20),
        "similar": visual_search_ids(editor, asset=site["images"]["Marketing", "red", "circle"].pk),
        "API": api_ids(editor, q="a red circle", limit=20),
    }
    for where, ids in seen.items():
        assert ids and set(ids) <= marketing_ids, (where, ids)
    # The Press red circle is the best match for a Press editor and for the admin.
    admin = logged_in(site["admin"])
    assert press_red_circle.pk in library_ids(admin, q="a red circle")[:2]
    assert press_ids <= set(api_ids(admin, q="a shape", limit=20))
    # An image of another collection cannot be the "similar to" query either.
    response = editor.get(reverse("assetsearch_wagtail:visual_search"), {"asset": press_red_circle.pk})
    assert f"There is no image with id {press_red_circle.pk}" in response.content.decode() and 'data-image-id="' not in response.content.decode()
    # And the core's search, given the user, agrees.
    hits = search(Query(text="a red circle", models=[Image], user=site["editor"], limit=20)).hits
    assert {hit.object.pk for hit in hits} == marketing_ids


def test_a_hide_concept_hides_an_image_from_a_wagtail_editor_everywhere(site):
    hidden = site["images"]["Marketing", "yellow", "triangle"]
    concept = ModerationConcept.objects.create(
        name="yellow triangles", prompts=["a yellow triangle"], threshold=0.5, action="hide", enabled=False,
        counter_prompts=["a yellow square", "a yellow circle", "a red triangle", "a blue triangle", "a green triangle"],
    )
    ModerationConcept.objects.filter(pk=concept.pk).update(enabled=True)
    rescore_concept(concept.pk)
    assert hidden in {flag.content_object for flag in ModerationFlag.objects.all()}

    editor = logged_in(site["editor"])
    for where, ids in {
        "library": library_ids(editor, q="a yellow triangle"),
        "library unfiltered": library_ids(editor),
        "chooser": chooser_ids(editor, q="a yellow triangle"),
        "chooser unfiltered": chooser_ids(editor),
        "visual search": visual_search_ids(editor, text="a yellow triangle"),
        "API": api_ids(editor, q="a yellow triangle"),
    }.items():
        assert ids and hidden.pk not in ids, where
    # A moderator (here the superuser) still finds it first.
    admin = logged_in(site["admin"])
    assert library_ids(admin, q="a yellow triangle")[0] == hidden.pk
    assert chooser_ids(admin, q="a yellow triangle")[0] == hidden.pk


def test_collection_tag_and_option_filters_apply_to_wagtail_images_and_existing_images_are_backfilled(site):
    image = site["images"]["Marketing", "blue", "square"]
    image.tags.add("brand")
    marketing_ids = {i.pk for (place, *_), i in site["images"].items() if place == "Marketing"}
    by_collection = search(Query(text="a red circle", models=[Image], filters=Filters(fields={"collection": site["marketing"].pk}), limit=20))
    assert {hit.object.pk for hit in by_collection.hits} == marketing_ids
    assert [hit.object for hit in search(Query(text="a shape", models=[Image], filters=Filters(tags=["brand"]))).hits] == [image]
    # The visual search page's filters and options: collection, tags, hybrid, rerank.
    editor = logged_in(site["admin"])
    assert visual_search_ids(editor, text="a red circle", collection=site["press"].pk)[0] == site["images"]["Press", "red", "circle"].pk
    assert visual_search_ids(editor, text="a shape", tags="brand") == [image.pk]
    reranked = visual_search_ids(editor, text="a green star", hybrid="on", rerank="on")
    assert reranked[0] == site["images"]["Marketing", "green", "star"].pk
    # Existing images are backfilled by the core's command.
    from django.core.management import call_command

    IndexEntry.objects.for_objects(Image, [image.pk]).delete()
    call_command("assetsearch_reembed", model=["wagtailimages.image"], missing=True, verbosity=0)
    wait_until_ready(image)
    # Tags are keywords of the hybrid search too.
    assert search(Query(text="brand", hybrid=True, models=[Image], limit=3)).hits[0].object == image


def test_deleting_a_wagtail_image_removes_its_entry_and_leaves_the_file_to_wagtail(site):
    image = site["images"]["Press", "purple", "heart"]
    storage, name = image.file.storage, image.file.name
    # A site that keeps originals turns Wagtail's own cleanup off; assetsearch must not delete the file either.
    post_delete.disconnect(post_delete_file_cleanup, sender=Image)
    try:
        response = logged_in(site["admin"]).post(reverse("wagtailimages:delete", args=[image.pk]))
        assert response.status_code == 302
    finally:
        post_delete.connect(post_delete_file_cleanup, sender=Image)
    assert not Image.objects.filter(pk=image.pk).exists()
    assert not IndexEntry.objects.for_objects(Image, [image.pk]).exists()
    assert storage.exists(name)
    assert image.pk not in api_ids(logged_in(site["admin"]), q="a purple heart")


def test_no_migration_is_pending_for_the_example_wagtail_site():
    from django.core.management import call_command

    call_command("makemigrations", "wagtail_site", "assetsearch_wagtail", check=True, dry_run=True, verbosity=0)


def test_moderators_review_flags_on_wagtail_images_in_the_wagtail_admin_and_editors_cannot(site):
    from django.contrib.auth.models import Permission

    concept = ModerationConcept.objects.create(name="red things", prompts=["a red circle"], threshold=0.0, action="flag", enabled=False)
    ModerationConcept.objects.filter(pk=concept.pk).update(enabled=True)
    rescore_concept(concept.pk)
    queue = reverse("assetsearch_wagtail:moderation_queue")
    editor = logged_in(site["editor"])
    assert editor.get(queue).status_code in (302, 403)
    assert "Image moderation" not in editor.get(reverse("wagtailadmin_home")).content.decode()

    # The site grants moderation to a Wagtail group of its choosing; Wagtail's group editor offers the permission.
    moderator_user = collection_editor("marketing-moderator", site["marketing"], extra=("moderate_asset",))
    group_edit = logged_in(site["admin"]).get(reverse("wagtailusers_groups:edit", args=[moderator_user.groups.get().pk])).content.decode()
    assert f'value="{Permission.objects.get(codename="moderate_asset").pk}"' in group_edit
    moderator = logged_in(moderator_user)
    assert "Image moderation" in moderator.get(reverse("wagtailadmin_home")).content.decode()
    page = moderator.get(queue).content.decode()
    listed = ids_in(page, r'data-image-id="(\d+)"')
    marketing_ids = {i.pk for (place, *_), i in site["images"].items() if place == "Marketing"}
    # Open flags, highest score first, of the moderator's collections only.
    assert listed and set(listed) <= marketing_ids and listed[0] == site["images"]["Marketing", "red", "circle"].pk
    flag = ModerationFlag.objects.get(entry__object_id=listed[0], concept=concept)
    press_flag = ModerationFlag.objects.get(entry__object_id=site["images"]["Press", "red", "circle"].pk, concept=concept)
    response = moderator.post(queue, {"action": "dismiss", "flag": [flag.pk, press_flag.pk]})
    assert response.status_code == 302
    flag.refresh_from_db(), press_flag.refresh_from_db()
    assert (flag.status, flag.reviewer) == ("dismissed", moderator_user) and press_flag.status == "open"
    assert listed[0] not in ids_in(moderator.get(queue).content.decode(), r'data-image-id="(\d+)"')
    assert listed[0] in ids_in(moderator.get(queue, {"status": "dismissed"}).content.decode(), r'data-image-id="(\d+)"')


def test_the_system_checks_find_wagtails_image_views_replaced():
    from assetsearch.contrib.wagtail.checks import check_image_views_replaced, check_installed_after_wagtail_images

    assert check_image_views_replaced() == [] and check_installed_after_wagtail_images() == []
