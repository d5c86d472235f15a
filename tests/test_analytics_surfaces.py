"""What a studio sees of its games: who may read a game's analytics (pages, API, CSV),
whose rows a developer sees in the admin, and that the page, the JSON and the CSV carry
the same numbers, read from aggregate rows whose values are known here by construction.

The cast: devon develops Star Raiders, otto develops Moon Miners (another studio), alice is
a plain player, morgan a community manager, root a superuser; each game has its own key.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from achievements.models import Achievement
from analytics import selectors
from analytics.models import AchievementDay, Cohort, Distribution, GameDay
from infra import ratelimits
from leaderboards.models import Season, SeasonResult
from tests.conftest import Api, achievement, make_player
from tests.helpers import assert_error, clear_of_a_minute_edge, logged_in, staff
from tracker.models import Game, GameMember, Player

D = date(2026, 1, 1)  # the first day of the range the tests read
RANGE = {"start": "2026-01-01", "end": "2026-01-03"}
TABLES = ("daily", "retention", "achievements", "time_to_unlock", "funnel", "completion", "playtime")


def api_url(game: Game) -> str:
    return f"/api/v1/games/{game.pk}/analytics"


def page_url(game: Game) -> str:
    return f"/studio/{game.slug}/"


def export_url(game: Game, table: str) -> str:
    return f"/studio/{game.slug}/export/{table}.csv"


@pytest.fixture
def devon(game: Game) -> Player:
    return staff("devon", "Game developers", games=(game,))


@pytest.fixture
def otto(other_game: Game) -> Player:
    return staff("otto", "Game developers", games=(other_game,))


@pytest.fixture
def morgan(db: Any) -> Player:
    return staff("morgan", "Community managers")


@pytest.fixture
def root(db: Any) -> Player:
    user = make_player("root")
    user.is_staff = user.is_superuser = True
    user.save(update_fields=["is_staff", "is_superuser"])
    return user


@pytest.fixture
def aggregates(game: Game) -> Game:
    """Star Raiders' aggregates, as the job would have written them, for 2025-12-31 (the
    day before the range) to 2026-01-03; 2026-01-02 has no row at all.

    Players to date: 2, 4, (4), 5. First Flight held by 1, 3, (3), 4; Ace Pilot by 0, 1,
    (1), 1; the hidden Secret Ending by 0, 0, (0), 1; Centurion by nobody."""
    day = timedelta(days=1)
    for when, active, new, wau, mau, to_date, unlocks, playtime in [
        (D - day, 2, 2, 2, 2, 2, 1, 1800),
        (D, 4, 2, 4, 4, 4, 3, 7200),
        (D + 2 * day, 2, 1, 5, 5, 5, 2, 3600),
    ]:
        GameDay.objects.create(
            game=game,
            date=when,
            active_players=active,
            new_players=new,
            returning_players=active - new,
            weekly_active_players=wau,
            monthly_active_players=mau,
            players_to_date=to_date,
            unlocks=unlocks,
            playtime_seconds=playtime,
        )
    first, ace, secret = (achievement(game, n) for n in ("FIRST_FLIGHT", "ACE_PILOT", "SECRET_ENDING"))
    for ach, when, unlocks, holders in [
        (first, D - day, 1, 1),
        (first, D, 2, 3),
        (ace, D, 1, 1),
        (first, D + 2 * day, 1, 4),
        (secret, D + 2 * day, 1, 1),
    ]:
        AchievementDay.objects.create(game=game, achievement=ach, date=when, unlocks=unlocks, holders=holders)
    Cohort.objects.create(game=game, date=D - day, size=2, day1=1, day7=None, day30=None)
    Cohort.objects.create(game=game, date=D, size=2, day1=0, day7=None, day30=None)
    Cohort.objects.create(game=game, date=D + 2 * day, size=1, day1=None, day7=None, day30=None)
    as_of = D + 2 * day
    histogram = [{"upto": 60, "count": 1}, {"upto": 3600, "count": 2}, {"upto": 7200, "count": 1}]
    Distribution.objects.create(
        game=game,
        kind="time_to_unlock",
        achievement=first,
        as_of=as_of,
        data={
            "samples": 4,
            "median": 600,
            "p90": 7200,
            "p10": 60,
            "histogram": [*histogram, {"upto": None, "count": 0}],
        },
    )
    Distribution.objects.create(
        game=game,
        kind="time_to_unlock",
        achievement=ace,
        as_of=as_of,
        data={
            "samples": 1,
            "median": 90000,
            "p90": 90000,
            "p10": 90000,
            "histogram": [{"upto": 60, "count": 0}, {"upto": 3600, "count": 0}, {"upto": 7200, "count": 0}]
            + [{"upto": None, "count": 1}],
        },
    )
    completion = [{"from": n, "to": n + 10, "players": 0} for n in range(0, 100, 10)]
    completion[0]["players"], completion[2]["players"], completion[9]["players"] = 1, 2, 2
    Distribution.objects.create(game=game, kind="completion", as_of=as_of, data={"histogram": completion})
    Distribution.objects.create(
        game=game,
        kind="playtime",
        as_of=as_of,
        data={"histogram": [{"upto": 0, "players": 1}, {"upto": 3600, "players": 2}, {"upto": None, "players": 2}]},
    )
    Distribution.objects.create(
        game=game,
        kind="funnel",
        as_of=as_of,
        data={
            "players": 5,
            "steps": [
                {"achievement_id": None, "api_name": "", "reached": 5, "stopped_here": 1},
                {"achievement_id": str(first.pk), "api_name": "FIRST_FLIGHT", "reached": 4, "stopped_here": 2},
                {"achievement_id": str(ace.pk), "api_name": "ACE_PILOT", "reached": 1, "stopped_here": 1},
                {"achievement_id": str(secret.pk), "api_name": "SECRET_ENDING", "reached": 1, "stopped_here": 1},
            ],
        },
    )
    return game


# --- Reading pages ------------------------------------------------------------------------


class AnalyticsPage(HTMLParser):
    """The tables of an analytics page (each cell's data-value) and its chart data."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.headings: dict[str, list[str]] = {}
        self.canvases: list[str] = []
        self.scripts: dict[str, str] = {}
        self._table: str | None = None
        self._script: str | None = None
        self._heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "table" and attributes.get("data-table"):
            self._table = attributes["data-table"]
            self.tables[self._table] = []
            self.headings[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag == "td" and self._table and "data-value" in attributes:
            self.tables[self._table][-1].append(attributes["data-value"] or "")
        elif tag == "th" and self._table:
            self._heading = True
        elif tag == "canvas":
            self.canvases.append(attributes.get("data-chart") or "")
        elif tag == "script" and attributes.get("type") == "application/json":
            self._script = attributes.get("id")
            self.scripts[self._script or ""] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag == "th":
            self._heading = False
        elif tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script:
            self.scripts[self._script] += data
        elif self._heading and self._table:
            self.headings[self._table].append(data)

    def rows(self, table: str) -> list[list[str]]:
        return [row for row in self.tables[table] if row]

    def chart_data(self) -> dict[str, Any]:
        return json.loads(self.scripts["analytics-data"])


def read_page(response: Any) -> AnalyticsPage:
    assert response.status_code == 200, response.content[:500]
    page = AnalyticsPage()
    page.feed(response.content.decode())
    return page


def csv_rows(response: Any) -> list[list[str]]:
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


def body_text(response: Any) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


# --- Who may read a game's analytics -------------------------------------------------------


def test_a_member_reads_their_games_analytics_by_token_and_by_session(
    api: Api, aggregates: Game, devon: Player
) -> None:
    by_token = api.as_player(devon).get(api_url(aggregates), RANGE)
    by_session = logged_in(devon).get(api_url(aggregates), RANGE)

    assert by_token.status_code == by_session.status_code == 200, by_token.content
    assert by_token.json() == by_session.json()
    assert by_token.json()["game"]["slug"] == "star-raiders"


def test_the_games_own_key_reads_its_analytics(api: Api, aggregates: Game, game_key: str) -> None:
    response = api.as_key(game_key).get(api_url(aggregates), RANGE)

    assert response.status_code == 200, response.content
    assert response.json()["summary"]["players"] == 5


def test_a_superuser_reads_any_games_analytics(api: Api, aggregates: Game, root: Player) -> None:
    assert api.as_player(root).get(api_url(aggregates), RANGE).status_code == 200


@pytest.mark.parametrize("who", ["otto", "alice", "morgan"])
def test_anyone_outside_the_studio_is_refused(api: Api, aggregates: Game, who: str, request: Any) -> None:
    """Another studio's developer, a plain player, and a community manager (who moderates
    every game but is no studio's member)."""
    outsider = request.getfixturevalue(who)

    error = assert_error(api.as_player(outsider).get(api_url(aggregates), RANGE), 403, "forbidden")

    assert "studio" in error["message"]


def test_another_games_key_is_refused(api: Api, aggregates: Game, other_game_key: str) -> None:
    assert_error(api.as_key(other_game_key).get(api_url(aggregates), RANGE), 403, "forbidden")


def test_nobody_at_all_must_authenticate(api: Api, aggregates: Game) -> None:
    assert_error(api.anonymous().get(api_url(aggregates), RANGE), 401)


def test_an_unknown_game_is_404(api: Api, devon: Player) -> None:
    assert_error(api.as_player(devon).get("/api/v1/games/no-such-game/analytics"), 404, "not_found")


def test_the_game_may_be_named_by_slug(api: Api, aggregates: Game, game_key: str) -> None:
    response = api.as_key(game_key).get("/api/v1/games/star-raiders/analytics", RANGE)

    assert response.status_code == 200
    assert response.json()["game"]["id"] == str(aggregates.pk)


def test_the_studio_page_lists_only_the_developers_games(devon: Player, otto: Player, alice: Player) -> None:
    mine, theirs, none = (body_text(logged_in(p).get("/studio/")) for p in (devon, otto, alice))

    assert "Star Raiders" in mine and "Moon Miners" not in mine
    assert "Moon Miners" in theirs and "Star Raiders" not in theirs
    assert "Star Raiders" not in none and "Moon Miners" not in none
    assert "not a member of any game" in none


def test_a_superuser_sees_every_game_in_the_studio(root: Player, game: Game, other_game: Game) -> None:
    text = body_text(logged_in(root).get("/studio/"))

    assert "Star Raiders" in text and "Moon Miners" in text


@pytest.mark.parametrize("path", ["/studio/", "/studio/star-raiders/", "/studio/star-raiders/export/daily.csv"])
def test_the_studio_pages_send_anonymous_visitors_to_log_in(game: Game, path: str) -> None:
    response = Client().get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("who", ["otto", "alice"])
def test_the_analytics_page_and_its_csv_refuse_outsiders(aggregates: Game, who: str, request: Any) -> None:
    client = logged_in(request.getfixturevalue(who))

    page = client.get(page_url(aggregates), RANGE)
    export = client.get(export_url(aggregates, "achievements"), RANGE)

    for response in (page, export):
        assert response.status_code == 403
        assert b"SECRET_ENDING" not in response.content
        assert b"The Truth" not in response.content
    assert "Not your studio" in body_text(page)


def test_a_member_gets_the_page_and_every_csv(aggregates: Game, devon: Player) -> None:
    client = logged_in(devon)

    assert client.get(page_url(aggregates), RANGE).status_code == 200
    for table in TABLES:
        response = client.get(export_url(aggregates, table), RANGE)
        assert response.status_code == 200, table
        assert (
            response["Content-Disposition"] == f'attachment; filename="star-raiders-{table}-2026-01-01-2026-01-03.csv"'
        )


def test_an_unknown_table_is_404(aggregates: Game, devon: Player) -> None:
    assert logged_in(devon).get(export_url(aggregates, "players")).status_code == 404


def test_the_game_keys_csv_follows_the_same_rule(
    api: Api, aggregates: Game, game_key: str, other_game_key: str
) -> None:
    query = {**RANGE, "format": "csv", "table": "daily"}

    own = api.as_key(game_key).get(api_url(aggregates), query)
    other = api.as_key(other_game_key).get(api_url(aggregates), query)
    nobody = api.anonymous().get(api_url(aggregates), query)

    assert csv_rows(own)[0][0] == "date"
    assert_error(other, 403, "forbidden")  # errors stay JSON when CSV was asked for
    assert_error(nobody, 401)


@pytest.mark.parametrize(
    ("query", "message"),
    [({"table": "daily"}, "Only with format=csv."), ({"format": "csv"}, "Required with format=csv.")],
    ids=["table-without-csv", "csv-without-table"],
)
def test_a_table_goes_with_csv_and_csv_with_a_table(
    api: Api, aggregates: Game, game_key: str, query: dict[str, str], message: str
) -> None:
    error = assert_error(api.as_key(game_key).get(api_url(aggregates), {**RANGE, **query}), 400, "invalid")

    assert error["fields"] == {"table": [message]}


def test_csv_may_be_asked_for_by_accept_header_and_only_a_table_is_csv(
    api: Api, aggregates: Game, game_key: str
) -> None:
    client = api.as_key(game_key)

    by_header = client.get(api_url(aggregates), {**RANGE, "table": "funnel"}, HTTP_ACCEPT="text/csv")
    options = client.options(f"{api_url(aggregates)}?format=csv")

    assert csv_rows(by_header)[0][:2] == ["step", "api_name"]
    assert options.status_code == 200
    assert options["Content-Type"].startswith("application/json")


# --- The numbers --------------------------------------------------------------------------


def test_the_daily_series_reads_the_game_days_and_zeros_a_day_without_one(
    api: Api, aggregates: Game, game_key: str
) -> None:
    days = api.as_key(game_key).get(api_url(aggregates), RANGE).json()["days"]

    assert [
        (
            d["date"],
            d["active_players"],
            d["weekly_active_players"],
            d["monthly_active_players"],
            d["stickiness"],
            d["new_players"],
            d["returning_players"],
            d["unlocks"],
            d["playtime_seconds"],
        )
        for d in days
    ] == [
        ("2026-01-01", 4, 4, 4, 100.0, 2, 2, 3, 7200),
        ("2026-01-02", 0, 0, 0, None, 0, 0, 0, 0),
        ("2026-01-03", 2, 5, 5, 40.0, 1, 1, 2, 3600),
    ]


def test_the_summary_adds_up_the_range(api: Api, aggregates: Game, game_key: str) -> None:
    body = api.as_key(game_key).get(api_url(aggregates), RANGE).json()

    assert body["summary"] == {
        "players": 5,
        "new_players": 3,
        "average_daily_active": 2.0,
        "monthly_active_players": 5,
        "unlocks": 5,
        "playtime_seconds": 10800,
    }
    assert (body["start"], body["end"], body["as_of"]) == ("2026-01-01", "2026-01-03", "2026-01-03")


def test_retention_is_a_share_of_each_cohort_in_the_range_and_null_until_observable(
    api: Api, aggregates: Game, game_key: str
) -> None:
    cohorts = api.as_key(game_key).get(api_url(aggregates), RANGE).json()["cohorts"]

    assert cohorts == [
        {
            "date": "2026-01-01",
            "size": 2,
            "day1": 0,
            "day7": None,
            "day30": None,
            "day1_percent": 0.0,
            "day7_percent": None,
            "day30_percent": None,
        },
        {
            "date": "2026-01-03",
            "size": 1,
            "day1": None,
            "day7": None,
            "day30": None,
            "day1_percent": None,
            "day7_percent": None,
            "day30_percent": None,
        },
    ]


def test_each_achievement_has_its_percentage_rarity_and_drift_hidden_ones_unmasked(
    api: Api, aggregates: Game, devon: Player
) -> None:
    rows = api.as_player(devon).get(api_url(aggregates), RANGE).json()["achievements"]

    assert [
        (
            a["api_name"],
            a["name"],
            a["hidden"],
            a["unlocks"],
            a["holders"],
            a["unlock_percent"],
            a["rarity"],
            a["start_percent"],
            a["drift"],
            a["series"],
        )
        for a in rows
    ] == [
        # 1 of 2 players before the range; 3 of 4, still 3 of 4, then 4 of 5.
        ("FIRST_FLIGHT", "First Flight", False, 3, 4, 80.0, "common", 50.0, 30.0, [75.0, 75.0, 80.0]),
        ("ACE_PILOT", "Ace Pilot", False, 1, 1, 20.0, "uncommon", 0.0, 20.0, [25.0, 25.0, 20.0]),
        ("SECRET_ENDING", "The Truth", True, 1, 1, 20.0, "uncommon", 0.0, 20.0, [0.0, 0.0, 20.0]),
        ("KILL_100", "Centurion", False, 0, 0, 0.0, "legendary", 0.0, 0.0, [0.0, 0.0, 0.0]),
    ]


def test_time_to_unlock_funnel_completion_and_playtime_come_from_the_distributions(
    api: Api, aggregates: Game, game_key: str
) -> None:
    body = api.as_key(game_key).get(api_url(aggregates), RANGE).json()

    first, ace, secret, _ = body["time_to_unlock"]
    assert (first["samples"], first["p10_seconds"], first["median_seconds"], first["p90_seconds"]) == (4, 60, 600, 7200)
    assert [(b["upto_seconds"], b["count"]) for b in first["histogram"]] == [(60, 1), (3600, 2), (7200, 1), (None, 0)]
    assert (ace["samples"], ace["median_seconds"]) == (1, 90000)
    assert (secret["samples"], secret["median_seconds"], secret["histogram"]) == (0, None, [])
    assert body["funnel"]["players"] == 5
    assert [
        (s["api_name"], s["name"], s["reached"], s["reached_percent"], s["stopped_here"], s["stopped_percent"])
        for s in body["funnel"]["steps"]
    ] == [
        ("", "No achievement yet", 5, 100.0, 1, 20.0),
        ("FIRST_FLIGHT", "First Flight", 4, 80.0, 2, 40.0),
        ("ACE_PILOT", "Ace Pilot", 1, 20.0, 1, 20.0),
        ("SECRET_ENDING", "The Truth", 1, 20.0, 1, 20.0),
    ]
    assert [(b["from_percent"], b["players"], b["share_percent"]) for b in body["completion"]][::9] == [
        (0.0, 1, 20.0),
        (90.0, 2, 40.0),
    ]
    assert [(b["upto_seconds"], b["players"], b["share_percent"]) for b in body["playtime"]] == [
        (0, 1, 20.0),
        (3600, 2, 40.0),
        (None, 2, 40.0),
    ]


def test_the_page_the_json_and_the_csv_carry_the_same_numbers(
    api: Api, aggregates: Game, devon: Player, game_key: str
) -> None:
    client = logged_in(devon)
    page = read_page(client.get(page_url(aggregates), RANGE))
    json_report = api.as_key(game_key).get(api_url(aggregates), RANGE).json()

    # The charts draw the API's very JSON.
    assert page.chart_data()["report"] == json_report
    for table in TABLES:
        exported = csv_rows(client.get(export_url(aggregates, table), RANGE))
        by_key = csv_rows(api.as_key(game_key).get(api_url(aggregates), {**RANGE, "format": "csv", "table": table}))
        assert exported == by_key, table
        assert page.rows(table) == exported[1:], table
        assert len(page.headings[table]) == len(exported[0]), table
    # And the CSV holds what the JSON says, row for row.
    daily = csv_rows(client.get(export_url(aggregates, "daily"), RANGE))
    assert daily[0] == [
        "date",
        "active_players",
        "weekly_active_players",
        "monthly_active_players",
        "stickiness_percent",
        "new_players",
        "returning_players",
        "unlocks",
        "playtime_seconds",
    ]
    assert daily[1:] == [
        ["2026-01-01", "4", "4", "4", "100.0", "2", "2", "3", "7200"],
        ["2026-01-02", "0", "0", "0", "", "0", "0", "0", "0"],
        ["2026-01-03", "2", "5", "5", "40.0", "1", "1", "2", "3600"],
    ]
    achievements = csv_rows(client.get(export_url(aggregates, "achievements"), RANGE))
    assert achievements[1] == [
        "FIRST_FLIGHT",
        "First Flight",
        "false",
        "10",
        "3",
        "4",
        "80.0",
        "common",
        "50.0",
        "30.0",
    ]
    ttu = csv_rows(client.get(export_url(aggregates, "time_to_unlock"), RANGE))
    assert ttu[0][-4:] == ["upto_60s", "upto_3600s", "upto_7200s", "over_7200s"]
    assert ttu[2][:6] == ["ACE_PILOT", "Ace Pilot", "1", "90000", "90000", "90000"]
    assert ttu[2][-4:] == ["0", "0", "0", "1"]


def test_the_page_shows_the_summary_and_every_chart(aggregates: Game, devon: Player) -> None:
    response = logged_in(devon).get(page_url(aggregates), RANGE)
    page = read_page(response)
    text = body_text(response)

    assert page.canvases == [
        "active-players",
        "new-returning",
        "stickiness",
        "daily-unlocks",
        "daily-playtime",
        "achievement-drift",
        "time-to-unlock",
        "time-to-unlock-histogram",
        "funnel",
        "completion",
        "playtime-distribution",
    ]
    assert "Players to date 5" in text
    assert "Hours played 3.0" in text
    assert "The Truth" in text  # hidden, but the studio made it
    assert "+30 pts" in text  # First Flight's drift
    assert '<td data-value="7200" class="num">2 h</td>' in response.content.decode()  # 2026-01-01's playtime
    # The chart labels name the buckets as the tables do.
    labels = page.chart_data()["labels"]
    assert [b["label"] for b in labels["time_to_unlock"]] == ["≤ 1 min", "≤ 1 h", "≤ 2 h", "> 2 h"]
    assert labels["completion"][:2] == ["0–10%", "10–20%"]
    assert labels["playtime"] == ["None reported", "≤ 1 h", "> 1 h"]


def test_csv_cells_a_spreadsheet_would_run_are_quoted(api: Api, game: Game, game_key: str) -> None:
    Achievement.objects.create(game=game, api_name="FORMULA", name='=HYPERLINK("http://evil")', points=1)

    rows = csv_rows(api.as_key(game_key).get(api_url(game), {**RANGE, "format": "csv", "table": "achievements"}))

    assert ["FORMULA", '\'=HYPERLINK("http://evil")'] in [row[:2] for row in rows]


def test_a_game_with_no_activity_renders_all_zeros(api: Api, other_game: Game, otto: Player) -> None:
    page = logged_in(otto).get(page_url(other_game))
    body = api.as_player(otto).get(api_url(other_game)).json()

    assert page.status_code == 200
    assert "Not aggregated yet" in body_text(page)
    assert len(body["days"]) == selectors.DEFAULT_RANGE_DAYS
    assert {(d["active_players"], d["unlocks"], d["stickiness"]) for d in body["days"]} == {(0, 0, None)}
    assert body["summary"]["players"] == 0
    assert body["as_of"] is None
    assert (body["cohorts"], body["completion"], body["playtime"]) == ([], [], [])
    assert body["funnel"] == {"players": 0, "steps": []}
    assert [(a["api_name"], a["unlock_percent"], a["rarity"]) for a in body["achievements"]] == [
        ("FIRST_ORE", 0.0, "legendary")
    ]
    for table in TABLES:
        assert logged_in(otto).get(export_url(other_game, table)).status_code == 200


def test_a_report_costs_the_same_queries_for_a_day_or_a_year(aggregates: Game, django_assert_num_queries: Any) -> None:
    for end in (D, D + timedelta(days=365)):
        with django_assert_num_queries(6):
            selectors.game_report(aggregates, start=D, end=end)


def test_the_page_costs_the_same_queries_for_a_day_or_a_year(aggregates: Game, devon: Player) -> None:
    client = logged_in(devon)
    client.get(page_url(aggregates), RANGE)  # the session and the catalogue, loaded once

    costs = []
    for end in ("2026-01-01", "2026-12-31"):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(page_url(aggregates), {"start": "2026-01-01", "end": end}).status_code == 200
        costs.append(len(queries))

    assert costs[0] == costs[1]


# --- The date range -----------------------------------------------------------------------


def test_without_a_range_the_report_covers_the_last_30_days(api: Api, game: Game, game_key: str) -> None:
    body = api.as_key(game_key).get(api_url(game)).json()
    today = timezone.now().date()

    assert (body["start"], body["end"]) == ((today - timedelta(days=29)).isoformat(), today.isoformat())


def test_a_range_of_366_days_is_accepted(api: Api, game: Game, game_key: str) -> None:
    response = api.as_key(game_key).get(api_url(game), {"start": "2024-01-01", "end": "2024-12-31"})

    assert response.status_code == 200
    assert len(response.json()["days"]) == 366


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start": "2026-01-03", "end": "2026-01-01"}, "start"),
        ({"start": "2024-01-01", "end": "2025-01-01"}, "start"),
        ({"start": "yesterday"}, "start"),
        ({"end": "2026-02-30"}, "end"),
        ({"start": "1900-01-01", "end": "1900-01-02"}, "start"),
        ({"end": "2100-01-01"}, "end"),
        ({"stat": "2026-01-01"}, "stat"),
        ({"table": "daily"}, "table"),
        ({"format": "csv"}, "table"),
        ({"format": "csv", "table": "players"}, "table"),
        ({"format": "xml"}, "format"),
    ],
)
def test_a_bad_range_or_format_is_400_naming_the_field(
    api: Api, game: Game, game_key: str, query: dict[str, str], field: str
) -> None:
    error = assert_error(api.as_key(game_key).get(api_url(game), query), 400, "invalid")

    assert field in error["fields"]


