"""End to end in headless Chromium, in the Wagtail admin, as a Wagtail editor who is not Django staff.

The browser and the screenshot helpers are those of ``tests/test_browser.py``
(Debian's Chromium; skipped without it). Screenshots land in
``artifacts/screenshots/wagtail-*.png`` and, with ``ASSETSEARCH_UPDATE_DOCS=1``,
in ``docs/screenshots/`` for the README.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from wagtail.models import GroupPagePermission, Locale, Page

from assetsearch.models import ModerationConcept
from examples.wagtail_site.models import ArticlePage
from tests.test_browser import ROOT, broken_images, browser, logged_in_page, screenshot, wait_for_images  # noqa: F401  (browser: a fixture)

from .helpers import PASSWORD, collection_editor, ids_in, site  # noqa: F401  (site: a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DOCS = ROOT / "docs" / "screenshots"


def keep(page: Any, name: str) -> Path:
    path = screenshot(page, f"wagtail-{name}")
    if os.environ.get("ASSETSEARCH_UPDATE_DOCS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS / path.name)
    return path


@pytest.fixture
def article(site: dict) -> ArticlePage:
    """A page with an image field, which the collection editor may edit (the page tree is flushed between tests)."""
    locale = Locale.objects.get_or_create(language_code="en")[0]
    root = Page.get_first_root_node() or Page.add_root(instance=Page(title="Root", slug="root", locale=locale))
    page = root.add_child(instance=ArticlePage(title="Spring campaign", slug="spring", locale=locale))
    group = site["editor"].groups.get()
    for codename in ("add_page", "change_page", "publish_page"):
        GroupPagePermission.objects.create(group=group, page=root, permission=Permission.objects.get(content_type__app_label="wagtailcore", codename=codename))
    return page


def wagtail_login(browser: Any, live_server: Any, user: Any) -> Any:
    return logged_in_page(
        browser, live_server, user, password=PASSWORD,
        login="wagtailadmin_login", submit="button[type=submit]", home="wagtailadmin_home",
    )


def submit_and_rank(page: Any, form: str, text: str, rows: str) -> list[int]:
    """Type ``text`` in ``form``'s text field, submit it, and return the image ids of the result ``rows``, in order."""
    page.fill(f"{form} #id_text", text)
    page.click(f"{form} button[type=submit]")
    page.wait_for_selector(rows)
    return page.locator(rows).evaluate_all("rows => rows.map(r => Number(r.dataset.imageId))")


def test_a_wagtail_editor_searches_the_library_chooses_from_the_chooser_and_runs_a_visual_search(
    browser: Any, live_server: Any, site: dict, article: ArticlePage,
) -> None:
    images = site["images"]
    editor = site["editor"]
    editor.set_password(PASSWORD)
    editor.save()
    assert not editor.is_staff
    page = wagtail_login(browser, live_server, editor)

    # The image library, searched by meaning from its own search box.
    page.goto(live_server.url + reverse("wagtailimages:index"))
    unsearched = page.inner_html("#listing-results")
    # Wagtail's search box fetches the results fragment as one types, then swaps it in.
    with page.expect_response(lambda response: "/admin/images/results/" in response.url and "q=a+red+circle" in response.url):
        page.fill("#id_q", "a red circle")
    page.wait_for_function("before => document.querySelector('#listing-results').innerHTML !== before", arg=unsearched)
    listed = ids_in(page.inner_html("#listing-results"), r'href="/admin/images/(\d+)/')
    assert listed[0] == images["Marketing", "red", "circle"].pk, listed
    assert images["Press", "red", "circle"].pk not in listed
    wait_for_images(page, "#listing-results")
    assert broken_images(page, "#listing-results") == []
    keep(page, "image-library")

    # The chooser, opened from the page's image field: search, pick the green star.
    page.goto(live_server.url + reverse("wagtailadmin_pages:edit", args=[article.pk]))
    page.locator("[data-chooser-action-choose]").first.click()
    modal = page.locator(".modal-content")
    modal.locator("#id_q").fill("a green star")
    green_star = images["Marketing", "green", "star"].pk
    first_choice = modal.locator(f"a[href*='/admin/images/chooser/chosen/']").first
    page.wait_for_function(
        "pk => { const a = document.querySelector(\".modal-content a[href*='/admin/images/chooser/chosen/']\"); return a && a.href.includes('/chosen/' + pk + '/'); }",
        arg=green_star,
    )
    keep(page, "image-chooser")
    first_choice.click()
    page.wait_for_function(
        "pk => document.querySelector('input[name=hero_image]').value === String(pk)", arg=green_star
    )

    # The "Visual search" menu item, as an editor meets it.
    page.goto(live_server.url + reverse("wagtailadmin_home"))
    page.get_by_role("link", name="Visual search").click()
    page.wait_for_url("**" + reverse("assetsearch_wagtail:visual_search"))
    found = submit_and_rank(page, "#assetsearch-visual-search", "a yellow triangle", "#assetsearch-results li")
    assert found[0] == images["Marketing", "yellow", "triangle"].pk
    assert not {images["Press", "red", "circle"].pk, images["Press", "purple", "heart"].pk} & set(found)
    wait_for_images(page, "#assetsearch-results")
    assert broken_images(page, "#assetsearch-results") == []
    page.locator("#assetsearch-results").scroll_into_view_if_needed()
    keep(page, "visual-search")

    # "Reports" > "Image embedding status": the editor's images by state.
    page.goto(live_server.url + reverse("wagtailadmin_home"))
    page.get_by_role("button", name="Reports").click()
    page.get_by_role("link", name="Image embedding status").click()
    page.wait_for_url("**" + reverse("assetsearch_wagtail:embedding_status"))
    assert page.inner_text("#state-ready").strip() == "4"  # the Marketing collection's images
    keep(page, "embedding-status")

    # A Wagtail moderator (not staff): "Image moderation" > "Moderation query", then "Concepts".
    moderator = collection_editor(
        "browser-moderator", site["marketing"], extra=("moderate_asset", "add_moderationconcept", "change_moderationconcept"),
    )
    moderator.set_password(PASSWORD)
    moderator.save()
    page = wagtail_login(browser, live_server, moderator)
    page.get_by_role("button", name="Image moderation").click()
    page.get_by_role("link", name="Moderation query").click()
    page.wait_for_url("**" + reverse("assetsearch_wagtail:moderation_query"))
    ranked = submit_and_rank(page, "#assetsearch-moderation-query", "a yellow triangle", "#assetsearch-moderation-hits tbody tr")
    assert ranked[0] == images["Marketing", "yellow", "triangle"].pk
    wait_for_images(page, "#assetsearch-moderation-hits")
    keep(page, "moderation-query")
    page.click("#assetsearch-save-concept")
    page.wait_for_url("**" + reverse("assetsearch_concepts:add") + "**")
    page.fill("#id_name", "yellow triangles")
    page.get_by_role("button", name="Create", exact=True).click()
    page.wait_for_url("**" + reverse("assetsearch_concepts:index"))
    assert "yellow triangles" in page.inner_text("main")
    assert ModerationConcept.objects.get(name="yellow triangles").prompts == ["a yellow triangle"]  # filled in from the query
    keep(page, "moderation-concepts")
