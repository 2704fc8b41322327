"""The app's group never merges into a site's own: migrations 0003 and 0004.

Each test puts the database where a site would be (assetsearch at 0002, a
site's groups in place, perhaps the old 0003 applied), then runs the
migrations with Django's MigrationExecutor on the real PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

from .api_helpers import ASSET_PERMISSIONS, EDITORS

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("assetsearch", "0002_starter_concepts")
OLD_0003 = ("assetsearch", "0003_editors_group")
REPAIR = ("assetsearch", "0004_asset_editors_group")


def migrate(target: tuple[str, str]) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([target])


@pytest.fixture
def at_0002() -> Iterator[None]:
    """assetsearch at 0002, with its permissions (as on a site where post_migrate created them); the leaf again afterwards."""
    migrate(BEFORE)
    Group.objects.all().delete()
    yield
    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes("assetsearch")
    MigrationExecutor(connection).migrate(leaves)


def asset_permissions() -> list[Permission]:
    return list(Permission.objects.filter(content_type__app_label="assetsearch", codename__in=ASSET_PERMISSIONS))


def codenames(group: Group) -> list[str]:
    return sorted(group.permissions.values_list("codename", flat=True))


def apply_old_0003() -> None:
    """What 0003 did before it was fixed, in one transaction as the executor ran it, then recorded as applied."""
    with transaction.atomic():
        group, _ = Group.objects.get_or_create(name="Editors")
        group.permissions.add(*asset_permissions())
    MigrationExecutor(connection).recorder.record_applied(*OLD_0003)


def a_sites_editors_group() -> Group:
    """A site's own "Editors" group (Wagtail makes one): its own permission and a member."""
    group = Group.objects.create(name="Editors")
    group.permissions.add(Permission.objects.get(content_type__app_label="auth", codename="change_user"))
    get_user_model().objects.create_user("wagtail-editor").groups.add(group)
    return group


def test_a_fresh_install_creates_asset_editors_and_never_touches_a_sites_editors(at_0002):
    editors = a_sites_editors_group()
    migrate(REPAIR)
    assert codenames(Group.objects.get(name=EDITORS)) == sorted(ASSET_PERMISSIONS)
    editors.refresh_from_db()
    assert codenames(editors) == ["change_user"]
    assert list(editors.user_set.values_list("username", flat=True)) == ["wagtail-editor"]


def test_the_repair_removes_what_old_0003_merged_into_a_pre_existing_editors_group(at_0002):
    editors = a_sites_editors_group()
    editors.permissions.add(Permission.objects.get(content_type__app_label="assetsearch", codename="moderate_asset"))
    apply_old_0003()
    assert set(ASSET_PERMISSIONS) <= set(codenames(editors))  # the collision this repairs
    migrate(REPAIR)
    editors.refresh_from_db()
    # Only what old 0003 added is gone: the site's own grants and members stay.
    assert codenames(editors) == ["change_user", "moderate_asset"]
    assert list(editors.user_set.values_list("username", flat=True)) == ["wagtail-editor"]
    assert codenames(Group.objects.get(name=EDITORS)) == sorted(ASSET_PERMISSIONS)
    assert not Group.objects.get(name=EDITORS).user_set.exists()


def test_the_repair_renames_the_editors_group_old_0003_created_keeping_its_members(at_0002):
    apply_old_0003()
    group = Group.objects.get(name="Editors")
    get_user_model().objects.create_user("asset-editor").groups.add(group)
    migrate(REPAIR)
    group.refresh_from_db()
    assert group.name == EDITORS
    assert codenames(group) == sorted(ASSET_PERMISSIONS)
    assert list(group.user_set.values_list("username", flat=True)) == ["asset-editor"]
    assert not Group.objects.filter(name="Editors").exists()


def test_a_sites_own_asset_editors_group_is_left_alone(at_0002):
    own = Group.objects.create(name=EDITORS)
    migrate(REPAIR)
    assert codenames(own) == []
    assert Group.objects.filter(name=EDITORS).count() == 1


def test_reversing_the_migrations_deletes_no_group(at_0002):
    editors = a_sites_editors_group()
    migrate(REPAIR)
    migrate(BEFORE)
    assert set(Group.objects.values_list("name", flat=True)) == {"Editors", EDITORS}
    assert codenames(editors) == ["change_user"]
