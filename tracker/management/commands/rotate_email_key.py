from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models, transaction
from django.db.models.functions import Cast

from tracker.models import Player


class Command(BaseCommand):
    help = (
        "Re-encrypt every player's email under the newest key (the first of "
        "FIELD_ENCRYPTION_KEYS) and recompute its lookup digest (keyed by SECRET_KEY). Run "
        "after putting a new key first, or after changing SECRET_KEY; safe to run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=1000, help="Players rewritten per transaction.")

    def handle(self, *args: Any, batch: int, **options: Any) -> None:
        ids = list(Player.objects.exclude(email="").order_by("pk").values_list("pk", flat=True))
        rewritten, unreadable = 0, []
        for start in range(0, len(ids), batch):
            with transaction.atomic():
                # `stored` is the column as written (the field itself reads "" for a value
                # no configured key opens, which must not be written back as empty).
                players = list(
                    Player.objects.select_for_update()
                    .filter(pk__in=ids[start : start + batch])
                    .annotate(stored=Cast("email", output_field=models.TextField()))
                )
                readable = [p for p in players if p.email or not p.stored]
                unreadable += [p.username for p in players if p not in readable]
                for player in readable:
                    player.set_email(player.email)  # saved encrypted under the newest key
                Player.objects.bulk_update(readable, ["email", "email_digest"])
                rewritten += len(readable)
        self.stdout.write(f"Re-encrypted {rewritten} emails under the newest key.")
        if unreadable:
            raise CommandError(
                f"{len(unreadable)} emails could not be read with any configured key (e.g. {unreadable[0]}): "
                "add the key they were written with to FIELD_ENCRYPTION_KEYS and run again."
            )