def test_the_page_and_the_csv_refuse_a_bad_range_with_400(game: Game, devon: Player) -> None:
    client = logged_in(devon)
    backwards = {"start": "2026-01-03", "end": "2026-01-01"}

    page = client.get(page_url(game), backwards)
    export = client.get(export_url(game, "daily"), backwards)

    assert page.status_code == export.status_code == 400
    assert "start: Must not be after end." in body_text(page)
    assert b"<canvas" not in page.content
    assert "Must not be after end." in export.content.decode()


def test_a_cleared_date_input_means_its_default(game: Game, devon: Player) -> None:
    response = logged_in(devon).get(page_url(game), {"start": "", "end": ""})

    assert response.status_code == 200
    assert len(read_page(response).chart_data()["report"]["days"]) == selectors.DEFAULT_RANGE_DAYS


def test_the_endpoint_is_rate_limited_like_every_other(api: Api, game: Game, game_key: str, settings: Any) -> None:
    settings.RATE_LIMIT_GAME_KEY = "2/minute"
    ratelimits.reset()
    clear_of_a_minute_edge()
    client = api.as_key(game_key)

    try:
        answers = [client.get(api_url(game), RANGE) for _ in range(3)]
    finally:
        ratelimits.reset()

    assert [a.status_code for a in answers[:2]] == [200, 200]
    assert_error(answers[2], 429, "throttled")
    assert int(answers[2]["Retry-After"]) >= 1


