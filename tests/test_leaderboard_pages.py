"""The board pages people open in a browser: a game's board (all-time or a season, any
region), the global board, the season list; the visitor's own rank; and 404s."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from achievements.models import Achievement, Source
from achievements.services import UnlockRequest, save_season, unlock_achievements
from leaderboards.models import Season
from leaderboards.services import close_season
from players.services import friend_accept, friend_request
from tests.conftest import achievement, make_player
from tests.helpers import give
from tracker.models import Game, Player, Privacy

HOUR = timedelta(hours=1)


class BoardParser(HTMLParser):
    """Collects the rows of the page's board table and the options of its selectors."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[bool, list[str]]] = []  # (is the visitor's row, cell texts)
        self.selects: dict[str, list[tuple[str, str, bool]]] = {}  # name -> (value, label, selected)
        self._row: list[str] | None = None
        self._row_is_me = False
        self._cell: list[str] | None = None
        self._select: str | None = None
        self._option: tuple[str, bool] | None = None
        self._label: list[str] = []
        self._in_board = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "table" and "data-board" in attributes:
            self._in_board = True
        elif tag == "tr" and self._in_board:
            self._row, self._row_is_me = [], "me" in (attributes.get("class") or "").split()
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "select":
            self._select = attributes.get("name") or ""
            self.selects[self._select] = []
        elif tag == "option" and self._select is not None:
            self._option, self._label = (attributes.get("value") or "", "selected" in attributes), []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_board = False
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row and not all(cell in ("#", "Player", "Points") for cell in self._row):
                self.rows.append((self._row_is_me, self._row))
            self._row = None
        elif tag == "option" and self._option is not None and self._select is not None:
            value, selected = self._option
            self.selects[self._select].append((value, "".join(self._label).strip(), selected))
            self._option = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._option is not None:
            self._label.append(data)


def parse(response: Any) -> BoardParser:
    assert response.status_code == 200, response.status_code
    parser = BoardParser()
    parser.feed(response.content.decode())
    return parser


def board(response: Any) -> list[tuple[str, str, str]]:
    """(rank, name, points) of every row on the page's board, the visitor's own row included."""
    return [(cells[0], cells[1], cells[2]) for _, cells in parse(response).rows]


def selected(response: Any, select: str) -> str:
    [value] = [value for value, _, chosen in parse(response).selects[select] if chosen] or [""]
    return value


def text(response: Any) -> str:
    return " ".join(response.content.decode().split())


def visitor(player: Player | None = None) -> Client:
    client = Client()
    if player is not None:
        client.force_login(player)
    return client


def page_of(game: Game, query: str = "") -> str:
    return f"/games/{game.slug}/leaderboard/{query}"


def many_players(count: int, prefix: str, *, privacy: str = Privacy.PUBLIC) -> list[Player]:
    """`count` players, created in one statement (no password hashing, no email)."""
    return Player.objects.bulk_create(
        [Player(username=f"{prefix}{i:03d}", region="eu", privacy=privacy) for i in range(count)]
    )


def give_all(players: Iterable[Player], achievements: Iterable[Achievement], *, at: datetime | None = None) -> None:
    """Every player unlocks every achievement, in one service call (one transaction)."""
    achievements = list(achievements)
    requests = [UnlockRequest(player.pk, item) for player in players for item in achievements]
    unlock_achievements(requests, source=Source.GAME_SERVER, at=at)


@pytest.fixture
def ranked(game: Game, alice: Player, bob: Player, charlie: Player) -> Game:
    """bob (na) 75, alice (eu) 35, charlie (eu, private) 10, reached in that order."""
    start = timezone.now().replace(microsecond=0) - timedelta(days=2)
    give(bob, achievement(game, "ACE_PILOT"), at=start)
    give(bob, achievement(game, "SECRET_ENDING"), at=start)
    give(alice, achievement(game, "FIRST_FLIGHT"), at=start + HOUR)
    give(alice, achievement(game, "ACE_PILOT"), at=start + HOUR)
    give(charlie, achievement(game, "FIRST_FLIGHT"), at=start + 2 * HOUR)
    return game


def a_season(game: Game, name: str = "Spring Cup", **extra: Any) -> Season:
    now = timezone.now().replace(microsecond=0)
    window = {"starts_at": now - timedelta(days=1), "ends_at": now + timedelta(days=1), **extra}
    return save_season(game=game, name=name, **window)


