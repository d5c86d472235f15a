"""The one writer of unlocks (achievements/unlock.sql) against a model of its rules.

Hypothesis draws sequences of requests — single unlocks and batches, repeats within and
across batches, several players and games, hidden and zero-point achievements, an inactive
and an unknown player — and sends them at successive seconds through the one write path,
with seasons open all along, regional with chosen achievements, ending mid-sequence, not
begun yet, and closed. The tables (per-game stats and completion, player totals, season
standings), the answers and the outbox must be exactly what the model below predicts;
sending the same requests again must change nothing; and the season recount, which counts
the same unlocks from scratch, must leave the standings the statement kept incrementally.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from achievements.models import Achievement, Source, Unlock
from achievements.services import UnlockRequest, recount_season, save_season, unlock_achievements
from leaderboards.models import Season, SeasonStanding
from stats.models import PlayerGameStats, PlayerTotals
from tests.conftest import make_player
from tracker.models import Game, OutboxEvent, Player

pytestmark = pytest.mark.django_db

# Each example runs in a savepoint rolled back at its end, so the function-scoped world is
# the same for every example.
EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@dataclass
class World:
    start: datetime
    players: list[Player]  # the last one is inactive
    unknown: uuid.UUID  # no such player
    achievements: list[Achievement]
    games: dict[Any, int]  # game id -> achievements in its set, hidden included
    seasons: list[Season]
    chosen: dict[Any, set[Any]] = field(default_factory=dict)


@pytest.fixture
def world(game: Game, other_game: Game) -> World:
    # Microseconds that the board's tie-break (whole seconds) must drop.
    start = datetime.now().astimezone().replace(microsecond=250_000)
    game.achievements.filter(api_name="ACE_PILOT").update(points=0)
    players = [make_player(f"p{i}", region=region) for i, region in enumerate(["eu", "na", "eu", "", "asia"])]
    gone = make_player("gone")
    gone.is_active = False
    gone.save()
    day = timedelta(days=1)
    eu = save_season(
        game=game,
        name="EU",
        region="eu",
        starts_at=start - day,
        ends_at=start + day,
        achievements=game.achievements.filter(api_name__in=["FIRST_FLIGHT", "SECRET_ENDING", "ACE_PILOT"]),
    )
    seasons = [
        save_season(game=game, name="All", starts_at=start - day, ends_at=start + day),
        eu,
        # Ends between the second and the third batch: [starts_at, ends_at) holds steps 0 and 1.
        save_season(game=other_game, name="Short", starts_at=start, ends_at=start + timedelta(seconds=2)),
        save_season(game=game, name="Later", starts_at=start + day, ends_at=start + 2 * day),
        # Archived while its window still holds the unlocks (no service closes a season so).
        Season.objects.create(
            game=game, name="Closed", starts_at=start - day, ends_at=start + day, closed_at=start - day
        ),
    ]
    games = {g.pk: Game.objects.get(pk=g.pk).achievement_count for g in (game, other_game)}
    achievements = list(Achievement.objects.filter(game__in=[game, other_game]).order_by("game__slug", "position"))
    assert any(a.hidden for a in achievements) and any(a.points == 0 for a in achievements)
    return World(
        start=start,
        players=[*players, gone],
        unknown=uuid.uuid4(),
        achievements=achievements,
        games=games,
        seasons=seasons,
        chosen={s.pk: set(s.achievements.values_list("pk", flat=True)) for s in seasons},
    )


# A request: (player index, achievement index); the player index past the last player is
# the unknown one. A batch of one is a single unlock.
requests = st.tuples(st.integers(0, 6), st.integers(0, 63))
batches = st.lists(st.lists(requests, min_size=1, max_size=8), min_size=1, max_size=5)


class Model:
    """The unlock's rules, written plainly: what the tables must hold after `batches`."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.unlocked: dict[tuple[Any, Any], datetime] = {}

    def send(self, batch: list[UnlockRequest], at: datetime) -> list[tuple | None]:
        """Apply one call; return the answers it must give."""
        active = {p.pk for p in self.world.players if p.is_active}
        answers: list[tuple | None] = []
        for r in batch:
            pair = (r.player_id, r.achievement.pk)
            if r.player_id not in active:
                answers.append(None)
                continue
            created = pair not in self.unlocked
            self.unlocked.setdefault(pair, at)
            answers.append((r.player_id, r.achievement.pk, created, self.unlocked[pair]))
        return answers

    def counts_in(self, season: Season, player: Player, achievement: Achievement, at: datetime) -> bool:
        chosen = self.world.chosen[season.pk]
        return (
            season.closed_at is None
            and season.game_id == achievement.game_id
            and season.starts_at <= at < season.ends_at
            and (not season.region or season.region == player.region)
            and (not chosen or achievement.pk in chosen)
        )

    def tables(self) -> dict[str, list[tuple]]:
        players = {p.pk: p for p in self.world.players}
        achievements = {a.pk: a for a in self.world.achievements}
        games: dict[tuple, list] = {}
        totals: dict[Any, list] = {}
        seasons: dict[tuple, list] = {}

        def add(rows: dict, key: Any, points: int, at: datetime) -> list:
            # points, count, reached at (the second of the last points added), first, last
            row = rows.setdefault(key, [0, 0, None, at, at])
            row[0] += points
            row[1] += 1
            if points > 0:
                row[2] = max(row[2] or at, at)
            row[3], row[4] = min(row[3], at), max(row[4], at)
            return row

        for (player_id, achievement_id), at in self.unlocked.items():
            achievement, second = achievements[achievement_id], at.replace(microsecond=0)
            add(games, (player_id, achievement.game_id), achievement.points, second)
            add(totals, player_id, achievement.points, second)
            for season in self.world.seasons:
                if self.counts_in(season, players[player_id], achievement, at):
                    add(seasons, (season.pk, player_id), achievement.points, second)
        return {
            "games": sorted(
                (p, g, points, n, round(100.0 * n / self.world.games[g], 6), reached, first, last, 0)
                for (p, g), (points, n, reached, first, last) in games.items()
            ),
            "totals": sorted((p, points, n, reached) for p, (points, n, reached, _, _) in totals.items()),
            "seasons": sorted((s, p, points, n, reached) for (s, p), (points, n, reached, _, _) in seasons.items()),
        }


