"""Live notifications over WebSockets, driven through the real ASGI application
(`config.asgi.application`: origin check, session and ``?token=`` auth, routing).

Who may open which stream (docs/live.md), and which events reach whom after a write
commits: achievement.unlocked, leaderboard.updated, rival.passed and season.closed.

pytest-asyncio is not installed: each test runs its scenario in one event loop with
`async_to_sync`, and the ORM work inside it goes through `database_sync_to_async`. The
tests are transactional: events leave after commit, and `database_sync_to_async` closes a
connection it finds inside a transaction (so a rolled-back test transaction cannot work).
Runs on either channel layer: Redis pub/sub (`make test`) or in-memory (`make test-lite`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from achievements.models import Unlock
from achievements.services import save_season
from config.asgi import application
from leaderboards.boards import Board
from leaderboards.models import Season
from leaderboards.services import close_season, hide_player
from tests.conftest import achievement, make_player
from tests.helpers import BATCH_URL, PROGRESS_URL, give, post, unlock
from tests.sockets import WAIT, refusal, run, socket
from tracker.models import Friendship, Game, Notification, Player, Privacy

QUIET = 0.3  # seconds of silence that count as "nothing was sent"
UNAUTHORISED, FORBIDDEN, NOT_FOUND = 4401, 4403, 4404

pytestmark = pytest.mark.django_db(transaction=True)


# --- Driving sockets ------------------------------------------------------------------------


@asynccontextmanager
async def stream(path: str, *, cookie: str | None = None) -> AsyncIterator[WebsocketCommunicator]:
    """An accepted socket, past its "subscribed" greeting; closed on the way out."""
    communicator = socket(path, cookie=cookie)
    connected, code = await communicator.connect(timeout=WAIT)
    assert connected, f"{path} was refused with close code {code}"
    try:
        hello = await communicator.receive_json_from(timeout=WAIT)
        assert hello["type"] == "subscribed", hello
        yield communicator
    finally:
        if not communicator.future.done():  # a receive that timed out has stopped the app
            await communicator.disconnect()


def _ours(frame: dict[str, Any], about: set[str] | None) -> bool:
    return about is None or frame.get("data", {}).get("player_id") in about


async def silence(communicator: WebsocketCommunicator, *, about: set[str] | None = None) -> None:
    """Nothing arrives for QUIET seconds (nothing about the players in `about`, if given).

    Redis pub/sub channels are shared by every database of a Redis server, so a test run
    beside ours may publish on the global board's group: `about` filters those out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + QUIET
    while (left := deadline - loop.time()) > 0:
        if await communicator.receive_nothing(timeout=left):
            return
        frame = await communicator.receive_json_from()
        assert not _ours(frame, about), f"unexpected frame: {frame}"


async def frames(
    communicator: WebsocketCommunicator, count: int, *, about: set[str] | None = None, wait: float = WAIT
) -> list[dict[str, Any]]:
    """Exactly `count` frames (about the players in `about`, if given), then silence: no
    duplicate or stray events."""
    received: list[dict[str, Any]] = []
    while len(received) < count:
        frame = await communicator.receive_json_from(timeout=wait)
        if _ours(frame, about):
            received.append(frame)
    await silence(communicator, about=about)
    return received


def only(received: list[dict[str, Any]], event: str, **match: Any) -> dict[str, Any]:
    """The data of the one frame of type `event` whose data has the `match` items."""
    found = [f["data"] for f in received if f["type"] == event and all(f["data"].get(k) == v for k, v in match.items())]
    assert len(found) == 1, (event, match, received)
    return found[0]


# --- Writes that commit -----------------------------------------------------------------------


