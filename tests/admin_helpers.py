"""Helpers of the admin tests (client and browser): a small embedded catalogue and staff users."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission, User
from django.test import override_settings

from assetsearch.models import Asset
from assetsearch.pipeline import embed_assets

from .api_helpers import editors_group as editor_group  # noqa: F401  (the admin tests' name)
from .utils import image_file, scene

# Titles say nothing about the pictures, so only the vectors can find them by
# content; "Quarterly report cover" is the one a keyword search finds.
CATALOGUE = {
    "alpha": (dict(colour="red", shape="circle"), 1, ["red", "circle"]),
    "bravo": (dict(colour="red", shape="circle"), 2, []),  # a second rendering of alpha's scene, untagged
    "Quarterly report cover": (dict(colour="blue", shape="square"), 3, ["blue", "square"]),
    "charlie": (dict(colour="green", shape="star"), 4, ["green", "star"]),
    "delta": (dict(colour="yellow", shape="triangle"), 5, ["yellow", "triangle"]),
    "echo": (dict(colour="blue", shape="circle"), 6, ["blue", "circle"]),
    "foxtrot": (dict(colour="red", shape="square"), 7, ["red", "square"]),
    "golf": (dict(colour="green", shape="triangle"), 8, ["green", "triangle"]),
}
RED_CIRCLES = {"alpha", "bravo"}

RED_SQUARES = dict(
    name="red squares",
    prompts=["a red square"],
    counter_prompts=["a red circle", "a red triangle", "a blue square", "a green square", "a yellow square"],
    threshold=0.5,
)


def no_auto_embed() -> override_settings:
    return override_settings(ASSETSEARCH={"AUTO_EMBED": False})


def make_asset(title: str, parts: dict[str, str], seed: int, tags: list[str], fmt: str = "PNG") -> Asset:
    with no_auto_embed():
        return Asset.objects.create(image=image_file(scene(**parts), seed=seed, fmt=fmt, name=f"{title}.{fmt.lower()}"), title=title, tags=tags)


def make_catalogue(embed: bool = True) -> dict[str, Asset]:
    assets = {title: make_asset(title, parts, seed, tags) for title, (parts, seed, tags) in CATALOGUE.items()}
    if embed:
        result = embed_assets([a.pk for a in assets.values()])
        assert sorted(result.embedded) == sorted(a.pk for a in assets.values()), result
        for asset in assets.values():
            asset.refresh_from_db()
    return assets


def permission(codename: str) -> Permission:
    return Permission.objects.get(content_type__app_label="assetsearch", codename=codename)


def staff(name: str, *codenames: str, superuser: bool = False) -> User:
    if superuser:
        return User.objects.create_superuser(name, f"{name}@example.com", "pw")
    user = User.objects.create_user(name, f"{name}@example.com", "pw", is_staff=True)
    user.user_permissions.add(*[permission(c) for c in codenames])
    return user

