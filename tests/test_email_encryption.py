"""Player emails are encrypted at rest: a database dump holds none of them, and the key can
be rotated (`manage.py rotate_email_key`) without losing one."""

from __future__ import annotations

import os
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from tests.binaries import postgres_client
from tests.conftest import make_player
from tracker.models import Player

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def pg_dump() -> Path:
    """A pg_dump at least as new as the server (it refuses a newer one)."""
    return postgres_client("pg_dump", server_major=connection.pg_version // 10_000)


@pytest.mark.django_db(transaction=True)
def test_a_dump_of_the_database_holds_no_email_in_the_clear() -> None:
    make_player("carol")  # committed (a transactional test): the dump sees it
    db = settings.DATABASES["default"]
    # HOST may be a directory: the server's UNIX socket (the embedded default).
    command = [pg_dump(), "--data-only", "--table", Player._meta.db_table, "-h", db["HOST"] or "127.0.0.1"]
    command += ["-p", str(db["PORT"] or 5432), "-U", db["USER"] or "postgres", db["NAME"]]

    password = {"PGPASSWORD": db["PASSWORD"]} if db.get("PASSWORD") else {}

    dump = subprocess.run(
        command, env={**os.environ, **password}, capture_output=True, text=True, timeout=60, check=True
    ).stdout

    assert "carol" in dump  # the row is there
    assert "carol@example.com" not in dump and "example.com" not in dump


def raw_email(player: Player) -> str:
    from django.db.models import TextField
    from django.db.models.functions import Cast

    return Player.objects.annotate(raw=Cast("email", output_field=TextField())).get(pk=player.pk).raw


@pytest.mark.django_db
def test_a_new_key_is_rotated_in_and_the_old_one_can_then_be_dropped() -> None:
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        carol = make_player("carol")
    before = raw_email(carol)

    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        out = StringIO()
        call_command("rotate_email_key", stdout=out)
    assert "Re-encrypted 1 emails" in out.getvalue()
    assert raw_email(carol) != before

    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):
        assert Player.objects.get(pk=carol.pk).email == "carol@example.com"
        assert list(Player.objects.with_email("carol@example.com")) == [carol]
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        assert Player.objects.get(pk=carol.pk).email == ""  # the old key opens nothing now


@pytest.mark.django_db
def test_after_a_new_secret_key_emails_read_through_the_fallback_and_the_rotation_makes_them_findable() -> None:
    with override_settings(SECRET_KEY="the-first-secret-key-of-this-deployment"):
        carol = make_player("carol")

    with override_settings(
        SECRET_KEY="the-second-secret-key-of-it", SECRET_KEY_FALLBACKS=["the-first-secret-key-of-this-deployment"]
    ):
        assert Player.objects.get(pk=carol.pk).email == "carol@example.com"
        assert not Player.objects.with_email("carol@example.com").exists()  # digest under the old key
        call_command("rotate_email_key", stdout=StringIO())
        assert list(Player.objects.with_email("carol@example.com")) == [carol]

    with override_settings(SECRET_KEY="the-second-secret-key-of-it", SECRET_KEY_FALLBACKS=[]):
        assert Player.objects.get(pk=carol.pk).email == "carol@example.com"


@pytest.mark.django_db
def test_an_email_no_configured_key_opens_is_reported_and_left_as_it_was() -> None:
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        carol = make_player("carol")
    stored = raw_email(carol)

    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]), pytest.raises(CommandError, match="carol"):
        call_command("rotate_email_key", stdout=StringIO())

    assert raw_email(carol) == stored
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        assert Player.objects.get(pk=carol.pk).email == "carol@example.com"
