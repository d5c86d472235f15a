"""Anomaly review: each rule fires on a crafted cheat and stays quiet on a realistic
population; the background scoring job and its cursor; the community managers' review
queue (dismiss, revoke with totals and ranks following) and who may use it."""

from __future__ import annotations

import io
import random
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from achievements.models import Achievement, Source, Unlock
from achievements.services import UnlockRequest, import_manifest, revoke_unlock, unlock_achievement, unlock_achievements
from achievements.tasks import refresh_rarity
from analytics import review
from analytics.aggregation import write_distributions
from analytics.models import Distribution, ScoringCursor, UnlockFlag
from analytics.tasks import score_unlocks
from leaderboards.models import ModerationAction
from stats.models import PlayerGameStats, PlayerTotals
from stats.services import record_play_session
from tests.conftest import Api, make_player
from tests.helpers import logged_in, staff, unlock
from tracker.models import Game, GameMember, Player

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
QUEUE = "/admin/analytics/unlockflag/"

# A game of ten achievements earned in order, each a little further on than the last (the
# median gap from one to the next grows), and a secret one a few late players find.
CHAIN = [f"STAGE_{i}" for i in range(10)]
GAP_MEDIAN_MINUTES = [6, 10, 15, 22, 30, 42, 60, 80, 110, 150]
GO_ON = 0.9  # the share of players who, having reached a stage, reach the next one
SECRET = "SECRET"
SECRET_CHANCE = 0.04  # among players who reached STAGE_6


def later() -> datetime:
    """A moment when everything recorded up to now is old enough to be scored."""
    return timezone.now() + review.SCORING_DELAY + MINUTE


def score() -> int:
    return review.score_pending(now=later())


def flags_of(player: Player) -> dict[str, list[str]]:
    """{api_name: [rules]} of a player's flags."""
    return {
        flag.achievement.api_name: [item["rule"] for item in flag.evidence]
        for flag in UnlockFlag.objects.filter(player=player).select_related("achievement")
    }


# --- A realistic population ------------------------------------------------------------------


@dataclass
class World:
    game: Game
    start: datetime  # when the population began to play

    def achievement(self, api_name: str) -> Achievement:
        return self.game.achievements.get(api_name=api_name)

    def player(self, username: str, *, joined: datetime | None = None) -> Player:
        player = make_player(username)
        Player.objects.filter(pk=player.pk).update(created=joined or self.start - 30 * DAY)
        player.refresh_from_db()
        return player

    def publish(self) -> None:
        """What the background jobs keep up to date: each achievement's global unlock
        percentage, and its time-to-unlock distribution (the aggregation job's)."""
        refresh_rarity(str(self.game.pk))
        write_distributions(game=self.game, as_of=timezone.now().date())


def play(world: World, player: Player, rng: random.Random, style: str) -> None:
    """One honest player's history: a first session, then stages at a spread of paces,
    reported the way `style` says."""
    game = world.game
    began = world.start + timedelta(hours=rng.uniform(0, 240))
    if style != "no_sessions":
        ended = began + timedelta(minutes=rng.uniform(20, 90))
        record_play_session(
            player=player, game=game, session_id="s1", started_at=began, ended_at=ended, source=Source.GAME_SERVER
        )
    pace = rng.lognormvariate(0, 0.35)  # some players are quicker at everything
    when, earned = began, []
    for stage, median in zip(CHAIN, GAP_MEDIAN_MINUTES, strict=True):
        if earned and rng.random() > GO_ON:
            break
        when += timedelta(minutes=median * pace * rng.lognormvariate(0, 0.5))
        earned.append((stage, when))
    if len(earned) >= 7 and rng.random() < SECRET_CHANCE:
        earned.append((SECRET, earned[6][1] + timedelta(minutes=rng.uniform(5, 120))))
        earned.sort(key=lambda item: item[1])
    if style == "offline_batch":
        # A game server reporting a session played offline, later, with the real times.
        requests = [UnlockRequest(player.pk, world.achievement(name), claimed_at=at) for name, at in earned]
        unlock_achievements(requests, source=Source.GAME_SERVER, at=earned[-1][1] + 2 * HOUR, live=False)
        return
    for name, at in earned:
        client = style == "client"
        unlock_achievement(
            player=player,
            achievement=world.achievement(name),
            source=Source.PLAYER_CLIENT if client else Source.GAME_SERVER,
            claimed_at=at - timedelta(seconds=rng.uniform(0, 3)) if client else None,
            at=at,
            live=False,
        )


