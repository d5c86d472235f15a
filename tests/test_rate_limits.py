"""Rate limits (infra/ratelimits.py, docs/rate-limits.md), at the production values.

The suite runs with generous budgets (tests/settings.py); every test here puts the
production defaults back first, so what they prove is what a deployment gets: a player 100
requests a minute, a game key its own limit, anonymous callers 60 a minute per address,
sign-ins 10 a minute per address and 5 per username, sign-ups 10 an hour per address.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

import config.settings as production
from achievements.models import Source, Unlock
from achievements.services import revoke_unlock, unlock_achievement
from infra import memo, ratelimits
from players import sharecard
from tests.conftest import PASSWORD, Api, achievement, make_player
from tests.helpers import assert_error, clear_of_a_minute_edge
from tests.servers import RATE_LIMIT_SETTINGS, OwnRedis, Server, free_port, gunicorn, running
from tracker.models import Game, GameKey, Player, Privacy
from tracker.services import game_key_create

TOKEN_URL = "/api/v1/auth/token/"
REFRESH_URL = "/api/v1/auth/token/refresh/"
REGISTER_URL = "/api/v1/players/"
GAMES_URL = "/api/v1/games/"


@pytest.fixture(autouse=True)
def production_limits(settings: Any) -> Iterator[None]:
    """The defaults of config/settings.py, and no count left from an earlier test."""
    for name in RATE_LIMIT_SETTINGS:
        setattr(settings, name, getattr(production, name))
    ratelimits.reset()
    clear_of_a_minute_edge()
    yield
    ratelimits.reset()


def assert_throttled(response: Response) -> int:
    """The API's 429: the one error shape, code "throttled", and Retry-After in whole
    seconds; returns those seconds."""
    assert_error(response, 429, "throttled")
    retry_after = int(response["Retry-After"])
    assert retry_after >= 1
    return retry_after


def assert_page_throttled(response: Any) -> int:
    assert response.status_code == 429, response.content[:200]
    assert response["Content-Type"].startswith("text/plain")
    retry_after = int(response["Retry-After"])
    assert retry_after >= 1
    assert f"{retry_after} seconds" in response.content.decode()
    return retry_after


def statuses(responses: list[Any]) -> Counter[int]:
    return Counter(response.status_code for response in responses)


def sign_in(password: str, *, username: str = "alice", address: str = "127.0.0.1") -> Response:
    body = {"username": username, "password": password}
    return APIClient().post(TOKEN_URL, body, format="json", REMOTE_ADDR=address)


# --- Players, game keys, anonymous callers -------------------------------------------------


def test_a_player_gets_100_requests_a_minute_and_then_a_429_with_retry_after(api: Api, alice: Player) -> None:
    client = api.as_player(alice)
    url = f"/api/v1/players/{alice.pk}/dashboard"

    answered = [client.get(url) for _ in range(100)]
    refused = client.get(url)

    assert statuses(answered) == {200: 100}
    assert assert_throttled(refused) <= 61  # within the minute's window
    assert api.as_player(make_player("dave")).get(url).status_code == 200  # dave has his own budget


def test_a_players_pages_and_api_calls_share_one_budget(api: Api, alice: Player) -> None:
    client = api.as_player(alice)
    for _ in range(100):
        assert client.get(f"/api/v1/players/{alice.pk}/dashboard").status_code == 200
    browser = Client()
    browser.force_login(alice)

    assert_page_throttled(browser.get("/dashboard/"))


def test_a_game_key_without_its_own_limit_gets_the_game_server_default(
    api: Api, game: Game, game_key: str, alice: Player
) -> None:
    client = api.as_key(game_key)

    answered = [client.get(GAMES_URL) for _ in range(150)]

    assert statuses(answered) == {200: 150}  # half as much again as a player may
    key = GameKey.objects.get(prefix=game_key.partition(".")[0])
    assert ratelimits.caller_bucket(SimpleNamespace(auth=key)).rate == "6000/minute"  # type: ignore[arg-type]


def test_a_game_keys_own_limit_applies_above_a_players(api: Api, game: Game) -> None:
    client = api.as_key(game_key_create(game=game, requests_per_minute=120))

    answered = [client.get(GAMES_URL) for _ in range(120)]
    refused = client.get(GAMES_URL)

    assert statuses(answered) == {200: 120}
    assert_throttled(refused)


def test_a_keys_limit_is_set_in_the_admin_and_applies_to_its_next_requests(api: Api, game: Game, game_key: str) -> None:
    staff = make_player("root")
    staff.is_staff = staff.is_superuser = True
    staff.save(update_fields=["is_staff", "is_superuser"])
    admin = Client()
    admin.force_login(staff)
    key = GameKey.objects.get(prefix=game_key.partition(".")[0])
    page = f"/admin/tracker/gamekey/{key.pk}/change/"
    assert 'name="requests_per_minute"' in admin.get(page).content.decode()

    saved = admin.post(page, {"name": key.name, "game": str(game.pk), "requests_per_minute": "2"})

    assert saved.status_code == 302, saved.content.decode()[-2000:]
    memo.clear_all()  # as every process does within CATALOGUE_CACHE_SECONDS
    client = api.as_key(game_key)
    assert statuses([client.get(GAMES_URL) for _ in range(2)]) == {200: 2}
    assert_throttled(client.get(GAMES_URL))


def test_a_game_key_with_a_low_limit_is_held_to_it_and_other_keys_are_not(api: Api, game: Game, game_key: str) -> None:
    client = api.as_key(game_key_create(game=game, requests_per_minute=3))

    answered = [client.get(GAMES_URL) for _ in range(3)]
    refused = client.get(GAMES_URL)

    assert statuses(answered) == {200: 3}
    assert_throttled(refused)
    assert api.as_key(game_key).get(GAMES_URL).status_code == 200


def test_a_game_keys_process_asks_redis_once_per_lease_of_its_budget(api: Api, game: Game, meter: Any) -> None:
    client = api.as_key(game_key_create(game=game, requests_per_minute=6000))  # leases of 60

    with meter.measure() as sixty:
        answered = [client.get(GAMES_URL) for _ in range(60)]
    with meter.measure() as one_more:
        assert client.get(GAMES_URL).status_code == 200

    assert statuses(answered) == {200: 60}
    assert (sixty.limiter, one_more.limiter) == (1, 1)


def test_game_keys_leasing_from_two_processes_never_get_more_than_the_limit(db: Any) -> None:
    clear_of_a_minute_edge()
    bucket = ratelimits.Bucket("game-key", "two-processes", "1000/minute")  # leases of 10
    first, second = (ratelimits.Limiter(settings.RATE_LIMIT_REDIS_URL, 1.0) for _ in range(2))

    allowed = Counter[int]()
    for _ in range(600):
        for n, process in enumerate((first, second)):
            allowed[n] += process.charge([bucket]).allowed

    # Near the limit each process charges one request at a time; what the other holds
    # unspent in its lease (fewer than 10) is refused to this one.
    assert 1000 - 2 * 9 <= allowed.total() <= 1000
    assert not first.charge([bucket]).allowed and not second.charge([bucket]).allowed


def test_anonymous_callers_get_60_requests_a_minute_per_address(db: Any) -> None:
    client = APIClient()

    answered = [client.get(GAMES_URL, REMOTE_ADDR="203.0.113.7") for _ in range(60)]
    refused = client.get(GAMES_URL, REMOTE_ADDR="203.0.113.7")
    # Without a trusted proxy, a client cannot pick its own address.
    spoofed = client.get(GAMES_URL, REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.1")

    assert statuses(answered) == {200: 60}
    assert_throttled(refused)
    assert_throttled(spoofed)
    assert client.get(GAMES_URL, REMOTE_ADDR="203.0.113.8").status_code == 200


def test_behind_a_trusted_proxy_the_address_it_saw_is_the_callers(settings: Any, db: Any) -> None:
    settings.RATE_LIMIT_TRUSTED_PROXIES = 1
    client = APIClient()

    def get(forwarded: str) -> Response:
        return client.get(GAMES_URL, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)

    answered = [get(f"made-up-{i}, 203.0.113.7") for i in range(60)]

    assert statuses(answered) == {200: 60}
    assert_throttled(get("anything else, 203.0.113.7"))  # what the client wrote is ignored
    assert get("203.0.113.7, 203.0.113.9").status_code == 200  # another client of the proxy


def test_ipv6_callers_are_counted_by_their_64_network(db: Any) -> None:
    client = APIClient()
    for i in range(60):
        assert client.get(GAMES_URL, REMOTE_ADDR=f"2001:db8:1:2::{i + 1:x}").status_code == 200

    assert_throttled(client.get(GAMES_URL, REMOTE_ADDR="2001:db8:1:2:ffff::1"))
    assert client.get(GAMES_URL, REMOTE_ADDR="2001:db8:1:3::1").status_code == 200


def test_health_probes_are_never_limited(db: Any) -> None:
    client = Client()
    for _ in range(60):
        client.get(GAMES_URL)

    assert statuses([client.get("/healthz") for _ in range(70)]) == {200: 70}
    assert client.get("/readyz").status_code != 429


# --- Signing in and up ---------------------------------------------------------------------


def test_after_5_wrong_passwords_even_the_right_one_is_refused_for_the_minute(alice: Player) -> None:
    wrong = [sign_in("not it") for _ in range(5)]
    right = sign_in(PASSWORD)

    assert statuses(wrong) == {401: 5}
    assert assert_throttled(right) <= 61
    # Guesses spread over many addresses slow down too: the username's budget is spent.
    assert_throttled(sign_in(PASSWORD, address="198.51.100.20"))
    assert sign_in(PASSWORD, username="bob", address="198.51.100.20").status_code == 401  # bob's is not


def test_one_address_gets_10_sign_ins_a_minute_whatever_the_usernames(db: Any) -> None:
    tries = [sign_in("guess", username=f"someone{i}") for i in range(10)]

    assert statuses(tries) == {401: 10}
    assert_throttled(sign_in("guess", username="someone-else"))
    assert sign_in("guess", username="someone-else", address="198.51.100.20").status_code == 401


def test_the_right_password_works_again_once_the_window_has_passed(settings: Any, alice: Player) -> None:
    settings.RATE_LIMIT_SIGN_IN_USERNAME = "3/second"
    for _ in range(3):
        assert sign_in("not it").status_code == 401

    wait = assert_throttled(sign_in(PASSWORD))
    assert wait <= 2
    time.sleep(wait)  # as long as Retry-After says, and no longer

    assert sign_in(PASSWORD).status_code == 200


def test_token_refreshes_are_limited_per_address(db: Any) -> None:
    client = APIClient()
    tries = [client.post(REFRESH_URL, {"refresh": "not-a-token"}, format="json") for _ in range(10)]

    assert statuses(tries) == {401: 10}
    assert_throttled(client.post(REFRESH_URL, {"refresh": "not-a-token"}, format="json"))


def test_registrations_are_limited_to_10_an_hour_per_address(db: Any) -> None:
    client = APIClient()

    def register(name: str) -> Response:
        body = {"username": name, "email": f"{name}@example.com", "password": "a long passphrase", "region": "eu"}
        return client.post(REGISTER_URL, body, format="json")

    created = [register(f"newcomer{i}") for i in range(10)]
    refused = register("newcomer10")

    assert statuses(created) == {201: 10}
    assert 61 < assert_throttled(refused) <= 3601  # within the hour's window
    assert not Player.objects.filter(username="newcomer10").exists()


def test_the_log_in_page_counts_wrong_passwords_with_the_api_and_the_admin(alice: Player) -> None:
    page = Client()
    for _ in range(3):
        assert page.post("/accounts/login/", {"username": "alice", "password": "not it"}).status_code == 200
    for _ in range(2):
        assert sign_in("not it").status_code == 401

    assert_page_throttled(page.post("/accounts/login/", {"username": "alice", "password": PASSWORD}))
    assert_page_throttled(Client().post("/admin/login/", {"username": "alice", "password": PASSWORD}))
    assert_throttled(sign_in(PASSWORD))
    assert page.get("/accounts/login/").status_code == 200  # the form itself is still served


def test_the_log_in_page_lets_the_right_password_in_below_the_limit(alice: Player) -> None:
    page = Client()
    for _ in range(4):
        page.post("/accounts/login/", {"username": "alice", "password": "not it"})

    assert page.post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code == 302


def test_the_sign_up_page_is_limited_per_address(db: Any) -> None:
    page = Client()
    form = {"username": "newcomer", "email": "new@example.com", "password1": "x", "password2": "y", "region": "eu"}

    tries = [page.post("/accounts/signup/", form) for _ in range(10)]

    assert statuses(tries) == {200: 10}  # the form, with its errors
    assert_page_throttled(page.post("/accounts/signup/", form))
    assert page.get("/accounts/signup/").status_code == 200


# --- When Redis does not answer ------------------------------------------------------------


@dataclass(frozen=True)
class Timed:
    response: Response
    seconds: float


def timed_reads(client: APIClient, url: str, count: int) -> list[Timed]:
    done = []
    for _ in range(count):
        started = time.monotonic()
        response = client.get(url)
        done.append(Timed(response, time.monotonic() - started))
    return done


def falls_back_within_bounds(reads: list[Timed], caplog: pytest.LogCaptureFixture) -> None:
    """100 answered, the 101st refused by the process's own counters, none slow, and one
    warning for all of them."""
    assert statuses([read.response for read in reads[:100]]) == {200: 100}
    assert_throttled(reads[100].response)
    slowest = max(read.seconds for read in reads)
    assert slowest < settings.RATE_LIMIT_REDIS_TIMEOUT + 1.0, f"a request took {slowest:.2f} s"
    warnings = [r for r in caplog.records if r.name == "questboard.ratelimits" and r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "counts on its own" in warnings[0].getMessage()


def test_with_redis_refusing_connections_the_limit_holds_per_process(
    settings: Any, api: Api, alice: Player, caplog: pytest.LogCaptureFixture
) -> None:
    settings.RATE_LIMIT_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there

    reads = timed_reads(api.as_player(alice), f"/api/v1/players/{alice.pk}/dashboard", 101)

    falls_back_within_bounds(reads, caplog)


PAUSE_SECONDS = 6


def test_with_redis_silent_requests_wait_one_timeout_at_most_and_the_limit_holds(
    settings: Any,
    api: Api,
    alice: Player,
    own_redis: OwnRedis,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.RATE_LIMIT_REDIS_URL = own_redis.url
    client, url = api.as_player(alice), f"/api/v1/players/{alice.pk}/dashboard"
    assert client.get(url).status_code == 200  # connected, and counted in that Redis
    shared = ratelimits.limiter().shared
    assert shared is not None
    redis_client = shared.storage.get_connection()
    asked = Counter[str]()
    command = redis_client.execute_command

    def counted(*args: Any, **options: Any) -> Any:
        asked[str(args[0])] += 1
        return command(*args, **options)

    monkeypatch.setattr(redis_client, "execute_command", counted)
    own_redis.pause(PAUSE_SECONDS)

    started = time.monotonic()
    reads = timed_reads(client, url, 101)
    elapsed = time.monotonic() - started

    assert elapsed < PAUSE_SECONDS, "the requests all ran while Redis was paused"
    # The process counts afresh: the one request Redis counted is not known to it.
    falls_back_within_bounds(reads, caplog)
    assert max(read.seconds for read in reads) >= settings.RATE_LIMIT_REDIS_TIMEOUT  # one did wait...
    assert asked == {"EVALSHA": 1}  # ...the only time Redis was asked


# --- The share card ------------------------------------------------------------------------


@pytest.fixture
def shared(alice: Player, game: Game) -> Unlock:
    unlock_achievement(player=alice, achievement=achievement(game, "ACE_PILOT"), source=Source.GAME_SERVER)
    return Unlock.objects.get(player=alice)


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[sharecard.CardText]:
    """Every card actually drawn (not served from the cache)."""
    cards: list[sharecard.CardText] = []
    draw = sharecard.draw_card

    def counted(text: sharecard.CardText) -> bytes:
        cards.append(text)
        return draw(text)

    monkeypatch.setattr(sharecard, "draw_card", counted)
    return cards


def test_the_share_card_is_drawn_once_then_served_from_the_cache(
    shared: Unlock, drawn: list[sharecard.CardText]
) -> None:
    url = f"/share/{shared.pk}/card.png"

    first, second = Client().get(url), Client().get(url)

    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert len(drawn) == 1
    assert cache.get(drawn[0].cache_key()) == first.content
    assert first["Cache-Control"] == "public, max-age=600"


def test_embedded_images_count_against_a_budget_of_their_own(shared: Unlock, settings: Any) -> None:
    """An image proxy fetches cards for many readers from one address: past a browser's
    budget its cards still come, and its budget for them is spent apart."""
    settings.RATE_LIMIT_EMBEDS = "80/minute"
    proxy = "192.0.2.80"
    card = f"/share/{shared.pk}/card.png"

    pages = [Client().get("/leaderboards/", REMOTE_ADDR=proxy) for _ in range(61)]
    cards = [Client().get(card, REMOTE_ADDR=proxy) for _ in range(81)]

    assert statuses(pages[:60]) == {200: 60}
    assert_page_throttled(pages[60])
    assert statuses(cards[:80]) == {200: 80}
    assert_page_throttled(cards[80])


def test_a_change_to_what_the_card_shows_draws_a_new_card(
    shared: Unlock, game: Game, drawn: list[sharecard.CardText]
) -> None:
    url = f"/share/{shared.pk}/card.png"
    before = Client().get(url).content
    Game.objects.filter(pk=game.pk).update(name="Star Raiders II")
    Player.objects.filter(pk=shared.player_id).update(username="alicia")

    after = Client().get(url).content

    assert len(drawn) == 2 and before != after
    assert (drawn[1].game, drawn[1].by.split(" · ")[0]) == ("Star Raiders II", "by alicia")


def test_a_card_made_private_or_revoked_is_refused_though_it_is_cached(
    shared: Unlock, alice: Player, drawn: list[sharecard.CardText]
) -> None:
    url = f"/share/{shared.pk}/card.png"
    assert Client().get(url).status_code == 200
    owner = Client()
    owner.force_login(alice)
    alice.privacy = Privacy.PRIVATE
    alice.save(update_fields=["privacy"])

    assert Client().get(url).status_code == 404
    own = owner.get(url)
    assert own.status_code == 200 and own["Cache-Control"] == "private, max-age=600"
    assert cache.get(drawn[0].cache_key()) is not None  # the copy is there; it is not served

    revoke_unlock(unlock=shared, actor=None, reason="test")

    assert owner.get(url).status_code == 404
    assert cache.get(drawn[0].cache_key()) is not None
    assert len(drawn) == 1


def test_the_share_card_is_drawn_without_a_cache_when_it_does_not_answer(
    shared: Unlock, drawn: list[sharecard.CardText], monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_redis.exceptions import ConnectionInterrupted

    def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionInterrupted(connection=None)

    monkeypatch.setattr(sharecard.cache, "get", down)

    response = Client().get(f"/share/{shared.pk}/card.png")

    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert len(drawn) == 1


# --- Settings ------------------------------------------------------------------------------


def test_a_rate_that_is_not_one_refuses_to_start() -> None:
    from tests.test_settings import start

    started = start(SECRET_KEY="a-long-random-production-secret", RATE_LIMIT_PLAYER="lots")

    assert started.returncode != 0
    assert "RATE_LIMIT_PLAYER='lots' is not a rate such as '100/minute'" in started.stderr


# --- Across processes ----------------------------------------------------------------------

BURST = 150
ACCESS_LINE = re.compile(r"^<(\d+)> (\d{3})$", re.MULTILINE)


def two_gunicorn_workers(port: int) -> list[str]:
    command = gunicorn(port, workers=2)
    # Each answer's worker, by its pid, in the server's log.
    return [*command[:-1], "--access-logfile", "-", "--access-logformat", "%(p)s %(s)s", command[-1]]


def get(server: Server, path: str, token: str) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_150_from_one_player_over_two_processes_lets_exactly_100_through(tmp_path: Path) -> None:
    player = make_player("burster")
    token = str(RefreshToken.for_user(player).access_token)
    path = f"/api/v1/players/{player.pk}/dashboard"
    start = threading.Barrier(BURST)  # every request is sent at once
    defaults = {name: getattr(production, name) for name in RATE_LIMIT_SETTINGS}

    def fire(server: Server) -> tuple[int, dict[str, str], bytes]:
        start.wait()
        return get(server, path, token)

    with running({"gunicorn": two_gunicorn_workers}, tmp_path, defaults) as [server]:
        with ThreadPoolExecutor(max_workers=BURST) as executor:
            answers = list(executor.map(fire, [server] * BURST))
        time.sleep(0.5)  # the access log lines are written after each answer
        log = server.log.read_text(errors="replace")

    assert Counter(status for status, _, _ in answers) == {200: 100, 429: 50}, log[-2000:]
    for status, headers, body in answers:
        if status == 429:
            assert int(headers["retry-after"]) >= 1
            assert headers["content-type"].startswith("application/json")
            error = json.loads(body)["error"]
            assert (error["status"], error["code"]) == (429, "throttled")
    served_by = {pid for pid, status in ACCESS_LINE.findall(log) if status == "200"}
    assert len(served_by) == 2, f"both workers served the burst: {served_by}"
