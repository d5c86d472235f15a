"""Helpers shared by the API tests: requests, the error shape, and the state of the database."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.test import Client
from rest_framework.response import Response
from rest_framework.test import APIClient

from achievements.models import Achievement, Progress, Source, Unlock
from achievements.services import unlock_achievement
from stats.models import PlayerGameStats, PlayerTotals
from tracker.models import Game, GameMember, Player

UNLOCK_URL = "/api/v1/achievements/unlock"
BATCH_URL = "/api/v1/achievements/unlock/batch"
PROGRESS_URL = "/api/v1/achievements/progress"


def post(client: APIClient, path: str, body: Any) -> Response:
    return client.post(path, body, format="json")


def unlock(client: APIClient, player: Player, achievement: Achievement, **extra: Any) -> Response:
    """POST a single unlock naming the achievement by id (works for every kind of caller)."""
    return post(client, UNLOCK_URL, {"player_id": str(player.pk), "achievement_id": str(achievement.pk), **extra})


def progress(client: APIClient, player: Player, achievement: Achievement, value: Any) -> Response:
    body = {"player_id": str(player.pk), "achievement_id": str(achievement.pk), "value": value}
    return post(client, PROGRESS_URL, body)


def give(player: Player, achievement: Achievement, *, at: datetime | None = None) -> None:
    """Record an unlock through the service, as a game server would: test set-up, not the subject."""
    unlock_achievement(player=player, achievement=achievement, source=Source.GAME_SERVER, at=at)


def assert_error(response: Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert the one API error shape and status; return the inner error object."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) in ({"status", "code", "message"}, {"status", "code", "message", "fields"}), error
    assert error["status"] == status
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


def stats(player: Player, game: Game) -> tuple[int, int, float] | None:
    """(points, achievement_count, completion) of a player in a game, None if never active there."""
    row = PlayerGameStats.objects.filter(player=player, game=game).first()
    return (row.points, row.achievement_count, row.completion) if row else None


def totals(player: Player) -> tuple[int, int] | None:
    """(points, achievement_count) of a player over every game, None if never active."""
    row = PlayerTotals.objects.filter(player=player).first()
    return (row.points, row.achievement_count) if row else None


def unlocked_names(player: Player) -> set[str]:
    return set(Unlock.objects.filter(player=player).values_list("achievement__api_name", flat=True))


def snapshot() -> dict[str, Any]:
    """Everything an unlock, progress report or manifest may write, for "nothing changed" checks."""
    return {
        "unlocks": sorted(Unlock.objects.values_list("player_id", "achievement_id", "unlocked_at", "claimed_at")),
        "progress": sorted(Progress.objects.values_list("player_id", "achievement_id", "value")),
        "stats": sorted(
            PlayerGameStats.objects.values_list("player_id", "game_id", "points", "achievement_count", "completion")
        ),
        "totals": sorted(PlayerTotals.objects.values_list("player_id", "points", "achievement_count")),
        "achievements": sorted(
            Achievement.objects.values_list("id", "game_id", "api_name", "name", "description", "points", "hidden")
        ),
        "games": sorted(Game.objects.values_list("id", "slug", "name", "achievement_count", "total_points")),
    }


def manifest(slug: str, count: int, *, points: int = 10, **extra: Any) -> dict[str, Any]:
    """A manifest for a game with `count` plain achievements named A00, A01, ..."""
    return {
        "slug": slug,
        "name": slug.replace("-", " ").title(),
        "achievements": [{"api_name": f"A{i:02d}", "name": f"Achievement {i}", "points": points} for i in range(count)],
        **extra,
    }


def write_manifest(directory: Path, document: Any, name: str = "manifest.json") -> Path:
    path = directory / name
    path.write_text(json.dumps(document))
    return path


def staff(
    username: str, group: str | None = None, *, perms: tuple[str, ...] = (), games: tuple[Game, ...] = ()
) -> Player:
    """A staff account: in `group` (a role), with extra `perms` ("app.codename"), and a
    studio member of `games`."""
    from tests.conftest import make_player

    user = make_player(username)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    if group:
        user.groups.add(Group.objects.get(name=group))
    for dotted in perms:
        app_label, codename = dotted.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    for game in games:
        GameMember.objects.create(game=game, player=user)
    return user


def logged_in(user: Player) -> Client:
    """A browser signed in as `user`."""
    client = Client()
    client.force_login(user)
    return client


def clear_of_a_minute_edge(burst_seconds: float = 10.0) -> None:
    """Wait, if need be, for the next minute to begin, so that a burst of requests that
    takes `burst_seconds` or less does not straddle a minute's edge. The limiter's sliding
    window weighs the previous minute's count by the share of it still in the window, and
    just after the edge that weighted count rounds down: one request more would pass."""
    into = time.time() % 60
    if into > 60 - burst_seconds:
        time.sleep(60 - into + 0.1)
