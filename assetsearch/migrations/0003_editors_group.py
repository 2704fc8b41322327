"""Create the "Editors" group: it may view, upload, edit and delete assets.

Permissions are normally created after ``migrate`` finishes (post_migrate), so
on a fresh database they do not exist yet when this runs: create them first.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Editors"
CODENAMES = ["view_asset", "add_asset", "change_asset", "delete_asset"]


def create_editors(apps, schema_editor):
    app_config = apps.get_app_config("assetsearch")
    # create_permissions() skips apps whose models module is unset, as it is on migration state apps.
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.using(schema_editor.connection.alias).get_or_create(name=GROUP)
    permissions = Permission.objects.using(schema_editor.connection.alias).filter(
        content_type__app_label="assetsearch", content_type__model="asset", codename__in=CODENAMES
    )
    group.permissions.add(*permissions)


def remove_editors(apps, schema_editor):
    apps.get_model("auth", "Group").objects.using(schema_editor.connection.alias).filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("assetsearch", "0002_starter_concepts"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_editors, remove_editors)]
