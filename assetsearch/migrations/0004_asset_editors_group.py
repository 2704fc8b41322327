"""The app's own group, "Asset editors", and the repair of a merged "Editors" group.

The old 0003 did ``get_or_create(name="Editors")`` and added view/add/change/
delete asset to it. Where a site already had an "Editors" group (Wagtail's,
or the site's own), every member silently got write access to assets. This
migration:

- creates "Asset editors" with the four asset permissions, only if no group
  of that name exists (a site's own group of that name is left alone);
- where "Editors" holds the four permissions the old 0003 granted, tells
  whose group it is by what else it holds. A group with permissions of its
  own pre-existed (Wagtail's "Editors" has the Wagtail admin's): only the
  four permissions are removed; its members and its other permissions stay,
  and the site grants asset access through "Asset editors" instead. A group
  with those four and nothing else is the one the old 0003 created: it is
  renamed "Asset editors" (its members keep their access), when that name is
  free. (A site's own "Editors" group that held no permission at all before
  the old 0003 ran cannot be told from that; it is renamed too.)

Reversing it changes nothing: a group may have been put to use since.
"""

import logging

from django.db import migrations

GROUP = "Asset editors"
LEGACY_GROUP = "Editors"
CODENAMES = ["view_asset", "add_asset", "change_asset", "delete_asset"]

logger = logging.getLogger("assetsearch.migrations")


def repair_legacy_group(apps, schema_editor, permissions) -> None:
    Group = apps.get_model("auth", "Group")
    db = schema_editor.connection.alias
    legacy = Group.objects.using(db).filter(name=LEGACY_GROUP).first()
    if legacy is None:
        return
    held = set(legacy.permissions.values_list("pk", flat=True))
    granted = {p.pk for p in permissions}
    if not granted <= held:
        return  # not what the old 0003 left: the site's own grants, leave them
    if held == granted:  # nothing but what the old 0003 added: the group it created
        if not Group.objects.using(db).filter(name=GROUP).exists():
            legacy.name = GROUP
            legacy.save(update_fields=["name"])
            logger.warning('assetsearch: renamed its group "%s" to "%s".', LEGACY_GROUP, GROUP)
        return
    legacy.permissions.remove(*permissions)
    logger.warning(
        'assetsearch: removed %s from the pre-existing "%s" group (an earlier version merged them into it); '
        'grant asset access through the "%s" group.', ", ".join(CODENAMES), LEGACY_GROUP, GROUP,
    )


def create_asset_editors(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    db = schema_editor.connection.alias
    permissions = list(
        Permission.objects.using(db).filter(
            content_type__app_label="assetsearch", content_type__model="asset", codename__in=CODENAMES
        )
    )
    repair_legacy_group(apps, schema_editor, permissions)
    if Group.objects.using(db).filter(name=GROUP).exists():
        return  # ours from the repair above, or the site's own: never merge into it
    Group.objects.using(db).create(name=GROUP).permissions.add(*permissions)


class Migration(migrations.Migration):
    dependencies = [("assetsearch", "0003_editors_group")]
    operations = [migrations.RunPython(create_asset_editors, migrations.RunPython.noop)]