def test_the_schema_documents_the_endpoint_its_csv_and_its_errors(api: Api, db: Any) -> None:
    schema = api.anonymous().get("/api/schema/", {"format": "json"}).json()

    operation = schema["paths"]["/api/v1/games/{game_id}/analytics"]["get"]
    assert {"200", "400", "401", "403", "404", "429"} <= set(operation["responses"])
    assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    assert {p["name"] for p in operation["parameters"]} >= {"game_id", "start", "end", "format", "table"}
    error = operation["responses"]["403"]["content"]["application/json"]["schema"]["$ref"]
    assert error.endswith("/ErrorOutput")


# --- The admin ------------------------------------------------------------------------------


@pytest.fixture
def studios(game: Game, other_game: Game) -> dict[str, Any]:
    """A hidden achievement and a closed season with results in each game."""
    hidden = Achievement.objects.create(
        game=other_game, api_name="SECRET_ORE", name="The Hollow Moon", points=50, hidden=True
    )
    now = timezone.now().replace(microsecond=0)
    seasons = {}
    for each, name, player in ((game, "Nebula Run", "vega"), (other_game, "Lunar Sprint", "orion")):
        # An archive as closing leaves one, its result written directly.
        season = Season.objects.create(
            game=each, name=name, starts_at=now - timedelta(days=2), ends_at=now - timedelta(days=1), closed_at=now
        )
        SeasonResult.objects.create(
            season=season, player=make_player(player), rank=1, points=10, achievement_count=1, position=1
        )
        seasons[each.slug] = season
    return {"hidden": hidden, "seasons": seasons}


