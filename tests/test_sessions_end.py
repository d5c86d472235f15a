"""Sessions that end when they should (docs/api.md, "Logging out"; docs/live.md, "Close codes").

Logging out one device or every device, a password change by any road, and deactivation
end the player's tokens at once (refresh and access), and close their open sockets
promptly; a token socket closes when its token expires; refusals arrive as close codes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken
from websockets.asyncio import client as websockets_client
from websockets.exceptions import ConnectionClosed

from tests.conftest import PASSWORD, Api
from tests.helpers import assert_error, post
from tests.servers import Server, daphne, running
from tests.sockets import WAIT, refusal, run, socket
from tracker.models import Game, Player
from tracker.services import player_deactivate, player_password_set, player_sessions_end

TOKEN_URL = "/api/v1/auth/token/"
REFRESH_URL = "/api/v1/auth/token/refresh/"
LOGOUT_URL = "/api/v1/auth/logout"
PRIVATE_READ = "/api/v1/friends"  # any endpoint that needs a player
NEW_PASSWORD = "an entirely new passphrase 7"
UNAUTHENTICATED, FORBIDDEN, NOT_FOUND = 4401, 4403, 4404
PROMPTLY = 2.0  # seconds within which a revoked socket must be closed


def sign_in(username: str = "alice", password: str = PASSWORD) -> dict[str, str]:
    """A device signs in: its access and refresh tokens."""
    response = post(APIClient(), TOKEN_URL, {"username": username, "password": password})
    assert response.status_code == 200, response.content
    return response.json()


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def refreshes(refresh: str) -> Any:
    return post(APIClient(), REFRESH_URL, {"refresh": refresh})


def reads(access: str) -> Any:
    return bearer(access).get(PRIVATE_READ)


def browser_of(player: Player) -> Client:
    browser = Client()
    browser.force_login(player)
    return browser


def signed_in(browser: Client) -> bool:
    return browser.get("/settings/").status_code == 200


def change_password_on_the_page(browser: Client) -> None:
    response = browser.post(
        "/accounts/password/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.content


# --- Logging out through the API ------------------------------------------------------------


def test_logging_out_a_device_ends_its_refresh_token_and_no_other(alice: Player) -> None:
    phone, console = sign_in(), sign_in()

    response = post(APIClient(), LOGOUT_URL, {"refresh": phone["refresh"]})

    assert response.status_code == 204, response.content
    assert_error(refreshes(phone["refresh"]), 401, "token_not_valid")
    assert refreshes(console["refresh"]).status_code == 200
    # Retrying the logout (a lost answer) is harmless.
    assert post(APIClient(), LOGOUT_URL, {"refresh": phone["refresh"]}).status_code == 204


def test_a_device_may_log_out_with_its_access_token_too(alice: Player) -> None:
    phone = sign_in()

    response = post(bearer(phone["access"]), LOGOUT_URL, {"refresh": phone["refresh"]})

    assert response.status_code == 204, response.content
    assert_error(refreshes(phone["refresh"]), 401)


def test_logging_out_everywhere_ends_every_refresh_and_access_token(alice: Player, bob: Player) -> None:
    phone, console = sign_in(), sign_in()
    bobs = sign_in("bob")

    response = post(bearer(phone["access"]), LOGOUT_URL, {"all": True})

    assert response.status_code == 204, response.content
    for device in (phone, console):
        assert_error(refreshes(device["refresh"]), 401, "sessions_ended")
        assert_error(reads(device["access"]), 401, "sessions_ended")
    # Nobody else is logged out, and signing in again works at once.
    assert reads(bobs["access"]).status_code == 200
    again = sign_in()
    assert reads(again["access"]).status_code == 200
    assert refreshes(again["refresh"]).status_code == 200


@pytest.mark.parametrize("refresh", ["0", "own", "bobs"])
def test_logging_out_everywhere_ends_every_token_whatever_refresh_is_sent_beside_it(
    alice: Player, bob: Player, refresh: str
) -> None:
    phone, console, bobs = sign_in(), sign_in(), sign_in("bob")
    sent = {"0": "0", "own": console["refresh"], "bobs": bobs["refresh"]}[refresh]

    response = post(bearer(phone["access"]), LOGOUT_URL, {"all": True, "refresh": sent})

    assert response.status_code == 204, response.content
    for device in (phone, console):
        assert_error(refreshes(device["refresh"]), 401, "sessions_ended")
    assert refreshes(bobs["refresh"]).status_code == 200  # all means the caller's, nobody else's


def test_logging_out_everywhere_keeps_the_browser_session(alice: Player) -> None:
    browser = browser_of(alice)

    player_sessions_end(player=alice)

    assert signed_in(browser)


def test_logout_needs_credentials(alice: Player) -> None:
    assert_error(post(APIClient(), LOGOUT_URL, {}), 401)
    assert_error(post(APIClient(), LOGOUT_URL, {"all": True}), 401)
    assert_error(post(bearer("not-a-token"), LOGOUT_URL, {"all": True}), 401)


def test_logout_refuses_what_is_not_one_of_the_callers_refresh_tokens(
    api: Api, alice: Player, bob: Player, game_key: str
) -> None:
    alices, bobs = sign_in(), sign_in("bob")
    as_alice = bearer(alices["access"])

    assert_error(post(as_alice, LOGOUT_URL, {"refresh": bobs["refresh"]}), 403, "forbidden")
    error = assert_error(post(as_alice, LOGOUT_URL, {"refresh": alices["access"]}), 400, "invalid")
    assert "refresh" in error["fields"]
    assert_error(post(as_alice, LOGOUT_URL, {"refresh": "not-a-token"}), 400, "invalid")
    assert_error(post(as_alice, LOGOUT_URL, {}), 400, "invalid")
    assert_error(post(as_alice, LOGOUT_URL, {"everything": True}), 400, "invalid")
    assert_error(post(api.as_key(game_key), LOGOUT_URL, {"refresh": alices["refresh"]}), 403, "forbidden")
    # None of that ended anything.
    assert refreshes(bobs["refresh"]).status_code == 200
    assert refreshes(alices["refresh"]).status_code == 200


def test_the_schema_documents_logout(api: Api, db: Any) -> None:
    schema = api.anonymous().get("/api/schema/", {"format": "json"}).json()

    operation = schema["paths"]["/api/v1/auth/logout"]["post"]
    assert {"204", "400", "401", "403"} <= set(operation["responses"])
    assert "requestBody" in operation


# --- Password changes -----------------------------------------------------------------------


def test_a_password_change_on_the_page_ends_every_token_and_every_other_browser(alice: Player) -> None:
    phone = sign_in()
    here, elsewhere = browser_of(alice), browser_of(alice)

    change_password_on_the_page(here)

    assert_error(refreshes(phone["refresh"]), 401, "password_changed")
    assert_error(reads(phone["access"]), 401, "password_changed")
    assert signed_in(here)
    assert not signed_in(elsewhere)
    fresh = sign_in(password=NEW_PASSWORD)
    assert reads(fresh["access"]).status_code == 200
    assert refreshes(fresh["refresh"]).status_code == 200


def test_a_password_set_in_the_admin_ends_every_token(alice: Player) -> None:
    phone = sign_in()
    admin = Player.objects.create_superuser("root", password=PASSWORD)

    response = browser_of(admin).post(
        f"/admin/tracker/player/{alice.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )

    assert response.status_code == 302, response.content
    assert_error(refreshes(phone["refresh"]), 401, "password_changed")
    assert_error(reads(phone["access"]), 401, "password_changed")


def test_a_password_set_by_any_other_road_ends_every_token_too(alice: Player) -> None:
    """`manage.py changepassword`, the shell: no service runs, the rule still holds."""
    phone = sign_in()

    alice.set_password(NEW_PASSWORD)
    alice.save()

    assert_error(refreshes(phone["refresh"]), 401, "password_changed")
    assert_error(reads(phone["access"]), 401, "password_changed")


# --- Deactivation ---------------------------------------------------------------------------


def test_a_deactivated_player_is_refused_with_any_token_and_stays_out_after_reactivation(alice: Player) -> None:
    phone = sign_in()
    browser = browser_of(alice)

    player_deactivate(player=alice)

    assert_error(refreshes(phone["refresh"]), 401)
    assert_error(reads(phone["access"]), 401, "user_inactive")
    assert not signed_in(browser)
    assert_error(post(APIClient(), TOKEN_URL, {"username": "alice", "password": PASSWORD}), 401)
    # Reactivated, the account starts afresh: the old tokens do not come back.
    alice.is_active = True
    alice.save(update_fields=["is_active"])
    assert_error(refreshes(phone["refresh"]), 401, "sessions_ended")
    assert_error(reads(phone["access"]), 401, "sessions_ended")
    assert reads(sign_in()["access"]).status_code == 200


def test_deactivating_in_the_admin_ends_every_token(alice: Player) -> None:
    phone = sign_in()
    admin = Player.objects.create_superuser("root", password=PASSWORD)
    joined = timezone.now()
    form = {
        "username": "alice",
        "email": "alice@example.com",
        "region": "eu",
        "privacy": "public",
        # is_active left out: the checkbox is cleared
        "date_joined_0": joined.strftime("%Y-%m-%d"),
        "date_joined_1": joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
    }

    response = browser_of(admin).post(f"/admin/tracker/player/{alice.pk}/change/", form)

    assert response.status_code == 302, response.content
    alice.refresh_from_db()
    assert not alice.is_active
    assert alice.session_generation == 1
    assert_error(refreshes(phone["refresh"]), 401)
    assert_error(reads(phone["access"]), 401)


# --- Sockets --------------------------------------------------------------------------------


@pytest.fixture(params=["configured", "in-memory"])
def channel_layer(request: pytest.FixtureRequest, settings: Any) -> str:
    """Every socket test runs on the configured layer (Redis pub/sub when REDIS_URL is set)
    and on the in-memory one (the laptop default)."""
    if request.param == "in-memory":
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return request.param


async def opened(path: str, *, cookie: str | None = None) -> WebsocketCommunicator:
    communicator = socket(path, cookie=cookie)
    connected, code = await communicator.connect(timeout=WAIT)
    assert connected, code
    assert (await communicator.receive_json_from(timeout=WAIT))["type"] == "subscribed"
    return communicator


async def closed_with(communicator: WebsocketCommunicator, *, within: float) -> int:
    """The code the server closes the socket with, within `within` seconds."""
    message = await communicator.receive_output(timeout=within)
    assert message["type"] == "websocket.close", message
    await communicator.disconnect(code=message["code"], timeout=WAIT)
    return message["code"]


async def still_open(communicator: WebsocketCommunicator) -> None:
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=WAIT) == {"type": "pong"}


def short_lived(player: Player, seconds: int) -> str:
    token = AccessToken.for_user(player)
    token.set_exp(lifetime=timedelta(seconds=seconds))
    return str(token)


# Sockets see only what committed: the tests that open them are transactional.
sockets = pytest.mark.django_db(transaction=True)


@sockets
def test_a_token_socket_closes_with_4401_when_its_token_expires(channel_layer: str, alice: Player) -> None:
    token = short_lived(alice, 2)
    expires = AccessToken(token, verify=False)["exp"]

    async def scenario() -> None:
        me = await opened(f"/ws/me/?token={token}")
        await still_open(me)
        assert await closed_with(me, within=expires - time.time() + 1.5) == UNAUTHENTICATED
        assert time.time() >= expires - 0.2  # not before its time

    run(scenario)


@sockets
def test_a_password_change_closes_the_players_sockets_promptly_and_no_one_elses(
    channel_layer: str, alice: Player, bob: Player
) -> None:
    token, bobs_token = sign_in()["access"], sign_in("bob")["access"]
    here, elsewhere = browser_of(alice), browser_of(alice)
    elsewhere_cookie = elsewhere.cookies["sessionid"].value

    async def scenario() -> None:
        game_client = await opened(f"/ws/me/?token={token}")
        other_browser = await opened("/ws/me/", cookie=elsewhere_cookie)
        bobs = await opened(f"/ws/me/?token={bobs_token}")

        await database_sync_to_async(change_password_on_the_page)(here)

        assert await closed_with(game_client, within=PROMPTLY) == UNAUTHENTICATED
        assert await closed_with(other_browser, within=PROMPTLY) == UNAUTHENTICATED
        await still_open(bobs)
        await bobs.disconnect()
        # The browser that changed it is still signed in: its next page's socket opens.
        mine = await opened("/ws/me/", cookie=here.cookies["sessionid"].value)
        await mine.disconnect()
        # The ended ones are refused.
        assert await refusal(f"/ws/me/?token={token}") == UNAUTHENTICATED
        assert await refusal("/ws/me/", cookie=elsewhere_cookie) == UNAUTHENTICATED

    run(scenario)


@sockets
def test_logging_out_everywhere_closes_token_sockets_and_keeps_the_browsers(channel_layer: str, alice: Player) -> None:
    phone = sign_in()
    browser_cookie = browser_of(alice).cookies["sessionid"].value

    async def scenario() -> None:
        game_client = await opened(f"/ws/me/?token={phone['access']}")
        browser = await opened("/ws/me/", cookie=browser_cookie)

        response = await database_sync_to_async(lambda: post(bearer(phone["access"]), LOGOUT_URL, {"all": True}))()
        assert response.status_code == 204

        assert await closed_with(game_client, within=PROMPTLY) == UNAUTHENTICATED
        await still_open(browser)
        await browser.disconnect()

    run(scenario)


@sockets
def test_deactivation_closes_every_socket_of_the_player(channel_layer: str, alice: Player) -> None:
    token = sign_in()["access"]
    cookie = browser_of(alice).cookies["sessionid"].value

    async def scenario() -> None:
        game_client = await opened(f"/ws/me/?token={token}")
        browser = await opened("/ws/me/", cookie=cookie)

        await database_sync_to_async(player_deactivate)(player=alice)

        assert await closed_with(game_client, within=PROMPTLY) == UNAUTHENTICATED
        assert await closed_with(browser, within=PROMPTLY) == UNAUTHENTICATED

    run(scenario)


@sockets
def test_refusals_are_close_codes_after_the_handshake(alice: Player, bob: Player, game: Game) -> None:
    cookie = browser_of(alice).cookies["sessionid"].value
    stale = sign_in()["access"]
    player_password_set(player=alice, password=NEW_PASSWORD)
    token = sign_in(password=NEW_PASSWORD)["access"]

    async def scenario() -> None:
        assert await refusal("/ws/me/") == UNAUTHENTICATED
        assert await refusal("/ws/me/?token=not-a-token") == UNAUTHENTICATED
        assert await refusal(f"/ws/me/?token={stale}") == UNAUTHENTICATED
        assert await refusal(f"/ws/players/{bob.pk}/?token={token}") == FORBIDDEN
        assert await refusal("/ws/me/", cookie=cookie, origin=b"http://evil.example") == FORBIDDEN
        assert await refusal("/ws/me/", cookie=cookie, origin=None) == FORBIDDEN
        assert await refusal(f"/ws/leaderboards/{alice.pk}/") == NOT_FOUND

    run(scenario)


# --- Through a real Daphne ------------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running({"daphne": daphne}, tmp_path) as (started,):
        yield started


async def close_code(connection: Any, *, within: float = WAIT) -> int:
    """Frames until the server closes the connection; its close code."""
    try:
        async with asyncio.timeout(within):
            while True:
                await connection.recv()
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "closed without a close frame"
        return closed.rcvd.code
    raise AssertionError("unreachable")


@sockets
def test_daphne_refuses_with_close_codes_and_closes_revoked_sockets(
    server: Server, alice: Player, bob: Player, game: Game
) -> None:
    ours = server.http
    cookie = {"Cookie": f"sessionid={browser_of(alice).cookies['sessionid'].value}"}
    token = sign_in()["access"]

    async def refused(path: str, **options: Any) -> int:
        async with websockets_client.connect(f"{server.ws}{path}", **options) as connection:
            return await close_code(connection)

    async def scenario() -> None:
        assert await refused("/ws/me/?token=not-a-token") == UNAUTHENTICATED
        assert await refused("/ws/me/", origin=ours) == UNAUTHENTICATED
        assert await refused("/ws/me/", origin="http://evil.example", additional_headers=cookie) == FORBIDDEN
        assert await refused(f"/ws/players/{bob.pk}/?token={token}") == FORBIDDEN
        assert await refused(f"/ws/leaderboards/{bob.pk}/", origin=ours) == NOT_FOUND

        async with (
            websockets_client.connect(f"{server.ws}/ws/me/?token={token}") as game_client,
            websockets_client.connect(f"{server.ws}/ws/me/", origin=ours, additional_headers=cookie) as browser,
        ):
            for connection in (game_client, browser):
                assert '"subscribed"' in await asyncio.wait_for(connection.recv(), WAIT)
            await database_sync_to_async(player_password_set)(player=alice, password=NEW_PASSWORD)
            assert await close_code(game_client, within=PROMPTLY) == UNAUTHENTICATED
            assert await close_code(browser, within=PROMPTLY) == UNAUTHENTICATED

    try:
        run(scenario)  # the password is set on this thread's database connection, as everywhere here
    except (TimeoutError, AssertionError):
        print(server.output())
        raise
