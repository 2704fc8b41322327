"""Create the assets' permissions, so that later data migrations can grant them.

Permissions are normally created after ``migrate`` finishes (post_migrate), so
on a fresh database they do not exist yet when the migrations run.

Before 0.2 this migration also did ``get_or_create(name="Editors")`` and added
the asset permissions to that group, which merged them into a site's own
"Editors" group (Wagtail creates one). It no longer touches any group: 0004
creates the app's own "Asset editors" group and repairs sites where the old
version of this migration ran.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def create_asset_permissions(apps, schema_editor):
    app_config = apps.get_app_config("assetsearch")
    # create_permissions() skips apps whose models module is unset, as it is on migration state apps.
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
    app_config.models_module = None


class Migration(migrations.Migration):
    dependencies = [
        ("assetsearch", "0002_starter_concepts"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_asset_permissions, migrations.RunPython.noop)]
