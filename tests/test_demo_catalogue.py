"""The queries the admin and the API docs suggest work on the example site's demo catalogue."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import override_settings

from assetsearch.constants import EXAMPLE_QUERY
from assetsearch.models import Asset
from assetsearch.pipeline import embed_assets
from assetsearch.search import Filters, Query, search

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def demo_catalogue(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), override_settings(ASSETSEARCH={"AUTO_EMBED": False}):
        call_command("load_demo_catalogue", verbosity=0)  # the example site's 60 assets, as scripts/run loads them
        ids = list(Asset.objects.values_list("pk", flat=True))
        assert len(embed_assets(ids).embedded) == len(ids) == 60
        yield
        Asset.objects.all().delete()


def tags(results, n: int) -> list[list[str]]:
    return [hit.asset.tags for hit in results.hits[:n]]


def test_the_admins_example_query_finds_what_it_says(demo_catalogue):
    first = search(Query(text=EXAMPLE_QUERY, limit=1)).hits[0].asset
    assert {"red", "square"} <= set(first.tags), first.title


def test_the_api_docs_example_queries_find_what_they_say(demo_catalogue):
    # q=a+red+square&limit=5
    assert {"red", "square"} <= set(tags(search(Query(text="a red square", limit=5)), 1)[0])
    # q=red&tags=square&hybrid=true: squares only, the red one first
    hybrid = search(Query(text="red", hybrid=True, filters=Filters(tags=["square"]), limit=5))
    assert all("square" in t for t in tags(hybrid, 5)) and "red" in tags(hybrid, 1)[0]
    # "a star" with negative "red": stars, no red one in the top 5
    negative = search(Query(text="a star", negative=["red"], negative_weight=0.5, limit=5))
    assert all("star" in t and "red" not in t for t in tags(negative, 5)), tags(negative, 5)
