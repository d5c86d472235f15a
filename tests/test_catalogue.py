"""Game keys, games and achievements served from each process's memory (infra/memo.py):
the hash and expiry are still checked on every request, a change made in another process
is seen within CATALOGUE_CACHE_SECONDS, and a manifest imported here is seen at once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from infra import memo
from tests.conftest import STAR_RAIDERS, Api, achievement, make_player
from tests.helpers import post, unlock
from tracker.models import Game, GameKey, Player

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """The catalogue's clock, moved by hand."""
    now = {"t": 1_000.0}
    monkeypatch.setattr(memo.time, "monotonic", lambda: now["t"])
    return now


def key_row(game: Game) -> Any:
    return GameKey.objects.filter(game=game)


def test_a_key_revoked_by_another_process_stops_working_within_the_cache_time(
    api: Api, alice: Player, game: Game, game_key: str, clock: dict[str, float], settings: Any
) -> None:
    client = api.as_key(game_key)
    assert unlock(client, alice, achievement(game, "FIRST_FLIGHT")).status_code == 201
    key_row(game).update(revoked=True)  # as the admin in another process does
    clock["t"] += settings.CATALOGUE_CACHE_SECONDS + 0.1
    assert unlock(client, alice, achievement(game, "ACE_PILOT")).status_code == 401


def test_a_key_past_its_expiry_is_refused_at_once_even_when_cached(
    api: Api, alice: Player, game: Game, game_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_row(game).update(expiry_date=timezone.now() + timedelta(minutes=1))
    client = api.as_key(game_key)
    assert unlock(client, alice, achievement(game, "FIRST_FLIGHT")).status_code == 201  # now cached
    later = timezone.now() + timedelta(minutes=2)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert unlock(client, alice, achievement(game, "ACE_PILOT")).status_code == 401


def test_a_cached_key_still_checks_the_secret(api: Api, alice: Player, game: Game, game_key: str) -> None:
    assert unlock(api.as_key(game_key), alice, achievement(game, "FIRST_FLIGHT")).status_code == 201
    prefix, _, secret = game_key.partition(".")
    forged = f"{prefix}.{'x' * len(secret)}"
    assert unlock(api.as_key(forged), alice, achievement(game, "ACE_PILOT")).status_code == 401


def test_an_achievement_added_by_a_manifest_can_be_unlocked_by_name_at_once(
    api: Api, alice: Player, game: Game, game_key: str
) -> None:
    client = api.as_key(game_key)
    body = {"player_id": str(alice.pk), "achievement": "FIRST_FLIGHT"}
    assert post(client, "/api/v1/achievements/unlock", body).status_code == 201
    manifest = {
        **STAR_RAIDERS,
        "achievements": [*STAR_RAIDERS["achievements"], {"api_name": "NEW", "name": "New", "points": 5}],
    }
    assert client.put(f"/api/v1/games/{game.pk}/achievements", manifest, format="json").status_code == 200
    response = post(client, "/api/v1/achievements/unlock", {**body, "achievement": "NEW"})
    assert response.status_code == 201 and response.json()["achievement"]["points"] == 5


def test_a_manifest_change_is_seen_at_once_by_the_process_that_imported_it(
    api: Api, alice: Player, game: Game, game_key: str
) -> None:
    """FIRST_FLIGHT stops being client-unlockable: the player's own client is refused."""
    client = api.as_key(game_key)
    first = achievement(game, "FIRST_FLIGHT")
    assert client.get(f"/api/v1/games/{game.pk}/achievements").status_code == 200
    assert unlock(api.as_player(alice), alice, first).status_code == 201  # cached as client-unlockable
    items = [
        dict(a, client_unlockable=False) if a["api_name"] == "FIRST_FLIGHT" else a for a in STAR_RAIDERS["achievements"]
    ]
    assert (
        client.put(
            f"/api/v1/games/{game.pk}/achievements", {**STAR_RAIDERS, "achievements": items}, format="json"
        ).status_code
        == 200
    )
    bob = make_player("bobby")
    assert unlock(api.as_player(bob), bob, first).status_code == 403