def tables() -> dict[str, list[tuple]]:
    games = PlayerGameStats.objects.values_list(
        "player_id",
        "game_id",
        "points",
        "achievement_count",
        "completion",
        "points_reached_at",
        "first_activity",
        "last_activity",
        "playtime_seconds",
    )
    return {
        "games": sorted((*row[:4], round(row[4], 6), *row[5:]) for row in games),
        "totals": sorted(
            PlayerTotals.objects.values_list("player_id", "points", "achievement_count", "points_reached_at")
        ),
        "seasons": sorted(
            SeasonStanding.objects.values_list(
                "season_id", "player_id", "points", "achievement_count", "points_reached_at"
            )
        ),
    }


def requests_of(world: World, drawn: list[list[tuple[int, int]]]) -> list[list[UnlockRequest]]:
    ids = [p.pk for p in world.players] + [world.unknown]
    achievements = world.achievements
    return [[UnlockRequest(ids[p], achievements[a % len(achievements)]) for p, a in batch] for batch in drawn]


def send(batch: list[UnlockRequest], at: datetime) -> list[tuple | None]:
    outcomes = unlock_achievements(batch, source=Source.GAME_SERVER, at=at)
    return [(o.player_id, o.achievement.pk, o.created, o.unlocked_at) if o else None for o in outcomes]


class example:  # noqa: N801 - reads as a statement: `with example():`
    """A savepoint rolled back at its end: every example starts from the same world."""

    def __enter__(self) -> None:
        self.atomic = transaction.atomic()
        self.atomic.__enter__()

    def __exit__(self, *exc: Any) -> None:
        transaction.set_rollback(True)
        self.atomic.__exit__(*exc)


def step(world: World, index: int) -> datetime:
    return world.start + timedelta(seconds=index)


