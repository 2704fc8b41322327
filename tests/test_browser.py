"""End to end in headless Chromium: the admin served by a live server, driven by Playwright.

Needs Debian's Chromium at /usr/bin/chromium (``apt-get install chromium``;
Playwright's own browser downloads are not used) and the ``playwright``
package; skipped with the reason otherwise. Run only these with
``pytest -m browser``. Screenshots land in ``artifacts/screenshots/``; the
visual search one is also copied to ``docs/screenshots/visual-search.png``
for the README when ``ASSETSEARCH_UPDATE_DOCS=1`` (so test runs leave the
tracked files alone).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from assetsearch.files import get_original_url
from assetsearch.models import Asset

from .admin_helpers import RED_CIRCLES, editor_group, make_catalogue
from .api_helpers import assetsearch_settings
from .utils import image_file, polyglot_png, scene

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
README_SCREENSHOT = ROOT / "docs" / "screenshots" / "visual-search.png"
PASSWORD = "correct horse battery staple"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium to run the browser tests")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed")
    # Playwright's sync API keeps an event loop in this thread; the tests'
    # own ORM calls (seeding, checks) are still plain synchronous code.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def editor(browser: Any) -> User:
    user = User.objects.create_user("editor", "editor@example.com", PASSWORD, is_staff=True)
    user.groups.add(editor_group())
    return user


def logged_in_page(
    browser: Any, live_server: Any, user: Any, *, color_scheme: str = "light", password: str = PASSWORD,
    login: str = "admin:login", submit: str = "input[type=submit]", home: str = "admin:index",
) -> Any:
    """A page of a fresh browser context, logged in through a login form (the Django admin's unless told)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=color_scheme)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(live_server.url + reverse(login))
    page.fill("#id_username", user.username)
    page.fill("#id_password", password)
    page.click(submit)
    page.wait_for_url(live_server.url + reverse(home))
    return page


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def broken_images(page: Any, selector: str) -> list[str]:
    """The sources of images under ``selector`` that did not load (thumbnails need the session)."""
    return page.eval_on_selector_all(
        selector + " img",
        "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)",
    )


def wait_for_images(page: Any, selector: str) -> None:
    page.wait_for_function(
        "sel => [...document.querySelectorAll(sel + ' img')].every(i => i.complete)", arg=selector
    )


def test_changelist_search_box_ranks_the_matching_thumbnail_first(browser: Any, live_server: Any, editor: User) -> None:
    assets = make_catalogue()
    page = logged_in_page(browser, live_server, editor)
    page.goto(live_server.url + reverse("admin:assetsearch_asset_changelist"))
    page.fill("#searchbar", "a red circle")
    page.press("#searchbar", "Enter")
    page.wait_for_selector("#result_list th.column-similarity")
    first_rows = page.locator("#result_list tbody tr")
    assert first_rows.count() == len(assets)
    top_two = {first_rows.nth(i).locator("td.field-title, th.field-title").inner_text().strip() for i in range(2)}
    assert top_two == RED_CIRCLES
    # Rows follow the hybrid (fused) ranking; the two red circles are also the
    # two most similar images.
    scores = [float(text) for text in page.locator("#result_list td.field-similarity").all_inner_texts()]
    assert min(scores[:2]) > max(scores[2:]), scores
    wait_for_images(page, "#result_list")
    assert broken_images(page, "#result_list") == []
    screenshot(page, "changelist-search")


def test_visual_search_with_an_uploaded_image(browser: Any, live_server: Any, editor: User, tmp_path: Path) -> None:
    assets = make_catalogue()
    query = tmp_path / "query.png"
    query.write_bytes(image_file(scene(colour="red", shape="circle"), seed=42).read())
    red_circle_ids = {str(assets[title].pk) for title in RED_CIRCLES}

    for scheme in ("light", "dark"):
        page = logged_in_page(browser, live_server, editor, color_scheme=scheme)
        page.goto(live_server.url + reverse("admin:assetsearch_asset_changelist"))
        page.click("#visual-search-link")
        page.set_input_files("#id_image", str(query))
        page.fill("#id_limit", "8")
        page.click("#visual-search-form input[type=submit]")
        page.wait_for_selector("#visual-search-grid")
        cards = page.locator("#visual-search-grid li.assetsearch-card")
        assert cards.count() == len(assets)
        assert {cards.nth(0).get_attribute("data-asset-id"), cards.nth(1).get_attribute("data-asset-id")} == red_circle_ids
        wait_for_images(page, "#visual-search-results")
        assert broken_images(page, "#visual-search-results") == []
        # The card links to the asset's change page.
        first_id = cards.nth(0).get_attribute("data-asset-id")
        assert cards.nth(0).locator("a").first.get_attribute("href") == reverse("admin:assetsearch_asset_change", args=[first_id])
        path = screenshot(page, f"visual-search-{scheme}")
        if scheme == "light" and os.environ.get("ASSETSEARCH_UPDATE_DOCS") == "1":
            README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, README_SCREENSHOT)
        page.context.close()


