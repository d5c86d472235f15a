from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from infra.embedded import ensure_database


class Command(BaseCommand):
    help = (
        "Create the database DATABASE_URL names if its server lacks it (`make stack` runs it "
        "before migrating). The user must be allowed to create databases."
    )
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def handle(self, *args: Any, **options: Any) -> None:
        database = settings.DATABASES["default"]
        created = ensure_database(database)
        self.stdout.write(f"database {database['NAME']}: " + ("created" if created else "exists"))