@EXAMPLES
@given(drawn=batches)
def test_unlocks_leave_the_tables_and_answers_the_model_predicts(world: World, drawn: list) -> None:
    model = Model(world)
    with example():
        for index, batch in enumerate(requests_of(world, drawn)):
            at = step(world, index)
            assert send(batch, at) == model.send(batch, at), f"answers of batch {index}"
        assert tables() == model.tables()
        assert sorted(Unlock.objects.values_list("player_id", "achievement_id", "unlocked_at")) == sorted(
            (p, a, at) for (p, a), at in model.unlocked.items()
        )


@EXAMPLES
@given(drawn=batches)
def test_sending_the_same_requests_again_changes_nothing(world: World, drawn: list) -> None:
    sent = requests_of(world, drawn)
    with example():
        for index, batch in enumerate(sent):
            send(batch, step(world, index))
        before, events = tables(), OutboxEvent.objects.count()
        later = step(world, len(sent))
        for batch in sent:
            assert all(answer is None or not answer[2] for answer in send(batch, later)), "nothing is new"
        assert tables() == before
        assert OutboxEvent.objects.count() == events, "a repeat records no live event"


@EXAMPLES
@given(drawn=batches)
def test_each_call_that_unlocked_something_records_one_event_naming_its_unlocks(world: World, drawn: list) -> None:
    model = Model(world)
    with example():
        expected = []
        for index, batch in enumerate(requests_of(world, drawn)):
            at = step(world, index)
            answers = model.send(batch, at)
            send(batch, at)
            new = sorted((str(p), str(a)) for answer in answers if answer and answer[2] for p, a, _, _ in [answer])
            if new:
                expected.append((at.isoformat(), new))
        recorded = [
            (payload["at"], sorted((u["player_id"], u["achievement_id"]) for u in payload["unlocks"]))
            for payload in OutboxEvent.objects.filter(kind="unlocks").order_by("id").values_list("payload", flat=True)
        ]
        assert recorded == expected


@EXAMPLES
@given(drawn=batches)
def test_a_recount_of_each_season_leaves_the_standings_the_unlocks_kept(world: World, drawn: list) -> None:
    """The season rules have two SQL homes by nature: the statement adds each new unlock,
    the recount (a season created or changed) counts them all again. They agree."""
    with example():
        for index, batch in enumerate(requests_of(world, drawn)):
            send(batch, step(world, index))
        kept = tables()["seasons"]
        for season in world.seasons:
            recount_season(season=season)
        assert tables()["seasons"] == kept


def test_the_model_sees_every_rule_at_work(world: World) -> None:
    """The drawn sequences can reach every rule: a guard against a world where a rule has
    nothing to decide (every season counting everything, say) and the properties prove less."""
    model = Model(world)
    eu, short = world.seasons[1], world.seasons[2]
    by_name = {a.api_name: a for a in world.achievements}
    na_player, eu_player = world.players[1], world.players[0]
    cases = [
        (eu, eu_player, by_name["FIRST_FLIGHT"], world.start, True),
        (eu, na_player, by_name["FIRST_FLIGHT"], world.start, False),  # region
        (eu, eu_player, by_name["KILL_100"], world.start, False),  # not chosen
        (short, eu_player, next(a for a in world.achievements if a.game_id == short.game_id), step(world, 2), False),
        (world.seasons[3], eu_player, by_name["FIRST_FLIGHT"], world.start, False),  # not begun
        (world.seasons[4], eu_player, by_name["FIRST_FLIGHT"], world.start, False),  # closed
    ]
    for season, player, achievement, at, counts in cases:
        assert model.counts_in(season, player, achievement, at) is counts, (season.name, achievement.api_name)
    # ...and the statement agrees on each, unlocking them one by one.
    for season, player, achievement, at, counts in cases:
        with example():
            send([UnlockRequest(player.pk, achievement)], at)
            standing = SeasonStanding.objects.filter(season=season, player=player).exists()
            assert standing is counts, (season.name, achievement.api_name)