# --- A game's board -----------------------------------------------------------------------


def test_the_game_board_lists_players_with_ranks_names_and_points(ranked: Game) -> None:
    response = visitor().get(page_of(ranked))

    assert board(response) == [("1", "bob", "75"), ("2", "alice", "35"), ("3", "Anonymous player", "10")]
    assert "3 ranked players." in text(response)
    assert "<title>Star Raiders leaderboard" in response.content.decode()


def test_a_private_player_sees_their_own_name_on_the_board(ranked: Game, charlie: Player) -> None:
    rows = board(visitor(charlie).get(page_of(ranked)))

    assert rows[2] == ("3", "charlie", "10")


def test_the_board_shows_the_top_100_only(game: Game) -> None:
    give_all(many_players(103, "ace"), [achievement(game, "ACE_PILOT")])

    response = visitor().get(page_of(game))

    rows = board(response)
    assert len(rows) == 100
    assert {rank for rank, _, _ in rows} == {"1"}
    assert "103 ranked players." in text(response)


def test_the_next_page_lists_the_places_after_the_top_100(game: Game) -> None:
    start = timezone.now().replace(microsecond=0) - timedelta(days=1)
    give_all(many_players(100, "top"), [achievement(game, "ACE_PILOT")], at=start)
    give_all(many_players(3, "low"), [achievement(game, "FIRST_FLIGHT")], at=start)
    first = visitor().get(page_of(game, "?region=eu"))
    assert 'href="?region=eu&amp;page=2" rel="next"' in first.content.decode()

    second = visitor().get(page_of(game, "?region=eu&page=2"))

    assert sorted(board(second)) == [("101", "low000", "10"), ("101", "low001", "10"), ("101", "low002", "10")]
    assert "Places 101–103 of 103" in text(second)
    assert 'rel="next"' not in second.content.decode()
    assert 'href="?region=eu&amp;page=1" rel="prev"' in second.content.decode()
    assert "data-board-stream" not in second.content.decode()


def test_the_global_board_has_pages_too(game: Game) -> None:
    give_all(many_players(101, "ace"), [achievement(game, "ACE_PILOT")])

    assert len(board(visitor().get("/leaderboards/?page=2"))) == 1


@pytest.mark.parametrize("number", ["0", "-1", "two", "3"])
def test_a_page_that_is_not_there_is_a_404(game: Game, number: str) -> None:
    give_all(many_players(101, "ace"), [achievement(game, "ACE_PILOT")])

    assert visitor().get(page_of(game, f"?page={number}")).status_code == 404


def test_a_player_outside_the_top_100_sees_their_own_rank_and_percentile(game: Game, alice: Player) -> None:
    start = timezone.now().replace(microsecond=0) - timedelta(days=1)
    give_all(many_players(105, "top"), [achievement(game, "FIRST_FLIGHT"), achievement(game, "ACE_PILOT")], at=start)
    give(alice, achievement(game, "ACE_PILOT"), at=start)
    give_all(many_players(5, "low"), [achievement(game, "FIRST_FLIGHT")], at=start)

    response = visitor(alice).get(page_of(game))

    rows = parse(response).rows
    assert len(rows) == 101
    assert all(not is_me for is_me, _ in rows[:100])
    assert "alice" not in {cells[1] for _, cells in rows[:100]}
    assert rows[100] == (True, ["106", "alice (you)", "25"])
    page = text(response)
    assert 'Your rank</div><div class="big">#106</div><div class="muted">of 111</div>' in page
    assert 'Your points</div><div class="big">25</div>' in page
    # 5 of 111 ranked players have fewer points than alice.
    assert "ahead of 4.5% of players" in page


def test_a_player_in_the_top_100_is_highlighted_in_place(ranked: Game, alice: Player) -> None:
    response = visitor(alice).get(page_of(ranked))

    rows = parse(response).rows
    assert rows == [
        (False, ["1", "bob", "75"]),
        (True, ["2", "alice", "35"]),
        (False, ["3", "Anonymous player", "10"]),
    ]
    assert '#2</div><div class="muted">of 3</div>' in text(response)
    assert "ahead of 33.3% of players" in text(response)