STYLES = ["server"] * 12 + ["no_sessions"] * 4 + ["client"] * 2 + ["offline_batch"] * 2


@pytest.fixture
def road(db: Any) -> World:
    """The game, before anyone played it."""
    manifest = {
        "slug": "long-road",
        "name": "The Long Road",
        "achievements": [
            *({"api_name": name, "name": name.title(), "points": 10, "client_unlockable": True} for name in CHAIN),
            {"api_name": SECRET, "name": "Secret", "points": 50, "hidden": True, "client_unlockable": True},
        ],
    }
    game = import_manifest(manifest=manifest).game
    start = timezone.now() - 20 * DAY
    # The game and its achievements existed before anyone played.
    Achievement.objects.filter(game=game).update(created=start - 60 * DAY)
    return World(game, start)


@pytest.fixture
def world(road: World) -> World:
    """The game played by sixty honest players, its percentages and distributions published."""
    rng = random.Random(10)
    for index in range(60):
        player = road.player(f"player{index:02d}")
        play(road, player, rng, STYLES[index % len(STYLES)])
    road.publish()
    return road


def test_the_population_is_what_the_rules_are_tried_against(world: World) -> None:
    shares = {a.api_name: a.unlock_percentage for a in world.game.achievements.all()}
    samples = {
        d.achievement.api_name: d.data["samples"]
        for d in Distribution.objects.filter(game=world.game, kind="time_to_unlock").select_related("achievement")
    }

    assert shares["STAGE_0"] == 100.0 and shares["STAGE_5"] >= review.COMMON_PERCENT
    assert 0 < shares[SECRET] < review.RARE_PERCENT
    assert samples["STAGE_8"] >= review.MIN_SAMPLE
    assert set(Unlock.objects.filter(game=world.game).values_list("source", flat=True)) == {"server", "client"}


def test_ordinary_play_raises_no_flag(world: World) -> None:
    looked_at = score()

    assert looked_at == Unlock.objects.count()
    assert UnlockFlag.objects.count() == 0


# --- Too fast ---------------------------------------------------------------------------------


def ttu(world: World, api_name: str) -> dict[str, Any]:
    return Distribution.objects.get(achievement=world.achievement(api_name), kind="time_to_unlock").data


def test_an_unlock_far_faster_than_its_holders_took_is_flagged_too_fast(world: World) -> None:
    cheat = world.player("speedy")
    began = timezone.now() - 3 * HOUR
    record_play_session(
        player=cheat, game=world.game, session_id="s1", started_at=began, ended_at=began + HOUR, source="server"
    )
    for name, after in (("STAGE_0", 8 * MINUTE), ("STAGE_1", 20 * MINUTE), ("STAGE_8", 25 * MINUTE)):
        unlock_achievement(player=cheat, achievement=world.achievement(name), source="server", at=began + after)

    score()

    assert flags_of(cheat) == {"STAGE_8": ["too_fast"]}
    [evidence] = UnlockFlag.objects.get(player=cheat).evidence
    distribution = ttu(world, "STAGE_8")
    assert evidence["seconds"] == 25 * 60
    assert evidence["p10_seconds"] == distribution["p10"] and evidence["samples"] == distribution["samples"]
    limit = distribution["p10"] * review.TOO_FAST_SHARE_OF_P10
    assert evidence["seconds"] < limit and evidence["limit_seconds"] == pytest.approx(limit, abs=0.1)
    assert "25 min after the player's first activity" in evidence["detail"]


def test_too_fast_is_silent_below_the_minimum_sample(world: World) -> None:
    cheat = world.player("speedy")
    began = timezone.now() - 3 * HOUR
    record_play_session(
        player=cheat, game=world.game, session_id="s1", started_at=began, ended_at=began + HOUR, source="server"
    )
    unlock_achievement(player=cheat, achievement=world.achievement("STAGE_0"), source="server", at=began + 8 * MINUTE)
    unlock_achievement(player=cheat, achievement=world.achievement("STAGE_8"), source="server", at=began + 9 * MINUTE)
    distribution = Distribution.objects.get(achievement=world.achievement("STAGE_8"), kind="time_to_unlock")
    distribution.data["samples"] = review.MIN_SAMPLE - 1  # as the job writes it for a smaller sample
    distribution.save()

    score()

    assert flags_of(cheat) == {}