def server(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@database_sync_to_async
def server_unlocks(key: str, player: Player, game: Game, api_name: str) -> int:
    """A game server unlocks through the API (the request's transaction commits)."""
    response = unlock(server(key), player, achievement(game, api_name))
    assert response.status_code in (200, 201), response.content
    return response.status_code


@database_sync_to_async
def close_committed(season: Season) -> None:
    assert close_season(season=season)


def access(player: Player) -> str:
    return str(RefreshToken.for_user(player).access_token)


def session_of(player: Player) -> str:
    client = Client()
    client.force_login(player)
    return client.cookies["sessionid"].value


# --- Who may connect --------------------------------------------------------------------------


def test_anonymous_cannot_open_the_player_stream(db: Any) -> None:
    async def scenario() -> None:
        assert await refusal("/ws/me/") == UNAUTHORISED

    run(scenario)


def test_an_access_token_opens_the_players_own_stream(alice: Player) -> None:
    token = access(alice)

    async def scenario() -> None:
        async with stream(f"/ws/me/?token={token}") as me:
            await me.send_json_to({"type": "ping"})
            assert await me.receive_json_from(timeout=WAIT) == {"type": "pong"}

    run(scenario)


def _forged(alice: Player, bob: Player) -> str:
    """alice's signed token with its payload swapped for one claiming to be bob."""
    header, _, signature = access(alice).split(".")
    claims = json.loads(base64.urlsafe_b64decode(access(bob).split(".")[1] + "=="))
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{payload}.{signature}"


def _expired(alice: Player) -> str:
    token = AccessToken.for_user(alice)
    token.set_exp(from_time=timezone.now() - timedelta(hours=1))
    return str(token)


BAD_TOKENS: dict[str, Callable[[Player, Player], str]] = {
    "garbage": lambda alice, bob: "not-a-token",
    "expired": lambda alice, bob: _expired(alice),
    "refresh token instead of access": lambda alice, bob: str(RefreshToken.for_user(alice)),
    "forged claims": _forged,
}


def test_a_bad_token_is_refused(alice: Player, bob: Player) -> None:
    tokens = {kind: make(alice, bob) for kind, make in BAD_TOKENS.items()}
    suspended = make_player("suspended")
    tokens["token of a deactivated player"] = access(suspended)
    suspended.is_active = False
    suspended.save(update_fields=["is_active"])

    async def scenario() -> None:
        for kind, token in tokens.items():
            assert await refusal(f"/ws/me/?token={token}") == UNAUTHORISED, kind
            assert await refusal(f"/ws/players/{bob.pk}/?token={token}") == UNAUTHORISED, kind

    run(scenario)


def test_a_logged_in_browser_opens_its_stream_with_the_session_cookie(alice: Player, game: Game, game_key: str) -> None:
    browser = Client()
    browser.force_login(alice)
    cookie = browser.cookies["sessionid"].value

    async def scenario() -> None:
        async with stream("/ws/me/", cookie=cookie) as me:
            await server_unlocks(game_key, alice, game, "FIRST_FLIGHT")
            received = await frames(me, 3)
            assert only(received, "achievement.unlocked")["achievement"]["name"] == "First Flight"
        # After logging out, the old cookie opens nothing.
        await database_sync_to_async(browser.logout)()
        assert await refusal("/ws/me/", cookie=cookie) == UNAUTHORISED

    run(scenario)


def test_a_socket_from_a_foreign_site_is_refused_even_with_a_valid_session(alice: Player) -> None:
    cookie = session_of(alice)

    async def scenario() -> None:
        assert await refusal("/ws/me/", cookie=cookie, origin=b"http://evil.example") == FORBIDDEN
        assert await refusal("/ws/me/", cookie=cookie, origin=b"http://[") == FORBIDDEN  # malformed

    run(scenario)


def test_a_cookie_socket_without_an_origin_header_is_refused(alice: Player) -> None:
    cookie = session_of(alice)

    async def scenario() -> None:
        assert await refusal("/ws/me/", cookie=cookie, origin=None) == FORBIDDEN

    run(scenario)


def test_a_game_client_with_a_token_and_no_origin_header_gets_its_stream(
    alice: Player, game: Game, game_key: str
) -> None:
    """Game clients are not browsers: they send no Origin header (docs/live.md)."""
    token = access(alice)

    async def scenario() -> None:
        communicator = WebsocketCommunicator(application, f"/ws/me/?token={token}", headers=[(b"host", b"testserver")])
        connected, code = await communicator.connect(timeout=WAIT)
        assert connected, code
        assert (await communicator.receive_json_from(timeout=WAIT))["type"] == "subscribed"
        assert await server_unlocks(game_key, alice, game, "FIRST_FLIGHT") == 201
        received = await frames(communicator, 3)
        assert only(received, "achievement.unlocked")["player_id"] == str(alice.pk)
        await communicator.disconnect()

    run(scenario)


def test_a_bad_token_opens_no_private_stream_whatever_the_cookie(alice: Player) -> None:
    """With ?token= the cookie is ignored, so skipping the origin check for token sockets
    gives a foreign page nothing: without a valid token of its own it is refused."""
    cookie = session_of(alice)

    async def scenario() -> None:
        assert await refusal("/ws/me/?token=forged", cookie=cookie, origin=b"http://evil.example") == UNAUTHORISED

    run(scenario)


@pytest.mark.parametrize("privacy", [Privacy.PUBLIC, Privacy.PRIVATE])
def test_another_players_stream_is_never_open(privacy: str, alice: Player) -> None:
    other = make_player("other", region="na", privacy=privacy)
    token, cookie = access(alice), session_of(alice)

    async def scenario() -> None:
        assert await refusal(f"/ws/players/{other.pk}/?token={token}") == FORBIDDEN
        assert await refusal(f"/ws/players/{other.pk}/", cookie=cookie) == FORBIDDEN
        assert await refusal(f"/ws/players/{other.pk}/") == UNAUTHORISED

    run(scenario)


def test_the_players_own_id_stream_carries_their_events(alice: Player, game: Game, game_key: str) -> None:
    token = access(alice)

    async def scenario() -> None:
        async with stream(f"/ws/players/{alice.pk}/?token={token}") as mine:
            await server_unlocks(game_key, alice, game, "ACE_PILOT")
            unlocked = only(await frames(mine, 3), "achievement.unlocked")
            assert unlocked["player_id"] == str(alice.pk)
            assert unlocked["achievement"]["name"] == "Ace Pilot"

    run(scenario)


def test_anyone_may_watch_a_game_board_and_the_global_board(game: Game) -> None:
    async def scenario() -> None:
        for path in (
            f"/ws/leaderboards/{game.pk}/",
            f"/ws/leaderboards/{game.pk}/?region=eu",
            "/ws/leaderboards/global/",
            "/ws/leaderboards/global/?region=asia",
        ):
            async with stream(path) as board:
                await board.send_json_to({"type": "ping"})
                assert await board.receive_json_from(timeout=WAIT) == {"type": "pong"}

    run(scenario)


def test_unknown_boards_seasons_and_regions_are_refused_with_4404(game: Game) -> None:
    async def scenario() -> None:
        for path in (
            f"/ws/leaderboards/{uuid.uuid4()}/",
            "/ws/leaderboards/star-raiders/",  # a slug is not a game id
            f"/ws/leaderboards/{game.pk}/?region=mars",
            "/ws/leaderboards/global/?region=mars",
            f"/ws/seasons/{uuid.uuid4()}/",
            "/ws/seasons/not-a-season/",
        ):
            assert await refusal(path) == NOT_FOUND, path

    run(scenario)


# --- achievement.unlocked -------------------------------------------------------------------


def test_an_unlock_reaches_the_player_with_the_achievement_and_its_time(
    alice: Player, bob: Player, game: Game, game_key: str
) -> None:
    token, bob_token = access(alice), access(bob)

    async def scenario() -> None:
        async with stream(f"/ws/me/?token={token}") as me, stream(f"/ws/me/?token={bob_token}") as bobs:
            assert await server_unlocks(game_key, alice, game, "FIRST_FLIGHT") == 201
            received = await frames(me, 3)
            assert [f["type"] for f in received].count("achievement.unlocked") == 1
            data = only(received, "achievement.unlocked")
            assert data["player_id"] == str(alice.pk)
            shown = data["achievement"]
            assert (shown["name"], shown["points"], shown["api_name"]) == ("First Flight", 10, "FIRST_FLIGHT")
            assert "icon" in shown
            # The same rarity and unlock rate the game's achievement list shows right after.
            listed = await database_sync_to_async(
                lambda: {
                    a["api_name"]: a
                    for a in APIClient().get(f"/api/v1/games/{game.pk}/achievements").json()["achievements"]
                }
            )()
            assert shown["rarity"] == listed["FIRST_FLIGHT"]["rarity"]
            assert shown["unlock_percentage"] == listed["FIRST_FLIGHT"]["unlock_percentage"] == 100.0
            unlocked_at = await database_sync_to_async(
                lambda: Unlock.objects.get(player=alice, achievement__api_name="FIRST_FLIGHT").unlocked_at
            )()
            assert datetime.fromisoformat(data["timestamp"]) == unlocked_at
            # Nobody else hears about alice's unlock on their own stream.
            await silence(bobs)

    run(scenario)


def test_a_duplicate_unlock_sends_nothing(alice: Player, game: Game, game_key: str) -> None:
    token = access(alice)

    async def scenario() -> None:
        async with stream(f"/ws/me/?token={token}") as me:
            assert await server_unlocks(game_key, alice, game, "FIRST_FLIGHT") == 201
            await frames(me, 3)
            assert await server_unlocks(game_key, alice, game, "FIRST_FLIGHT") == 200
            await silence(me)
            # A later, new unlock is the very next thing on the stream.
            assert await server_unlocks(game_key, alice, game, "ACE_PILOT") == 201
            first = await me.receive_json_from(timeout=WAIT)
            assert first["type"] == "achievement.unlocked"
            assert first["data"]["achievement"]["name"] == "Ace Pilot"

    run(scenario)


# --- leaderboard.updated ----------------------------------------------------------------------


def rise(alice: Player, bob: Player, charlie: Player, game: Game, other_game: Game, game_key: str) -> None:
    """bob 50 (na), charlie 25 (eu), alice 10 (eu); alice's 50-point unlock lifts her to
    60, from #3 to #1 on the game's and the global board, and from #2 to #1 in eu."""
    give(bob, achievement(game, "SECRET_ENDING"))
    give(charlie, achievement(game, "ACE_PILOT"))
    give(alice, achievement(game, "FIRST_FLIGHT"))
    token = access(alice)
    ours = {str(p.pk) for p in (alice, bob, charlie)}

    async def scenario() -> None:
        async with (
            stream(f"/ws/me/?token={token}") as me,
            stream(f"/ws/leaderboards/{game.pk}/") as board,
            stream(f"/ws/leaderboards/{game.pk}/?region=eu") as eu,
            stream(f"/ws/leaderboards/{game.pk}/?region=na") as na,
            stream("/ws/leaderboards/global/") as everywhere,
            stream(f"/ws/leaderboards/{other_game.pk}/") as elsewhere,
        ):
            assert await server_unlocks(game_key, alice, game, "SECRET_ENDING") == 201

            expected = {
                "board": "game",
                "game_id": str(game.pk),
                "season_id": None,
                "region": None,
                "player_id": str(alice.pk),
                "username": "alice",
                "points": 60,
                "new_rank": 1,
                "rank_change": -2,
            }
            [watched] = await frames(board, 1)
            assert watched == {"type": "leaderboard.updated", "data": expected}

            mine = await frames(me, 3)
            assert only(mine, "leaderboard.updated", board="game") == expected
            overall = only(mine, "leaderboard.updated", board="global")
            assert overall == {**expected, "board": "global", "game_id": None}
            [global_watched] = await frames(everywhere, 1, about=ours)
            assert global_watched["data"] == overall

            [regional] = await frames(eu, 1)
            assert regional["data"] == {**expected, "region": "eu", "rank_change": -1}
            await silence(na)  # alice is not on the na board
            await silence(elsewhere)

    run(scenario)


def test_a_rise_reaches_the_player_and_every_watcher_of_the_boards_it_is_on(
    alice: Player, bob: Player, charlie: Player, game: Game, other_game: Game, game_key: str
) -> None:
    rise(alice, bob, charlie, game, other_game, game_key)


def test_a_rise_is_announced_with_ranks_from_the_redis_index(
    rank_index: Any, alice: Player, bob: Player, charlie: Player, game: Game, other_game: Game, game_key: str
) -> None:
    rise(alice, bob, charlie, game, other_game, game_key)
    assert rank_index.standing(Board.game(game.pk), str(alice.pk)).points == 60


def test_a_first_unlock_ranks_the_player_with_no_rank_change(alice: Player, game: Game, game_key: str) -> None:
    async def scenario() -> None:
        async with stream(f"/ws/leaderboards/{game.pk}/") as board:
            await server_unlocks(game_key, alice, game, "ACE_PILOT")
            [event] = await frames(board, 1)
            assert (event["data"]["new_rank"], event["data"]["rank_change"], event["data"]["points"]) == (1, None, 25)

    run(scenario)


def test_a_batch_announces_each_unlock_and_one_move_per_board(
    alice: Player, bob: Player, game: Game, game_key: str
) -> None:
    give(bob, achievement(game, "ACE_PILOT"))  # bob 25
    token = access(alice)

    async def scenario() -> None:
        async with stream(f"/ws/me/?token={token}") as me, stream(f"/ws/leaderboards/{game.pk}/") as board:
            items = [
                {"player_id": str(alice.pk), "achievement": name}
                for name in ("FIRST_FLIGHT", "ACE_PILOT", "FIRST_FLIGHT")
            ]
            response = await database_sync_to_async(lambda: post(server(game_key), BATCH_URL, {"unlocks": items}))()
            assert response.status_code == 200, response.content
            assert response.json()["created"] == 2

            mine = await frames(me, 4)  # the repeated item announces nothing
            names = sorted(f["data"]["achievement"]["name"] for f in mine if f["type"] == "achievement.unlocked")
            assert names == ["Ace Pilot", "First Flight"]
            assert only(mine, "leaderboard.updated", board="game")["points"] == 35
            [moved] = await frames(board, 1)
            assert (moved["data"]["points"], moved["data"]["new_rank"], moved["data"]["rank_change"]) == (35, 1, None)

    run(scenario)


def test_progress_announces_only_when_it_reaches_the_target(alice: Player, game: Game, game_key: str) -> None:
    token = access(alice)

    async def report(value: int) -> None:
        body = {"player_id": str(alice.pk), "achievement": "KILL_100", "value": value}
        response = await database_sync_to_async(lambda: post(server(game_key), PROGRESS_URL, body))()
        assert response.status_code in (200, 201), response.content

    async def scenario() -> None:
        async with stream(f"/ws/me/?token={token}") as me:
            await report(40)
            await silence(me)
            await report(100)
            unlocked = only(await frames(me, 3), "achievement.unlocked")
            assert (unlocked["achievement"]["name"], unlocked["achievement"]["points"]) == ("Centurion", 15)
            await report(120)
            await silence(me)

    run(scenario)


@pytest.mark.parametrize("privacy", [Privacy.PRIVATE, Privacy.FRIENDS])
def test_a_non_public_players_name_is_masked_on_watched_boards(
    privacy: str, bob: Player, game: Game, game_key: str
) -> None:
    hidden = make_player("dana", region="eu", privacy=privacy)
    give(bob, achievement(game, "FIRST_FLIGHT"))
    bob_token = access(bob)

    async def scenario() -> None:
        async with (
            stream(f"/ws/leaderboards/{game.pk}/") as board,
            stream("/ws/leaderboards/global/?region=eu") as regional,
            stream(f"/ws/me/?token={bob_token}") as bobs,
        ):
            await server_unlocks(game_key, hidden, game, "ACE_PILOT")
            [event] = await frames(board, 1)
            assert event["data"]["username"] == "Anonymous player"
            assert event["data"]["player_id"] is None  # not identifiable by id either
            [event] = await frames(regional, 1, about={None, str(bob.pk)})
            assert event["data"]["username"] == "Anonymous player"
            assert "dana" not in json.dumps(event) and str(hidden.pk) not in json.dumps(event)
            # Being passed by a stranger is no rival alert.
            await silence(bobs)

    run(scenario)


def test_a_player_hidden_from_boards_moves_no_watched_board(
    alice: Player, bob: Player, game: Game, game_key: str
) -> None:
    Friendship.objects.create(requester=alice, addressee=bob, status=Friendship.Status.ACCEPTED)
    give(alice, achievement(game, "FIRST_FLIGHT"))
    hide_player(player=bob, actor=None, reason="cheating")
    alice_token, bob_token = access(alice), access(bob)

    async def scenario() -> None:
        async with (
            stream(f"/ws/leaderboards/{game.pk}/") as board,
            stream("/ws/leaderboards/global/?region=na") as regional,
            stream(f"/ws/me/?token={bob_token}") as bobs,
            stream(f"/ws/me/?token={alice_token}") as alices,
        ):
            await server_unlocks(game_key, bob, game, "SECRET_ENDING")
            # bob still hears of his own unlock, and nothing about ranks he does not have.
            [only_frame] = await frames(bobs, 1)
            assert only_frame["type"] == "achievement.unlocked"
            await silence(board)
            await silence(regional, about={str(bob.pk)})
            await silence(alices)  # and a hidden player passes no friend

    run(scenario)


# --- rival.passed -----------------------------------------------------------------------------


def test_a_friend_passing_the_player_sends_a_rival_alert(
    alice: Player, bob: Player, charlie: Player, game: Game, game_key: str
) -> None:
    Friendship.objects.create(requester=alice, addressee=bob, status=Friendship.Status.ACCEPTED)
    give(alice, achievement(game, "FIRST_FLIGHT"))  # alice 10
    give(bob, achievement(game, "FIRST_FLIGHT"))  # bob 10: level, not past her yet
    token = access(alice)

    async def scenario() -> None:
        async with stream(f"/ws/me/?token={token}") as me:
            # charlie is no friend of alice: passing her tells her nothing.
            await server_unlocks(game_key, charlie, game, "ACE_PILOT")
            await silence(me)

            await server_unlocks(game_key, bob, game, "ACE_PILOT")  # bob 10 -> 35
            received = await frames(me, 2)  # and feed.updated: her friend did something
            assert only(received, "feed.updated") == {}
            [alert] = [frame for frame in received if frame["type"] == "rival.passed"]
            assert alert == {
                "type": "rival.passed",
                "data": {
                    "game_id": str(game.pk),
                    "game_name": "Star Raiders",
                    "game_slug": "star-raiders",
                    "rival_id": str(bob.pk),
                    "rival_username": "bob",
                    "rival_points": 35,
                    "your_points": 10,
                },
            }
            # Recorded for the dashboard too.
            kinds = await database_sync_to_async(
                lambda: list(Notification.objects.filter(player=alice).values_list("kind", "payload"))
            )()
            assert kinds == [(Notification.Kind.RIVAL, alert["data"])]

            # Already ahead of her, bob passes nobody again.
            await server_unlocks(game_key, bob, game, "KILL_100")
            assert [frame["type"] for frame in await frames(me, 1)] == ["feed.updated"]

    run(scenario)


# --- season.closed ----------------------------------------------------------------------------


def test_season_watchers_see_its_board_move_and_its_close(
    alice: Player, bob: Player, game: Game, game_key: str
) -> None:
    now = timezone.now().replace(microsecond=0)
    season = save_season(
        game=game, name="Spring Cup", starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1)
    )
    closed_elsewhere = save_season(
        game=game, name="Other Cup", starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1)
    )

    async def scenario() -> None:
        async with (
            stream(f"/ws/seasons/{season.pk}/") as watcher,
            stream(f"/ws/seasons/{closed_elsewhere.pk}/") as other,
        ):
            await server_unlocks(game_key, alice, game, "ACE_PILOT")
            [moved] = await frames(watcher, 1)
            assert moved["type"] == "leaderboard.updated"
            assert {
                k: moved["data"][k] for k in ("board", "season_id", "game_id", "player_id", "points", "new_rank")
            } == {
                "board": "season",
                "season_id": str(season.pk),
                "game_id": str(game.pk),
                "player_id": str(alice.pk),
                "points": 25,
                "new_rank": 1,
            }
            await frames(other, 1)  # the other season's board moved too
            await server_unlocks(game_key, bob, game, "FIRST_FLIGHT")
            await frames(watcher, 1)
            await frames(other, 1)

            before = timezone.now()
            await close_committed(season)
            [closed] = await frames(watcher, 1)
            assert closed["type"] == "season.closed"
            data = closed["data"]
            assert (data["season_id"], data["game_id"], data["name"], data["players"]) == (
                str(season.pk),
                str(game.pk),
                "Spring Cup",
                2,
            )
            assert data["top"] == [
                {"rank": 1, "player_id": str(alice.pk), "username": "alice", "points": 25},
                {"rank": 2, "player_id": str(bob.pk), "username": "bob", "points": 10},
            ]
            assert before <= datetime.fromisoformat(data["closed_at"]) <= timezone.now()
            await silence(other)

    run(scenario)


def test_a_season_stream_refuses_an_unknown_region(game: Game) -> None:
    now = timezone.now()
    season = save_season(game=game, name="Cup", starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1))

    async def scenario() -> None:
        assert await refusal(f"/ws/seasons/{season.pk}/?region=mars") == NOT_FOUND

    run(scenario)


def test_a_regional_seasons_own_region_stream_hears_its_board_move(alice: Player, game: Game, game_key: str) -> None:
    now = timezone.now()
    season = save_season(
        game=game, name="EU Cup", region="eu", starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1)
    )

    async def scenario() -> None:
        async with (
            stream(f"/ws/seasons/{season.pk}/") as whole,
            stream(f"/ws/seasons/{season.pk}/?region=eu") as eu,
        ):
            await server_unlocks(game_key, alice, game, "ACE_PILOT")
            [moved] = await frames(whole, 1)
            assert (moved["data"]["board"], moved["data"]["player_id"]) == ("season", str(alice.pk))
            [moved_in_eu] = await frames(eu, 1, wait=1.0)
            assert moved_in_eu["data"]["player_id"] == str(alice.pk)

    run(scenario)