def test_the_friends_board_ranks_the_player_among_their_friends(ranked: Game, alice: Player, charlie: Player) -> None:
    friend_accept(player=charlie, friendship=friend_request(sender=alice, receiver=charlie))

    response = visitor(alice).get(page_of(ranked, "?friends=1"))

    # charlie is private: a name only he sees, even on his friends' boards.
    assert parse(response).rows == [(True, ["1", "alice", "35"]), (False, ["2", "Anonymous player", "10"])]
    # Ranked among alice and her friends (bob, 75 points, is not one), not on the whole board.
    assert '#1</div><div class="muted">of 2</div>' in text(response)
    assert "ahead of 50.0% of players" in text(response)


def test_the_board_filters_apply_with_a_button_not_on_change(ranked: Game, alice: Player) -> None:
    page = text(visitor(alice).get(page_of(ranked)))

    # Scripts in attributes are refused by the Content-Security-Policy; the button needs none.
    assert "onchange" not in page
    assert '<button type="submit">Show</button>' in page


def test_a_player_without_points_is_told_so(ranked: Game) -> None:
    newcomer = make_player("newcomer")

    response = visitor(newcomer).get(page_of(ranked))

    assert "No points on this board yet." in text(response)
    assert len(board(response)) == 3


def test_the_region_selector_narrows_the_board_to_one_region(ranked: Game) -> None:
    response = visitor().get(page_of(ranked, "?region=eu"))

    assert board(response) == [("1", "alice", "35"), ("2", "Anonymous player", "10")]
    assert selected(response, "region") == "eu"
    regions = [value for value, _, _ in parse(response).selects["region"]]
    assert regions[0] == ""
    assert {"na", "eu", "asia", "sa", "oce", "af"} <= set(regions)


def test_an_unknown_region_shows_every_region(ranked: Game) -> None:
    response = visitor().get(page_of(ranked, "?region=mars"))

    assert [name for _, name, _ in board(response)] == ["bob", "alice", "Anonymous player"]
    assert selected(response, "region") == ""


def test_the_season_selector_lists_the_games_seasons_with_their_status(ranked: Game, other_game: Game) -> None:
    running = a_season(ranked, name="Spring Cup")
    now = timezone.now().replace(microsecond=0)
    scheduled = a_season(ranked, name="Summer Cup", starts_at=now + HOUR, ends_at=now + 2 * HOUR)
    a_season(other_game, name="Ore Rush")

    options = parse(visitor().get(page_of(ranked))).selects["season"]

    assert options == [
        ("", "All time", False),
        (str(scheduled.pk), "Summer Cup (scheduled)", False),
        (str(running.pk), "Spring Cup (running)", False),
    ]


def test_a_running_seasons_board_shows_its_live_standings(ranked: Game, alice: Player, bob: Player) -> None:
    season = a_season(ranked)
    give(alice, achievement(ranked, "SECRET_ENDING"), at=season.starts_at + HOUR)
    give(bob, achievement(ranked, "FIRST_FLIGHT"), at=season.starts_at + 2 * HOUR)

    response = visitor(alice).get(page_of(ranked, f"?season={season.pk}"))

    assert board(response) == [("1", "alice", "50"), ("2", "bob", "10")]
    assert selected(response, "season") == str(season.pk)
    assert "Spring Cup" in text(response)
    assert "final standings" not in text(response)
    assert '#1</div><div class="muted">of 2</div>' in text(response)
    assert board(visitor().get(page_of(ranked, f"?season={season.pk}&region=na"))) == [("1", "bob", "10")]


def test_a_closed_seasons_board_shows_its_final_standings(ranked: Game, alice: Player, bob: Player) -> None:
    season = a_season(ranked)
    give(alice, achievement(ranked, "SECRET_ENDING"), at=season.starts_at + HOUR)
    give(bob, achievement(ranked, "FIRST_FLIGHT"), at=season.starts_at + 2 * HOUR)
    close_season(season=season)
    give(bob, achievement(ranked, "KILL_100"), at=season.starts_at + 3 * HOUR)

    response = visitor(bob).get(page_of(ranked, f"?season={season.pk}"))

    assert board(response) == [("1", "alice", "50"), ("2", "bob", "10")]
    assert "final standings" in text(response)
    assert '#2</div><div class="muted">of 2</div>' in text(response)
    assert board(visitor().get(page_of(ranked, f"?season={season.pk}&region=na"))) == [("1", "bob", "10")]