def test_too_fast_needs_the_clock_started_before_the_first_unlock() -> None:
    """A session is often reported when it ends: until then the player's first activity is
    their first unlock, and the quick second unlock of an honest session is not measured."""
    now = timezone.now()
    distribution = {"samples": 200, "p10": 3600.0, "median": 7200.0, "p90": 20000.0}
    game = review.GameFacts(players=200, percentages={}, common=frozenset(), time_to_unlock={"B": distribution})

    def second_unlock(first_activity: datetime) -> review.Evidence | None:
        facts = review.UnlockFacts(2, "p", "g", "B", now, None, "server", now - DAY, now - DAY)
        player = review.PlayerFacts(first_activity, first_unlocked_at=now - MINUTE)
        return review.too_fast(facts, player, game)

    assert second_unlock(first_activity=(now - MINUTE).replace(microsecond=0)) is None
    assert second_unlock(first_activity=now - 2 * MINUTE)["seconds"] == 120


def test_too_fast_counts_from_the_minimum_sample_exactly() -> None:
    now = timezone.now()
    facts = review.UnlockFacts(2, "p", "g", "B", now, None, "server", now - DAY, now - DAY)
    player = review.PlayerFacts(now - MINUTE, first_unlocked_at=now)

    def fires(samples: int) -> bool:
        distribution = {"samples": samples, "p10": 3600.0, "median": 7200.0}
        game = review.GameFacts(200, {}, frozenset(), {"B": distribution})
        return review.too_fast(facts, player, game) is not None

    assert not fires(review.MIN_SAMPLE - 1)
    assert fires(review.MIN_SAMPLE)


def test_too_fast_is_silent_when_other_holders_were_about_as_quick() -> None:
    """Under a fifth of the fastest tenth's time, but the histogram shows holders who took
    as little: an early route some players find, not a cheat."""
    now = timezone.now()
    facts = review.UnlockFacts(2, "p", "g", "B", now, None, "server", now - DAY, now - DAY)
    player = review.PlayerFacts(now - 10 * MINUTE, first_unlocked_at=now)

    def fires(quick_holders: int, samples: int = 100) -> bool:
        histogram = [
            {"upto": 300, "count": 0},
            {"upto": 900, "count": quick_holders},
            {"upto": None, "count": samples - quick_holders},
        ]
        distribution = {"samples": samples, "p10": 36000.0, "median": 72000.0, "histogram": histogram}
        game = review.GameFacts(200, {}, frozenset(), {"B": distribution})
        return review.too_fast(facts, player, game) is not None

    assert fires(quick_holders=0)
    assert fires(quick_holders=1)  # the player's own unlock may be counted already
    assert not fires(quick_holders=2)
    assert fires(quick_holders=3, samples=300)  # 1 in 100
    assert not fires(quick_holders=4, samples=300)


# --- Burst ----------------------------------------------------------------------------------


def test_a_burst_of_client_unlocks_is_flagged_and_only_once_scored(road: World, api: Api) -> None:
    cheat = road.player("burster")
    client = api.as_player(cheat)
    for name in CHAIN[:9]:
        assert unlock(client, cheat, road.achievement(name)).status_code == 201
    # Never on the request itself: nothing is flagged until the job runs.
    assert UnlockFlag.objects.count() == 0

    score()

    flags = flags_of(cheat)
    assert set(flags) == set(CHAIN[:9])
    assert all("burst" in rules for rules in flags.values())
    evidence = next(e for e in UnlockFlag.objects.filter(player=cheat).first().evidence if e["rule"] == "burst")
    assert evidence["unlocks"] == 9 and evidence["span_seconds"] <= 10 and evidence["source"] == "client"


def test_fewer_unlocks_than_a_burst_within_seconds_are_quiet(road: World) -> None:
    player = road.player("quick")
    at = timezone.now() - HOUR
    for offset, name in enumerate(CHAIN[: review.BURST_UNLOCKS - 1]):
        unlock_achievement(
            player=player, achievement=road.achievement(name), source="client", at=at + timedelta(seconds=offset)
        )

    score()

    assert flags_of(player) == {}


def test_a_game_servers_burst_weighs_less_and_alone_is_not_flagged(road: World) -> None:
    player = road.player("batched")
    requests = [UnlockRequest(player.pk, road.achievement(name)) for name in CHAIN[:9]]
    unlock_achievements(requests, source=Source.GAME_SERVER, at=timezone.now() - HOUR)

    score()

    assert flags_of(player) == {}
    found = review.assess(Unlock.objects.filter(player=player))
    assert len(found) == 9
    for _, evidence in found:
        [burst] = evidence
        assert (burst["rule"], burst["weight"], burst["unlocks"]) == ("burst", review.BURST_WEIGHT_SERVER, 9)
    assert review.BURST_WEIGHT_SERVER < review.FLAG_THRESHOLD


