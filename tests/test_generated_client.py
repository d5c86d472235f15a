"""A Python client generated from our own schema by openapi-python-client, used as game
servers and game clients use it (README, "Using a generated client"): the schema must
generate a client without a warning, and the client's typed models must read what a real
server answers.

The client is generated once for the module, from the schema `manage.py spectacular`
writes, with no network; each test then talks to a gunicorn worker over HTTP.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.core.management import call_command

from achievements.models import Unlock
from tests.conftest import PASSWORD
from tests.servers import VENV_BIN, gunicorn, running
from tracker.models import Game, Player

pytestmark = pytest.mark.django_db(transaction=True)

PACKAGE = "questboard_api_client"


@pytest.fixture(scope="module")
def client_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    where = tmp_path_factory.mktemp("generated")
    schema = where / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(schema))
    # The generator would run ruff over what it wrote; the client's formatting is not ours.
    config = where / "config.yaml"
    config.write_text("post_hooks: []\n")
    generated = subprocess.run(
        [
            str(VENV_BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(schema),
            "--config",
            str(config),
            "--meta",
            "none",
            "--output-path",
            str(where / PACKAGE),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = generated.stdout + generated.stderr
    assert generated.returncode == 0, output
    # A schema the generator cannot fully map (an untyped body, an unsupported construct)
    # is a warning and a missing piece of the client.
    assert "warning" not in output.lower(), output

    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def part(name: str) -> Any:
    """A module of the generated client, e.g. part("api.achievements.unlock_achievement")."""
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_a_game_server_unlocks_with_its_key_and_reads_the_answer_as_typed_models(
    client_package: ModuleType,
    game: Game,
    game_key: str,
    alice: Player,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    models = part("models")
    unlock_achievement = part("api.achievements.unlock_achievement")
    body = models.UnlockInputByApiNameRequest(player_id=alice.pk, achievement="FIRST_FLIGHT")

    with running({"web": gunicorn}, tmp_path) as [web]:
        with client_package.AuthenticatedClient(base_url=web.http, token=game_key, prefix="Api-Key") as client:
            first = unlock_achievement.sync_detailed(client=client, body=body)
            again = unlock_achievement.sync_detailed(client=client, body=body)

    assert first.status_code == 201, first.content
    unlocked = first.parsed
    assert isinstance(unlocked, models.UnlockOutput)
    assert unlocked.success is True and unlocked.already_unlocked is False
    assert unlocked.achievement.api_name == "FIRST_FLIGHT"
    assert isinstance(unlocked.achievement.id, uuid.UUID)
    assert isinstance(unlocked.achievement.rarity, models.Rarity)
    assert unlocked.new_rank == 1
    # Every field the server sent has a typed home: nothing falls into the catch-all bag.
    assert unlocked.additional_properties == {}
    assert unlocked.achievement.additional_properties == {}
    assert Unlock.objects.filter(player=alice, achievement_id=unlocked.achievement.id).count() == 1

    assert again.status_code == 200, again.content
    assert again.parsed.already_unlocked is True
    assert again.parsed.unlocked_at == unlocked.unlocked_at

    # What the README's example prints, the first time and once unlocked already.
    for response in (first, again):
        print(response.status_code, response.parsed.already_unlocked, response.parsed.achievement.rarity)
    tiers = "|".join(tier.value for tier in models.Rarity)
    assert re.fullmatch(rf"201 False ({tiers})\n200 True ({tiers})\n", capsys.readouterr().out)


def test_a_game_client_signs_in_and_learns_who_it_is(client_package: ModuleType, alice: Player, tmp_path: Path) -> None:
    models = part("models")
    obtain_token = part("api.auth.obtain_token")
    get_me = part("api.players.get_me")

    with running({"web": gunicorn}, tmp_path) as [web]:
        with client_package.Client(base_url=web.http) as anonymous:
            tokens = obtain_token.sync(
                client=anonymous, body=models.TokenObtainPairRequest(username="alice", password=PASSWORD)
            )
            assert isinstance(tokens, models.TokenObtainPair), tokens
            nobody = get_me.sync_detailed(client=anonymous)
        with client_package.AuthenticatedClient(base_url=web.http, token=tokens.access) as signed_in:
            me = get_me.sync(client=signed_in)

    assert nobody.status_code == 401
    assert isinstance(nobody.parsed, models.ErrorOutput)
    assert nobody.parsed.error.code == "not_authenticated"
    assert isinstance(me, models.MeOutput)
    assert (me.id, me.username, me.region, me.privacy) == (alice.pk, "alice", models.Region.EU, models.Privacy.PUBLIC)
    assert me.additional_properties == {}