def test_find_similar_from_the_change_page(browser: Any, live_server: Any, editor: User) -> None:
    assets = make_catalogue()
    alpha, bravo = assets["alpha"], assets["bravo"]
    page = logged_in_page(browser, live_server, editor)
    page.goto(live_server.url + reverse("admin:assetsearch_asset_change", args=[alpha.pk]))
    # The panel on the change page: the other rendering first, never the asset itself.
    panel = page.locator("#similar-grid li.assetsearch-card")
    assert panel.nth(0).get_attribute("data-asset-id") == str(bravo.pk)
    assert str(alpha.pk) not in panel.evaluate_all("cards => cards.map(c => c.dataset.assetId)")
    wait_for_images(page, "#similar-assets")
    assert broken_images(page, "#similar-assets") == []
    screenshot(page, "change-page-panels")

    page.click("#find-similar-link")
    page.wait_for_selector("#visual-search-grid")
    cards = page.locator("#visual-search-grid li.assetsearch-card")
    ids = cards.evaluate_all("cards => cards.map(c => c.dataset.assetId)")
    assert ids[0] == str(bravo.pk) and str(alpha.pk) not in ids
    assert page.input_value("#id_asset") == str(alpha.pk)
    screenshot(page, "find-similar")

    # Accepting a suggested tag from the same page, through its own small form.
    page.goto(live_server.url + reverse("admin:assetsearch_asset_change", args=[bravo.pk]))
    tag = page.locator("#suggested-tags li").first.get_attribute("data-tag")
    page.locator("#suggested-tags li").first.locator("button").click()
    page.wait_for_selector("ul.messagelist li.success")
    bravo.refresh_from_db()
    assert bravo.tags == [tag]
    assert page.input_value("#id_tags") == tag


def test_status_panel_and_moderation_review(browser: Any, live_server: Any, tmp_path: Path) -> None:
    from assetsearch.models import EmbeddingStatus, FlagStatus, ModerationConcept, ModerationFlag
    from assetsearch.moderation import flag_assets

    from .admin_helpers import RED_SQUARES, make_asset

    assets = make_catalogue()
    make_asset("waiting", dict(colour="purple", shape="heart"), 20, [])
    Asset = type(assets["alpha"])
    Asset.objects.filter(pk=assets["delta"].pk).set_status(EmbeddingStatus.FAILED, "The image could not be decoded: truncated file")
    concept = ModerationConcept.objects.create(enabled=False, **{**RED_SQUARES, "threshold": 0})
    flag_assets(concept)
    admin = User.objects.create_superuser("root", "root@example.com", PASSWORD)
    page = logged_in_page(browser, live_server, admin)

    # Status panel: counts per state, the failure and its message, then re-enqueue.
    page.goto(live_server.url + reverse("admin:assetsearch_asset_changelist"))
    page.click("#embedding-status-link")
    assert page.inner_text("#state-ready strong") == str(len(assets) - 1)
    assert page.inner_text("#state-pending strong") == "1" and page.inner_text("#state-failed strong") == "1"
    assert "truncated file" in page.inner_text("#embedding-failures")
    screenshot(page, "status")
    page.click("#requeue-form input[type=submit]")
    page.wait_for_selector("ul.messagelist li.success")
    assert "Queued 2 asset(s)" in page.inner_text("ul.messagelist")
    assert Asset.objects.get(pk=assets["delta"].pk).embedding_status != EmbeddingStatus.FAILED

    # Review queue: thumbnails, best score first, bulk confirm.
    page.goto(live_server.url + reverse("admin:assetsearch_moderationflag_changelist") + "?status__exact=open")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == ModerationFlag.objects.count()
    assert "foxtrot" in rows.nth(0).inner_text()
    wait_for_images(page, "#result_list")
    assert broken_images(page, "#result_list") == []
    screenshot(page, "flag-queue")
    rows.nth(0).locator("input.action-select").check()
    rows.nth(1).locator("input.action-select").check()
    page.select_option("select[name=action]", "confirm")
    page.click("button[name=index]")
    page.wait_for_selector("ul.messagelist li.success")
    confirmed = ModerationFlag.objects.filter(status=FlagStatus.CONFIRMED)
    assert confirmed.count() == 2 and all(f.reviewer_id == admin.pk and f.reviewed_at for f in confirmed)

    # Ad-hoc moderation query.
    page.click("#moderation-query-link")
    page.fill("#id_text", "a green star")
    page.fill("#id_counter_prompts", "a green triangle, a blue star")
    page.click("#moderation-query-form input[type=submit]")
    page.wait_for_selector("#moderation-grid")
    first = page.locator("#moderation-grid li.assetsearch-card").first.get_attribute("data-asset-id")
    assert first == str(assets["charlie"].pk)
    wait_for_images(page, "#moderation-grid")
    assert broken_images(page, "#moderation-grid") == []
    screenshot(page, "moderation-query")


def test_a_polyglot_upload_runs_no_script_when_an_admin_opens_it(browser: Any, live_server: Any) -> None:
    """The stored-XSS attempt: a PNG carrying a script, uploaded as x.html, opened by a logged-in admin."""
    admin = User.objects.create_superuser("xss-admin", "xss-admin@example.com", PASSWORD)
    upload = polyglot_png("x.html")
    payload = upload.read()
    upload.seek(0)
    with assetsearch_settings(AUTO_EMBED=False):
        asset = Asset.objects.create(image=upload, title="polyglot")
    page = logged_in_page(browser, live_server, admin)

    # The control: the same bytes served as a page do run their script in this browser.
    as_page = live_server.url + "/polyglot-as-a-page/"
    page.route(as_page, lambda route: route.fulfill(status=200, content_type="text/html", body=payload))
    page.goto(as_page)
    assert page.title() == "XSS ran"

    response = page.goto(live_server.url + get_original_url(asset))
    assert response is not None and response.status == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    page.wait_for_load_state("load")
    assert page.title() != "XSS ran"
    assert page.evaluate("document.contentType") == "image/png"