def test_an_offline_batch_with_its_claimed_times_spread_out_is_not_a_burst(road: World) -> None:
    player = road.player("offline")
    at = timezone.now() - 2 * DAY
    requests = [
        UnlockRequest(player.pk, road.achievement(name), claimed_at=at + index * 20 * MINUTE)
        for index, name in enumerate(CHAIN)
    ]
    unlock_achievements(requests, source=Source.GAME_SERVER, at=timezone.now() - HOUR)

    score()

    assert flags_of(player) == {}


def test_claimed_times_close_together_are_a_burst_however_they_were_sent(road: World) -> None:
    player = road.player("claimer")
    at = timezone.now() - DAY
    for index, name in enumerate(CHAIN):  # an hour apart, each claiming a time within seconds
        unlock_achievement(
            player=player,
            achievement=road.achievement(name),
            source=Source.PLAYER_CLIENT,
            claimed_at=at + timedelta(seconds=index),
            at=timezone.now() - (12 - index) * HOUR,
        )

    score()

    assert set(flags_of(player)) == set(CHAIN)


# --- Rare before common ----------------------------------------------------------------------


def test_a_rare_achievement_before_any_common_one_is_flagged(world: World) -> None:
    player = world.player("lucky")
    began = timezone.now() - 5 * HOUR
    record_play_session(
        player=player, game=world.game, session_id="s1", started_at=began, ended_at=began + HOUR, source="server"
    )
    unlock_achievement(player=player, achievement=world.achievement(SECRET), source="server", at=began + 2 * HOUR)
    unlock_achievement(player=player, achievement=world.achievement("STAGE_0"), source="server", at=began + 3 * HOUR)

    score()

    assert flags_of(player) == {SECRET: ["rare_before_common"]}
    [evidence] = UnlockFlag.objects.get(player=player).evidence
    secret = world.achievement(SECRET)
    assert evidence["percent"] == secret.unlock_percentage < review.RARE_PERCENT
    assert evidence["players"] == PlayerGameStats.objects.filter(game=world.game).count()
    common = world.game.achievements.filter(unlock_percentage__gte=review.COMMON_PERCENT).count()
    assert evidence["common_achievements"] == common >= 1


def test_a_rare_achievement_after_a_common_one_is_quiet(world: World) -> None:
    player = world.player("steady")
    began = timezone.now() - 5 * HOUR
    record_play_session(
        player=player, game=world.game, session_id="s1", started_at=began, ended_at=began + HOUR, source="server"
    )
    unlock_achievement(player=player, achievement=world.achievement("STAGE_0"), source="server", at=began + HOUR)
    unlock_achievement(player=player, achievement=world.achievement(SECRET), source="server", at=began + 2 * HOUR)

    score()

    assert flags_of(player) == {}


def test_rare_before_common_waits_for_enough_players_in_the_game() -> None:
    now = timezone.now()
    facts = review.UnlockFacts(1, "p", "g", "R", now, None, "server", now - DAY, now - DAY)
    player = review.PlayerFacts(now - HOUR, now, [(now, "R")])

    def fires(players: int) -> bool:
        game = review.GameFacts(players, {"R": 1.0, "C": 90.0}, frozenset({"C"}), {})
        return review.rare_before_common(facts, player, game) is not None

    assert not fires(review.MIN_SAMPLE - 1)
    assert fires(review.MIN_SAMPLE)


# --- Impossible claimed time -------------------------------------------------------------------


def test_a_client_claiming_a_time_before_the_account_existed_is_flagged(road: World, api: Api) -> None:
    player = road.player("timetraveller", joined=timezone.now() - 2 * DAY)
    claimed = timezone.now() - 5 * DAY
    response = unlock(api.as_player(player), player, road.achievement("STAGE_0"), timestamp=claimed.isoformat())
    assert response.status_code == 201

    score()

    assert flags_of(player) == {"STAGE_0": ["impossible_time"]}
    [evidence] = UnlockFlag.objects.get(player=player).evidence
    assert "3 days before the player's account was created" in evidence["detail"]


