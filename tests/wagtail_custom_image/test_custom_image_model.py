"""A site's own image model (``WAGTAILIMAGES_IMAGE_MODEL``, a subclass of Wagtail's ``AbstractImage``) is indexed and searched like Wagtail's."""

from __future__ import annotations

import pytest
from wagtail.images import get_image_model

from assetsearch.contrib.wagtail.indexes import WagtailImageIndex
from assetsearch.registry import get_index
from assetsearch.search import Query, search
from tests.wagtail.helpers import chooser_ids, entry_of, library_ids, logged_in, site, visual_search_ids  # noqa: F401  (site: a fixture)

from .models import CreditedImage, CreditedRendition

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_a_custom_image_model_is_indexed_in_place_and_searched_by_meaning_in_wagtails_admin(site):
    assert get_image_model() is CreditedImage and type(get_index(CreditedImage)) is WagtailImageIndex
    images = site["images"]
    red_circle, green_star = images["Marketing", "red", "circle"], images["Marketing", "green", "star"]
    assert isinstance(red_circle, CreditedImage) and entry_of(red_circle).source_key == red_circle.file.name
    CreditedImage.objects.filter(pk=green_star.pk).update(credit="Studio Nord")

    editor = logged_in(site["editor"])
    marketing_ids = {image.pk for (place, *_), image in images.items() if place == "Marketing"}
    # Wagtail's library and chooser, the visual search: by meaning, the editor's collection only.
    assert library_ids(editor, q="a red circle")[0] == red_circle.pk
    assert chooser_ids(editor, q="a green star")[0] == green_star.pk
    found = visual_search_ids(editor, text="a green star", limit=20)
    assert found[0] == green_star.pk and set(found) <= marketing_ids
    # The core's search returns the site's own objects, extra field and all; thumbnails are its renditions.
    hit = search(Query(text="a green star", models=[CreditedImage], user=site["editor"])).hits[0]
    assert (hit.object.pk, hit.object.credit) == (green_star.pk, "Studio Nord")
    assert get_index(CreditedImage).thumbnail_url(hit.object, 128).startswith("/media/images/")
    assert CreditedRendition.objects.filter(image=green_star).exists()


def test_no_migration_is_pending_for_the_custom_image_model():
    from django.core.management import call_command

    call_command("makemigrations", "wagtail_custom_image", check=True, dry_run=True, verbosity=0)
