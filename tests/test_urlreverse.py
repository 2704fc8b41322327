"""``reverse_pk``: the cached per-object URL is always what ``reverse()`` gives."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.http import HttpResponse
from django.urls import NoReverseMatch, clear_script_prefix, path, reverse, set_script_prefix

from assetsearch.urlreverse import reverse_pk

# This module as a site's URLconf: one page with an id, and no assetsearch.urls.
urlpatterns = [path("pages/<int:pk>/", lambda request, pk: HttpResponse(), name="page")]

NAMES = [
    ("assetsearch:asset-thumbnail", ()),
    ("assetsearch:asset-original", ()),
    ("assetsearch:object-thumbnail", ("assetsearch.asset",)),
    ("admin:assetsearch_asset_change", ()),
]


@pytest.mark.parametrize("name, prefix_args", NAMES)
def test_reverse_pk_is_reverse_for_any_id(name, prefix_args):
    for pk in (0, 7, 12345, 2**62):
        assert reverse_pk(name, pk, *prefix_args) == reverse(name, args=[*prefix_args, pk])


def test_reverse_pk_follows_the_script_prefix_and_the_urlconf():
    url = reverse_pk("assetsearch:asset-thumbnail", 5)
    set_script_prefix("/mounted/")
    try:
        assert reverse_pk("assetsearch:asset-thumbnail", 5) == "/mounted" + url == reverse("assetsearch:asset-thumbnail", args=[5])
    finally:
        clear_script_prefix()
        set_script_prefix("/")
    assert reverse_pk("assetsearch:asset-thumbnail", 5) == url
    with override_settings(ROOT_URLCONF=__name__):
        with pytest.raises(NoReverseMatch):
            reverse_pk("assetsearch:asset-thumbnail", 5)
        assert reverse_pk("page", 5) == "/pages/5/"
    assert reverse_pk("assetsearch:asset-thumbnail", 5) == url


def test_reverse_pk_of_other_ids_is_reverse():
    assert reverse_pk("admin:assetsearch_asset_change", "a b") == reverse("admin:assetsearch_asset_change", args=["a b"])
    with pytest.raises(NoReverseMatch):
        reverse_pk("assetsearch:asset-thumbnail", "not-a-number")