def test_a_client_claiming_a_time_before_the_achievement_existed_is_flagged(road: World, api: Api) -> None:
    player = road.player("early", joined=timezone.now() - 400 * DAY)
    claimed = road.achievement("STAGE_0").created - 10 * DAY
    unlock(api.as_player(player), player, road.achievement("STAGE_0"), timestamp=claimed.isoformat())

    score()

    [evidence] = UnlockFlag.objects.get(player=player).evidence
    assert evidence["rule"] == "impossible_time"
    assert "10 days before the achievement existed" in evidence["detail"]


def test_a_clock_a_little_behind_and_a_game_servers_claim_are_not_impossible(
    road: World, api: Api, game_key: str
) -> None:
    joined = timezone.now() - 2 * DAY
    slow = road.player("slowclock", joined=joined)
    served = road.player("served", joined=joined)
    within_skew = joined - (settings.UNLOCK_MAX_CLOCK_SKEW - MINUTE)
    unlock(api.as_player(slow), slow, road.achievement("STAGE_0"), timestamp=within_skew.isoformat())
    unlock_achievement(
        player=served, achievement=road.achievement("STAGE_0"), source="server", claimed_at=joined - 5 * DAY
    )

    score()

    assert flags_of(slow) == flags_of(served) == {}


# --- The job and its cursor -----------------------------------------------------------------------


def cheat_burst(world: World, username: str, *, at: datetime | None = None, played: timedelta | None = None) -> Player:
    """Every stage unlocked from a game client within ten seconds; with `played`, after a
    session reported as begun that long before."""
    player = world.player(username)
    at = at or timezone.now() - HOUR
    if played:
        record_play_session(
            player=player, game=world.game, session_id="s1", started_at=at - played, ended_at=at, source="client"
        )
    for offset, name in enumerate(CHAIN):
        unlock_achievement(
            player=player, achievement=world.achievement(name), source="client", at=at + offset * timedelta(seconds=1)
        )
    return player


def test_scoring_twice_flags_nothing_twice(road: World) -> None:
    cheat_burst(road, "burster")
    score()
    flagged = sorted(UnlockFlag.objects.values_list("unlock_id", "score"))

    assert score() == 0
    assert sorted(UnlockFlag.objects.values_list("unlock_id", "score")) == flagged
    assert ScoringCursor.objects.get().last_unlock_id == Unlock.objects.latest("pk").pk


def test_after_downtime_the_job_scores_everything_after_the_cursor_in_batches(road: World) -> None:
    score()
    before = ScoringCursor.objects.get().last_unlock_id
    first = cheat_burst(road, "first")
    for index in range(30):  # ordinary play while the job was down
        play(road, road.player(f"newcomer{index}"), random.Random(index), "server")
    second = cheat_burst(road, "second")

    looked_at = review.score_pending(now=later(), batch_size=7)

    assert looked_at == Unlock.objects.filter(pk__gt=before).count()
    assert set(flags_of(first)) == set(flags_of(second)) == set(CHAIN)
    assert UnlockFlag.objects.count() == 2 * len(CHAIN)


def test_an_unlock_is_scored_only_once_it_is_old_enough(road: World) -> None:
    score()
    now = timezone.now()
    player = cheat_burst(road, "fresh", at=now - 5 * review.BURST_WINDOW)

    assert review.score_pending(now=now) == 0
    assert flags_of(player) == {}

    assert review.score_pending(now=now + review.SCORING_DELAY) == len(CHAIN)
    assert set(flags_of(player)) == set(CHAIN)


def test_a_batch_costs_the_same_queries_however_many_unlocks_it_holds(road: World) -> None:
    def cost(players: int, start: int) -> int:
        score()
        for index in range(players):
            cheat_burst(road, f"cost{start + index}")
        with CaptureQueriesContext(connection) as queries:
            review.score_pending(now=later())
        return len(queries)

    assert cost(1, 0) == cost(6, 10)