def changelist(client: Client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return response.content.decode()


@pytest.mark.parametrize("who", ["alice", None])
def test_a_plain_player_or_nobody_gets_only_the_admin_login(
    who: str | None, studios: dict[str, Any], request: Any
) -> None:
    client = logged_in(request.getfixturevalue(who)) if who else Client()

    for path in ("/admin/tracker/game/", "/admin/achievements/achievement/", "/admin/leaderboards/season/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/admin/login/")


def test_a_developer_sees_only_their_games_rows_in_the_admin(devon: Player, studios: dict[str, Any]) -> None:
    client = logged_in(devon)

    games = changelist(client, "/admin/tracker/game/")
    achievements = changelist(client, "/admin/achievements/achievement/")
    seasons = changelist(client, "/admin/leaderboards/season/")
    results = changelist(client, "/admin/leaderboards/seasonresult/")

    assert "Star Raiders" in games and "Moon Miners" not in games
    assert "First Flight" in achievements and "The Truth" in achievements
    for leak in ("The Hollow Moon", "SECRET_ORE", "First Ore", "Moon Miners"):
        assert leak not in achievements  # not in the rows, nor in the game filter
    assert "Nebula Run" in seasons and "Lunar Sprint" not in seasons and "Moon Miners" not in seasons
    assert "vega" in results and "orion" not in results and "Lunar Sprint" not in results


def test_a_developer_cannot_open_another_studios_rows_by_id(
    devon: Player, studios: dict[str, Any], game: Game, other_game: Game
) -> None:
    client = logged_in(devon)
    theirs = [
        f"/admin/tracker/game/{other_game.pk}/change/",
        f"/admin/achievements/achievement/{studios['hidden'].pk}/change/",
        f"/admin/leaderboards/season/{studios['seasons']['moon-miners'].pk}/change/",
    ]
    mine = [
        f"/admin/tracker/game/{game.pk}/change/",
        f"/admin/achievements/achievement/{achievement(game, 'SECRET_ENDING').pk}/change/",
        f"/admin/leaderboards/season/{studios['seasons']['star-raiders'].pk}/change/",
    ]

    for path in theirs:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == "/admin/"
        assert b"Hollow Moon" not in client.get(path, follow=True).content
    for path in mine:
        assert client.get(path).status_code == 200, path


def test_a_developer_filtering_by_another_game_gets_nothing(
    devon: Player, studios: dict[str, Any], other_game: Game
) -> None:
    page = changelist(logged_in(devon), f"/admin/achievements/achievement/?game__id__exact={other_game.pk}")

    assert "The Hollow Moon" not in page and "First Ore" not in page


@pytest.mark.parametrize("who", ["morgan", "root"])
def test_community_managers_and_superusers_see_every_game_in_the_admin(
    who: str, studios: dict[str, Any], request: Any
) -> None:
    client = logged_in(request.getfixturevalue(who))

    games = changelist(client, "/admin/tracker/game/")
    achievements = changelist(client, "/admin/achievements/achievement/")
    seasons = changelist(client, "/admin/leaderboards/season/")

    assert "Star Raiders" in games and "Moon Miners" in games
    assert "The Truth" in achievements and "The Hollow Moon" in achievements
    assert "Nebula Run" in seasons and "Lunar Sprint" in seasons


def test_only_a_superuser_sees_and_edits_a_games_studio(
    root: Player, morgan: Player, devon: Player, alice: Player, game: Game
) -> None:
    change = f"/admin/tracker/game/{game.pk}/change/"
    assert "studio member" not in logged_in(morgan).get(change).content.decode().lower()
    assert "studio member" not in logged_in(devon).get(change).content.decode().lower()
    client = logged_in(root)
    assert "studio member" in client.get(change).content.decode().lower()

    response = client.post(
        change,
        {
            "slug": game.slug,
            "name": game.name,
            "description": "",
            "members-TOTAL_FORMS": "2",
            "members-INITIAL_FORMS": "1",
            "members-MIN_NUM_FORMS": "0",
            "members-MAX_NUM_FORMS": "1000",
            "members-0-id": str(GameMember.objects.get(player=devon).pk),
            "members-0-game": str(game.pk),
            "members-0-player": str(devon.pk),
            "members-1-game": str(game.pk),
            "members-1-player": str(alice.pk),
        },
    )

    assert response.status_code == 302, response.content[:2000]
    assert set(game.members.values_list("player__username", flat=True)) == {"devon", "alice"}
    assert logged_in(alice).get(page_url(game)).status_code == 200


# --- The demo -------------------------------------------------------------------------------


def test_the_demo_studio_logs_in_and_reads_live_analytics_of_its_two_games(db: Any) -> None:
    call_command("seed_demo", players=40, days=20, stdout=io.StringIO())
    client = Client()

    assert client.login(username="studio", password="questboard-studio")
    studio = body_text(client.get("/studio/"))
    assert "Star Raiders" in studio and "Moon Miners" in studio and "Dungeon Deep" not in studio
    for slug in ("star-raiders", "moon-miners"):
        report = read_page(client.get(f"/studio/{slug}/")).chart_data()["report"]
        assert report["as_of"] == timezone.now().date().isoformat()
        assert sum(1 for day in report["days"] if day["active_players"]) >= 10, slug
        assert report["summary"]["players"] > 0
        assert any(step["reached"] for step in report["funnel"]["steps"][1:])
    assert client.get("/studio/dungeon-deep/").status_code == 403
    admin_games = changelist(client, "/admin/tracker/game/")
    assert "Star Raiders" in admin_games and "Dungeon Deep" not in admin_games