def test_an_unknown_game_is_a_404(db: Any) -> None:
    assert visitor().get("/games/no-such-game/leaderboard/").status_code == 404


@pytest.mark.parametrize(
    "season",
    [
        pytest.param("not-a-uuid", id="malformed"),
        pytest.param("00000000-0000-4000-8000-000000000000", id="unknown"),
    ],
)
def test_a_bad_season_is_a_404(game: Game, season: str) -> None:
    assert visitor().get(page_of(game, f"?season={season}")).status_code == 404


def test_another_games_season_is_a_404(game: Game, other_game: Game) -> None:
    elsewhere = a_season(other_game)

    assert visitor().get(page_of(game, f"?season={elsewhere.pk}")).status_code == 404


def test_the_board_page_does_a_bounded_number_of_queries(
    game: Game, alice: Player, django_assert_max_num_queries: Any
) -> None:
    before_the_seasons = timezone.now() - timedelta(days=3)
    give_all(many_players(40, "pub"), [achievement(game, "ACE_PILOT")], at=before_the_seasons)
    give_all(many_players(10, "frn", privacy=Privacy.FRIENDS), [achievement(game, "ACE_PILOT")], at=before_the_seasons)
    give_all(
        many_players(10, "prv", privacy=Privacy.PRIVATE), [achievement(game, "FIRST_FLIGHT")], at=before_the_seasons
    )
    give(alice, achievement(game, "FIRST_FLIGHT"), at=before_the_seasons)
    season = a_season(game)
    give_all(many_players(60, "ssn"), [achievement(game, "SECRET_ENDING")], at=season.starts_at + HOUR)
    client = visitor(alice)

    now = timezone.now()
    closed = a_season(game, name="Closed Cup", starts_at=now - timedelta(days=9), ends_at=now - timedelta(days=8))
    give_all(many_players(60, "old"), [achievement(game, "KILL_100")], at=closed.starts_at + HOUR)
    close_season(season=closed)

    # A handful of queries however many rows: no query per player on the page.
    with django_assert_max_num_queries(16):
        all_time = client.get(page_of(game))
    with django_assert_max_num_queries(16):
        live_season = client.get(page_of(game, f"?season={season.pk}&region=eu"))
    with django_assert_max_num_queries(16):
        final = client.get(page_of(game, f"?season={closed.pk}"))
    with django_assert_max_num_queries(16):
        everywhere = client.get("/leaderboards/")
    with django_assert_max_num_queries(8):
        seasons = client.get("/seasons/")

    # The top 100 and alice's own row below them; 60 players in each season.
    assert len(board(all_time)) == 101
    assert len(board(live_season)) == 60
    assert len(board(final)) == 60
    assert len(board(everywhere)) == 101
    assert "Closed Cup" in text(seasons)


# --- The global board and the season list -------------------------------------------------


def test_the_global_board_ranks_total_points_over_every_game(
    ranked: Game, other_game: Game, alice: Player, charlie: Player
) -> None:
    give(charlie, achievement(other_game, "FIRST_ORE"))

    response = visitor(charlie).get("/leaderboards/")

    assert board(response) == [("1", "bob", "75"), ("2", "alice", "35"), ("3", "charlie", "15")]
    assert "Global leaderboard" in text(response)
    assert "season" not in parse(response).selects
    assert board(visitor().get("/leaderboards/?region=eu")) == [("1", "alice", "35"), ("2", "Anonymous player", "15")]


def test_the_season_list_links_each_season_to_its_board(game: Game, other_game: Game) -> None:
    spring = a_season(game, name="Spring Cup", region="eu")
    ore_rush = a_season(other_game, name="Ore Rush")
    close_season(season=ore_rush)

    response = visitor().get("/seasons/")

    page = text(response)
    assert response.status_code == 200
    assert f'<a href="/games/star-raiders/leaderboard/?season={spring.pk}">Spring Cup</a>' in page
    assert f'<a href="/games/moon-miners/leaderboard/?season={ore_rush.pk}">Ore Rush</a>' in page
    assert '<td>Europe</td> <td><span class="badge running">running</span></td>' in page
    assert '<td>All</td> <td><span class="badge closed">closed</span></td>' in page


def test_the_season_list_says_when_there_are_none(db: Any) -> None:
    assert "No seasons yet." in text(visitor().get("/seasons/"))