@pytest.mark.django_db(transaction=True)
def test_two_jobs_at_once_score_each_unlock_once(monkeypatch: pytest.MonkeyPatch) -> None:
    achievements = [{"api_name": f"A{i}", "name": f"A{i}", "points": 1} for i in range(10)]
    game = import_manifest(manifest={"slug": "twin", "name": "Twin", "achievements": achievements}).game
    at = timezone.now() - HOUR
    for index in range(12):
        player = make_player(f"twin{index}")
        for offset, achievement in enumerate(game.achievements.all()):
            unlock_achievement(
                player=player, achievement=achievement, source="client", at=at + timedelta(seconds=offset), live=False
            )
    seen: Counter[int] = Counter()
    real = review.evidence_for

    def counting(unlock: review.UnlockFacts, *args: Any) -> list[review.Evidence]:
        seen[unlock.id] += 1
        return real(unlock, *args)

    monkeypatch.setattr(review, "evidence_for", counting)
    go = threading.Barrier(2)

    def job() -> None:
        try:
            go.wait()
            review.score_pending(now=later(), batch_size=10)
        finally:
            connection.close()

    threads = [threading.Thread(target=job) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert set(seen) == set(Unlock.objects.values_list("pk", flat=True))
    assert set(seen.values()) == {1}
    assert UnlockFlag.objects.count() == 120


# --- The review queue ---------------------------------------------------------------------------


@pytest.fixture
def manager(db: Any) -> Player:
    return staff("morgan", "Community managers")


@pytest.fixture
def flagged(road: World) -> dict[str, Player]:
    """Scored: a burster (ten flags, 100 points), a time traveller (one flag: a client
    claimed a time before the account existed), and an honest rival on 90 points."""
    rival = road.player("rival")
    for offset, name in enumerate(CHAIN[:9]):
        unlock_achievement(
            player=rival, achievement=road.achievement(name), source="server", at=road.start + offset * HOUR
        )
    burster = cheat_burst(road, "burster")
    traveller = road.player("traveller", joined=timezone.now() - 2 * DAY)
    unlock_achievement(
        player=traveller,
        achievement=road.achievement("STAGE_0"),
        source="client",
        claimed_at=timezone.now() - 9 * DAY,
        at=timezone.now() - DAY,
    )
    score()
    assert UnlockFlag.objects.count() == 11
    return {"burster": burster, "traveller": traveller, "rival": rival}


def the_flag(player: Player, api_name: str = "STAGE_0") -> UnlockFlag:
    return UnlockFlag.objects.get(player=player, achievement__api_name=api_name)


def test_the_roles_give_the_queue_to_community_managers_only(db: Any) -> None:
    def granted(group: str) -> set[str]:
        rows = Group.objects.get(name=group).permissions.filter(content_type__app_label="analytics")
        return set(rows.values_list("codename", flat=True))

    assert {"view_unlockflag", "change_unlockflag", "review_unlockflag"} <= granted("Community managers")
    assert not {c for c in granted("Community managers") if c.startswith(("add_", "delete_"))}
    assert not {c for c in granted("Game developers") if c.endswith("unlockflag")}


def test_a_community_manager_sees_the_queue_most_suspicious_first(flagged: dict[str, Player], manager: Player) -> None:
    dismissed = the_flag(flagged["burster"], "STAGE_9")
    review.dismiss_flag(flag=dismissed, reviewer=manager, note="fine")

    response = logged_in(manager).get(QUEUE)

    assert response.status_code == 200
    shown = list(response.context["cl"].result_list)
    assert [flag.player.username for flag in shown[:2]] == ["traveller", "burster"]  # 60, then 50
    assert shown[0].score == review.IMPOSSIBLE_TIME_WEIGHT and shown[1].score == review.BURST_WEIGHT
    assert shown[-1].pk == dismissed.pk and len(shown) == 11  # open flags first
    page = response.content.decode()
    assert "Impossible claimed time" in page and "Burst" in page and "STAGE_9" in page


def test_the_queue_costs_the_same_queries_however_long_it_is(
    flagged: dict[str, Player], manager: Player, road: World
) -> None:
    client = logged_in(manager)

    def cost() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(QUEUE).status_code == 200
        return len(queries)

    before = cost()
    cheat_burst(road, "another")
    score()

    assert UnlockFlag.objects.count() == 21
    assert cost() == before


def test_the_queue_filters_by_rule_status_and_game(flagged: dict[str, Player], manager: Player, road: World) -> None:
    review.dismiss_flag(flag=the_flag(flagged["burster"]), reviewer=manager)
    client = logged_in(manager)

    def shown(query: str) -> Counter[str]:
        response = client.get(QUEUE + query)
        assert response.status_code == 200
        return Counter(flag.player.username for flag in response.context["cl"].result_list)

    assert shown("?rule=impossible_time") == {"traveller": 1}
    assert shown("?rule=burst") == {"burster": 10}
    assert shown("?rule=too_fast") == {}
    assert shown("?status__exact=open") == {"burster": 9, "traveller": 1}
    assert shown("?status__exact=dismissed") == {"burster": 1}
    assert shown(f"?game__id__exact={road.game.pk}") == {"burster": 10, "traveller": 1}


def test_a_flags_page_shows_its_evidence_readably_and_edits_nothing(
    flagged: dict[str, Player], manager: Player
) -> None:
    flag = the_flag(flagged["traveller"])

    response = logged_in(manager).get(f"{QUEUE}{flag.pk}/change/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "<th>What was seen</th>" in page
    assert "7 days before the player&#x27;s account was created" in page
    assert 'name="_save"' not in page and "<textarea" not in page
    assert f"{flag.pk}/review/dismiss/" in page and f"{flag.pk}/review/revoke/" in page


def test_dismissing_asks_for_a_note_then_closes_the_flag_with_who_and_when(
    flagged: dict[str, Player], manager: Player
) -> None:
    flag = the_flag(flagged["traveller"])
    client = logged_in(manager)
    chosen = {"action": "dismiss", "_selected_action": [flag.pk]}

    asking = client.post(QUEUE, chosen)
    assert "admin/analytics/unlockflag/review.html" in [t.name for t in asking.templates]
    assert the_flag(flagged["traveller"]).status == "open"

    done = client.post(QUEUE, {**chosen, "confirm": "yes", "note": "Clock reset on the device."}, follow=True)

    assert "Dismissed 1." in done.content.decode()
    flag.refresh_from_db()
    assert (flag.status, flag.reviewed_by, flag.review_note) == ("dismissed", manager, "Clock reset on the device.")
    assert timezone.now() - flag.reviewed_at < MINUTE
    assert Unlock.objects.filter(pk=flag.unlock_id).exists()
    assert not ModerationAction.objects.exists()


def standing(api: Api, game: Game, player: Player) -> dict[str, Any]:
    response = api.anonymous().get(f"/api/v1/leaderboards/{game.pk}/player/{player.pk}")
    assert response.status_code == 200, response.content
    return response.json()


def test_revoking_takes_the_unlocks_back_and_totals_and_ranks_follow(
    flagged: dict[str, Player], manager: Player, road: World, api: Api
) -> None:
    burster = flagged["burster"]
    flags = [the_flag(burster, "STAGE_8"), the_flag(burster, "STAGE_9")]
    client = logged_in(manager)
    chosen = {"action": "revoke", "_selected_action": [flag.pk for flag in flags]}
    assert (standing(api, road.game, burster)["rank"], PlayerTotals.objects.get(player=burster).points) == (1, 100)

    no_reason = client.post(QUEUE, {**chosen, "confirm": "yes", "note": " "})
    assert "A revocation needs a reason" in no_reason.content.decode()
    assert Unlock.objects.filter(player=burster).count() == 10

    done = client.post(QUEUE, {**chosen, "confirm": "yes", "note": "Unlocked everything in nine seconds."}, follow=True)

    assert "Revoked 2." in done.content.decode()
    assert not Unlock.objects.filter(player=burster, achievement__api_name__in=["STAGE_8", "STAGE_9"]).exists()
    assert PlayerTotals.objects.get(player=burster).points == 80
    after = standing(api, road.game, burster)
    assert (after["rank"], after["points"]) == (2, 80)
    assert standing(api, road.game, flagged["rival"])["rank"] == 1
    logged = ModerationAction.objects.filter(kind="revoke", player=burster)
    assert sorted(entry.details["api_name"] for entry in logged) == ["STAGE_8", "STAGE_9"]
    assert {(entry.actor, entry.reason) for entry in logged} == {(manager, "Unlocked everything in nine seconds.")}
    for flag in flags:
        flag.refresh_from_db()
        assert (flag.status, flag.reviewed_by, flag.unlock) == ("revoked", manager, None)
        assert flag.review_note == "Unlocked everything in nine seconds."


def test_revoking_from_a_flags_own_page(flagged: dict[str, Player], manager: Player) -> None:
    flag = the_flag(flagged["traveller"])
    url = f"{QUEUE}{flag.pk}/review/revoke/"
    client = logged_in(manager)

    assert "Reason (required)" in client.get(url).content.decode()
    response = client.post(url, {"confirm": "yes", "note": "Tampered clock."})

    assert response.status_code == 302 and response["Location"].endswith(f"{flag.pk}/change/")
    assert the_flag(flagged["traveller"]).status == "revoked"
    assert not Unlock.objects.filter(player=flagged["traveller"]).exists()
    assert PlayerTotals.objects.get(player=flagged["traveller"]).points == 0


def test_a_flag_whose_unlock_was_revoked_elsewhere_closes_without_a_second_revocation(
    flagged: dict[str, Player], manager: Player
) -> None:
    flag = the_flag(flagged["traveller"])
    revoke_unlock(unlock=flag.unlock, actor=manager, reason="Seen in the unlock list first.")
    client = logged_in(manager)

    assert "the unlock was already revoked elsewhere" in client.get(QUEUE).content.decode()
    done = client.post(
        QUEUE, {"action": "revoke", "_selected_action": [flag.pk], "confirm": "yes", "note": "Cheat."}, follow=True
    )

    assert "had already been revoked elsewhere" in done.content.decode()
    flag.refresh_from_db()
    assert (flag.status, flag.reviewed_by) == ("revoked", manager)
    assert ModerationAction.objects.filter(kind="revoke").count() == 1


def test_a_flag_reviewed_already_is_left_as_it_was(flagged: dict[str, Player], manager: Player) -> None:
    flag = the_flag(flagged["traveller"])
    review.dismiss_flag(flag=flag, reviewer=manager, note="fine")

    assert (
        review.revoke_flagged_unlock(flag=flag, reviewer=manager, reason="second thoughts") is review.Decided.NOT_OPEN
    )
    flag.refresh_from_db()
    assert flag.status == "dismissed"
    assert Unlock.objects.filter(pk=flag.unlock_id).exists()


@pytest.mark.parametrize("who", ["developer", "plain staff"])
def test_a_game_developer_or_plain_staff_can_neither_see_nor_work_the_queue(
    flagged: dict[str, Player], road: World, who: str
) -> None:
    user = staff("devon", "Game developers") if who == "developer" else staff("stan")
    if who == "developer":
        GameMember.objects.create(game=road.game, player=user)
    flag = the_flag(flagged["traveller"])
    client = logged_in(user)

    assert client.get(QUEUE).status_code == 403
    assert client.get(f"{QUEUE}{flag.pk}/change/").status_code == 403
    assert client.get(f"{QUEUE}{flag.pk}/review/revoke/").status_code == 403
    forced = client.post(QUEUE, {"action": "revoke", "_selected_action": [flag.pk], "confirm": "yes", "note": "x"})
    assert forced.status_code == 403
    assert client.post(f"{QUEUE}{flag.pk}/review/dismiss/", {"confirm": "yes"}).status_code == 403
    assert QUEUE not in client.get("/admin/").content.decode()
    flag.refresh_from_db()
    assert flag.status == "open" and Unlock.objects.filter(pk=flag.unlock_id).exists()


def test_a_viewer_without_the_review_permission_is_offered_no_decision(flagged: dict[str, Player]) -> None:
    viewer = staff("vera")
    viewer.user_permissions.add(Permission.objects.get(codename="view_unlockflag"))
    client = logged_in(viewer)
    flag = the_flag(flagged["traveller"])

    form = client.get(QUEUE).context["action_form"]
    assert not form or not {name for name, _ in form.fields["action"].choices} & {"dismiss", "revoke"}
    assert f"{flag.pk}/review/" not in client.get(f"{QUEUE}{flag.pk}/change/").content.decode()
    assert client.post(f"{QUEUE}{flag.pk}/review/dismiss/", {"confirm": "yes"}).status_code == 403
    assert client.post(QUEUE, {"action": "dismiss", "_selected_action": [flag.pk], "confirm": "yes"}).status_code in (
        200,
        302,
    )
    flag.refresh_from_db()
    assert flag.status == "open"


def test_the_scoring_job_is_a_celery_task_run_every_thirty_seconds(road: World) -> None:
    [entry] = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "analytics.tasks.score_unlocks"]
    burster = cheat_burst(road, "burster")

    looked_at = score_unlocks.delay().get()

    assert entry["schedule"] == 30
    assert looked_at == len(CHAIN)
    assert set(flags_of(burster)) == set(CHAIN)


def test_the_demo_has_its_cheaters_in_the_queue_and_the_scorer_has_run(db: Any) -> None:
    out = io.StringIO()
    call_command("seed_demo", players=80, days=30, stdout=out)

    flagged = Counter(UnlockFlag.objects.values_list("player__username", flat=True))
    assert flagged["chr0n0_trigg3r"] == 2  # both client-unlockable achievements, impossible times
    assert flagged["w4rp_dr1ve"] >= 1  # the late ones too fast, on top of the server's burst
    assert f"Review queue: {sum(flagged.values())} flagged unlocks." in out.getvalue()
    assert ScoringCursor.objects.get().last_unlock_id == Unlock.objects.latest("pk").pk
