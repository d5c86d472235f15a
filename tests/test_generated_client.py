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
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework_simplejwt.tokens import RefreshToken

from achievements.models import Award, Unlock
from achievements.services import (
    UnlockRequest,
    import_manifest,
    save_season,
    unlock_achievement,
    unlock_achievements,
)
from leaderboards.services import close_season
from tests.conftest import PASSWORD
from tests.servers import VENV_BIN, gunicorn, running
from tracker.models import Friendship, Game, Notification, Player, Source
from tracker.services import game_key_create

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


def test_a_game_client_reads_the_friends_feed_page_by_page_as_typed_items(
    client_package: ModuleType, game: Game, alice: Player, bob: Player, tmp_path: Path
) -> None:
    """Each kind of item, one a page, read as the class of its kind with every field
    typed: a season finish, a pass, an award, an unlock (newest first)."""
    models = part("models")
    list_feed = part("api.friends.list_feed")
    Friendship.objects.create(requester=alice, addressee=bob, status=Friendship.Status.ACCEPTED)
    now = timezone.now()
    season = save_season(game=game, name="Cup", starts_at=now - timedelta(days=2), ends_at=now - timedelta(days=1))
    unlock_achievement(
        player=bob,
        achievement=game.achievements.get(api_name="FIRST_FLIGHT"),
        source=Source.DEMO,
        at=now - timedelta(days=1, hours=12),
    )
    Award.objects.create(player=bob, game=game, kind=Award.Kind.BEATEN, awarded_at=now - timedelta(hours=3))
    Notification.objects.create(
        player=alice,
        kind=Notification.Kind.RIVAL,
        payload={"game_id": str(game.pk), "rival_id": str(bob.pk), "rival_points": 10, "your_points": 5},
    )
    close_season(season=season, now=now + timedelta(minutes=1))
    token = str(RefreshToken.for_user(alice).access_token)

    pages = []
    with running({"web": gunicorn}, tmp_path) as [web]:
        with client_package.AuthenticatedClient(base_url=web.http, token=token) as signed_in:
            cursor = part("types").UNSET  # the first page
            while cursor is not None:
                page = list_feed.sync(client=signed_in, limit=1, cursor=cursor)
                assert isinstance(page, models.FeedOutput), page
                pages.append(page)
                cursor = page.next_
        with client_package.Client(base_url=web.http) as anonymous:
            nobody = list_feed.sync_detailed(client=anonymous)

    finish, passing, beaten, unlocked = (item for page in pages for [item] in [page.results])
    assert isinstance(finish, models.SeasonFinishFeedItem)
    assert (finish.kind, finish.season.name, finish.rank, finish.points) == (
        models.FeedKind.SEASON_FINISH,
        "Cup",
        1,
        10,
    )
    assert isinstance(passing, models.PassedFeedItem)
    assert (passing.points, passing.your_points, passing.game.slug) == (10, 5, "star-raiders")
    assert isinstance(beaten, models.AwardFeedItem)
    assert (beaten.kind, beaten.award, beaten.player.username) == (
        models.FeedKind.AWARD,
        models.AwardKind.BEATEN,
        "bob",
    )
    assert isinstance(unlocked, models.UnlockFeedItem)
    assert unlocked.achievement.name == "First Flight" and unlocked.game.slug == "star-raiders"
    # Every field the server sent has a typed home.
    for item in (finish, passing, beaten, unlocked):
        assert item.additional_properties == {} and item.player.additional_properties == {}
    assert unlocked.achievement.additional_properties == {}
    assert nobody.status_code == 401


def test_a_game_server_reads_a_players_awards_and_the_achievement_types_as_typed_models(
    client_package: ModuleType, alice: Player, tmp_path: Path
) -> None:
    models = part("models")
    list_player_awards = part("api.players.list_player_awards")
    list_game_achievements = part("api.games.list_game_achievements")
    achievements = [
        {"api_name": "OPENING", "name": "Opening", "points": 5, "type": "progression"},
        {"api_name": "ENDING", "name": "Ending", "points": 20, "type": "win_condition"},
    ]
    game = import_manifest(manifest={"slug": "finale", "name": "The Finale", "achievements": achievements}).game
    unlock_achievements([UnlockRequest(alice.pk, a) for a in game.achievements.all()], source=Source.GAME_SERVER)
    key = game_key_create(game=game)

    with running({"web": gunicorn}, tmp_path) as [web]:
        with client_package.AuthenticatedClient(base_url=web.http, token=key, prefix="Api-Key") as client:
            awards = list_player_awards.sync(client=client, player_id=alice.pk)
            elsewhere = list_player_awards.sync_detailed(client=client, player_id=alice.pk, game="no-such-game")
            listed = list_game_achievements.sync(client=client, game_id=game.slug)

    assert isinstance(awards, models.PlayerAwardsOutput)
    assert [(award.kind, award.game.slug, award.game.id) for award in awards.results] == [
        (models.AwardKind.MASTERED, "finale", game.pk),
        (models.AwardKind.BEATEN, "finale", game.pk),
    ]
    assert awards.results[0].awarded_at == Award.objects.get(player=alice, kind="mastered").awarded_at
    assert awards.additional_properties == {} and awards.results[0].additional_properties == {}
    assert elsewhere.status_code == 404 and isinstance(elsewhere.parsed, models.ErrorOutput)
    assert [a.type_ for a in listed.achievements] == [
        models.AchievementType.PROGRESSION,
        models.AchievementType.WIN_CONDITION,
    ]
