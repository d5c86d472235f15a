from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from achievements.api import ManifestInput
from achievements.services import import_manifest
from infra.errors import DomainError


class Command(BaseCommand):
    help = "Create or update a game and its achievement set from a JSON manifest; prints the game id last."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("manifest", type=Path)

    def handle(self, *args: Any, manifest: Path, **options: Any) -> None:
        try:
            document = json.loads(manifest.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise CommandError(f"Cannot read {manifest}: {error}") from error
        data = ManifestInput(data=document)
        if not data.is_valid():
            raise CommandError(f"Invalid manifest: {json.dumps(data.errors)}")
        try:
            result = import_manifest(manifest=data.validated_data)
        except DomainError as error:
            raise CommandError(error.message) from error
        verb = "Created" if result.game_created else "Updated"
        self.stdout.write(
            f"{verb} game {result.game.slug}: {result.created} achievements created, {result.updated} updated."
        )
        self.stdout.write(str(result.game.pk))
