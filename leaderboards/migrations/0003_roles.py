"""The two staff roles, each with the least permissions its job needs.

Community managers run seasons and moderation; game developers read their games' data
(their analytics pages check membership of each game on top of this).
"""

from __future__ import annotations

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    "Community managers": [
        "leaderboards.add_season",
        "leaderboards.change_season",
        "leaderboards.view_season",
        "leaderboards.view_seasonresult",
        "leaderboards.view_moderationaction",
        "leaderboards.moderate",
        "tracker.view_player",
        "tracker.view_game",
        "achievements.view_achievement",
        "achievements.view_unlock",
    ],
    "Game developers": [
        "tracker.view_game",
        "achievements.view_achievement",
        "leaderboards.view_season",
        "leaderboards.view_seasonresult",
    ],
}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        for dotted in codenames:
            app_label, codename = dotted.split(".")
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("leaderboards", "0002_initial"),
        ("achievements", "0002_initial"),
        ("tracker", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
