"""The beaten and mastered awards (docs/awards.md) against a model of their rules.

Hypothesis draws an achievement set (random types, some incremental), then a sequence of
events sent through the real write paths: unlocks one by one, in batches, by progress
reaching its target and by an admin grant; revocations; and manifests that retype the set
and add achievements to it. After every event the awards must be exactly what the model
predicts, each with its time, and the rules must hold outright:

- beaten exactly while the player holds every progression achievement of the current set
  and, when the set has win conditions, one of them; never in a game with neither type;
- mastered exactly when every achievement of the set is held, except a mastery earned
  before the set grew, which is kept (as RetroAchievements keeps it) until a revocation
  in that game;
- an award's time is the time of the unlock that completed it; one granted because a
  manifest changed the rules is dated when the player's unlocks first met them;
- each unlock call's live event names exactly the awards it granted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from achievements.models import Achievement, Award, Source, Unlock
from achievements.services import (
    UnlockRequest,
    grant_achievement,
    import_manifest,
    record_progress,
    revoke_unlock,
    unlock_achievement,
    unlock_achievements,
)
from stats.models import PlayerGameStats
from tests.conftest import make_player
from tracker.models import Game, OutboxEvent, Player

pytestmark = pytest.mark.django_db

EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

TYPES = ["", "progression", "win_condition", "missable"]
PATHS = ["single", "batch", "progress", "grant"]
SLUG = "awards-quest"

# An achievement of the drawn set: (type, incremental).
sets = st.lists(st.tuples(st.sampled_from(TYPES), st.booleans()), min_size=1, max_size=6)
# Events: ("unlock", path, [(player, achievement), ...]), ("revoke", player, achievement),
# ("manifest", [new types by position], [types of added achievements]). Indexes wrap around
# the current set, so every draw names something.
pairs = st.lists(st.tuples(st.integers(0, 1), st.integers(0, 20)), min_size=1, max_size=6)
unlocks = st.tuples(st.just("unlock"), st.sampled_from(PATHS), pairs)
revokes = st.tuples(st.just("revoke"), st.integers(0, 1), st.integers(0, 20))
manifests = st.tuples(
    st.just("manifest"),
    st.lists(st.sampled_from(TYPES), max_size=6),
    st.lists(st.sampled_from(TYPES), max_size=2),
)
histories = st.lists(st.one_of(unlocks, unlocks, unlocks, revokes, manifests), min_size=1, max_size=14)


@dataclass
class Model:
    """The award rules, written plainly, over what each player holds and when."""

    types: list[str]  # by position in the set
    held: dict[tuple[int, int], datetime] = field(default_factory=dict)  # (player, position) -> unlocked at
    awards: dict[tuple[int, str], datetime] = field(default_factory=dict)  # (player, kind) -> awarded at

    def holds(self, player: int, position: int) -> bool:
        return (player, position) in self.held

    def beaten(self, player: int) -> bool:
        progression = [i for i, t in enumerate(self.types) if t == "progression"]
        wins = [i for i, t in enumerate(self.types) if t == "win_condition"]
        return (
            bool(progression or wins)
            and all(self.holds(player, i) for i in progression)
            and (not wins or any(self.holds(player, i) for i in wins))
        )

    def mastered(self, player: int) -> bool:
        return all(self.holds(player, i) for i in range(len(self.types)))

    def unlocked(self, player: int, positions: list[int], at: datetime) -> list[str]:
        """A call unlocked these (new) positions at `at`: the awards it grants."""
        for position in positions:
            self.held[(player, position)] = at
        granted = []
        for kind, holds in (("beaten", self.beaten(player)), ("mastered", self.mastered(player))):
            if holds and (player, kind) not in self.awards:
                self.awards[(player, kind)] = at
                granted.append(kind)
        return granted

    def revoked(self, player: int, position: int) -> None:
        del self.held[(player, position)]
        self.awards.pop((player, "mastered"), None)
        if not self.beaten(player):
            self.awards.pop((player, "beaten"), None)

    def set_changed(self, types: list[str]) -> None:
        """The set now has these types (retyped, grown). Masteries stand; beaten awards
        follow the new rules, a new one dated when the player's unlocks first met them."""
        self.types = types
        for player in (0, 1):
            if not self.beaten(player):
                self.awards.pop((player, "beaten"), None)
            elif (player, "beaten") not in self.awards:
                progression = [self.held[(player, i)] for i, t in enumerate(types) if t == "progression"]
                wins = [
                    self.held[(player, i)]
                    for i, t in enumerate(types)
                    if t == "win_condition" and self.holds(player, i)
                ]
                self.awards[(player, "beaten")] = max([*progression, *([min(wins)] if wins else [])])


class example:  # noqa: N801 - reads as a statement: `with example():`
    """A savepoint rolled back at its end: every example starts from the same world."""

    def __enter__(self) -> None:
        self.atomic = transaction.atomic()
        self.atomic.__enter__()

    def __exit__(self, *exc: Any) -> None:
        transaction.set_rollback(True)
        self.atomic.__exit__(*exc)


def manifest(drawn: list[tuple[str, bool]]) -> dict[str, Any]:
    return {
        "slug": SLUG,
        "name": "Awards Quest",
        "achievements": [
            {"api_name": f"A{i}", "name": f"Step {i}", "points": 5, "type": kind or None}
            | ({"progress_target": 3} if incremental else {})
            for i, (kind, incremental) in enumerate(drawn)
        ],
    }


@dataclass
class World:
    players: list[Player]
    start: datetime

    def achievements(self) -> list[Achievement]:
        return list(Achievement.objects.filter(game__slug=SLUG).order_by("position"))

    def awards(self) -> dict[tuple[int, str], datetime]:
        index = {p.pk: i for i, p in enumerate(self.players)}
        rows = Award.objects.filter(game__slug=SLUG).values_list("player_id", "kind", "awarded_at")
        return {(index[player], kind): at for player, kind, at in rows}


@pytest.fixture
def world(db: Any) -> World:
    return World([make_player("vera"), make_player("walt")], timezone.now() - timedelta(days=1))


def send(world: World, path: str, call: list[tuple[int, int]], at: datetime) -> None:
    """One call of a write path: a batch of `call`, or its one (player, position) pair."""
    achievements = world.achievements()
    if path == "batch":
        requests = [UnlockRequest(world.players[p].pk, achievements[i]) for p, i in call]
        unlock_achievements(requests, source=Source.GAME_SERVER, at=at)
        return
    [(p, i)] = call
    player, achievement = world.players[p], achievements[i]
    if path == "progress" and achievement.progress_target:
        value = achievement.progress_target
        record_progress(player=player, achievement=achievement, value=value, source=Source.GAME_SERVER, at=at)
    elif path == "grant":
        grant_achievement(achievement=achievement, players=[player], actor=None, reason="support")
    else:
        unlock_achievement(player=player, achievement=achievement, source=Source.GAME_SERVER, at=at)


def unlock_event(world: World, model: Model, path: str, drawn: list[tuple[int, int]], tick: datetime) -> None:
    """Send one unlock event through its path, a call per pair unless it is a batch; check
    that each call's live event names exactly the awards the model says it granted."""
    achievements = world.achievements()
    named = [(player, position % len(achievements)) for player, position in drawn]
    calls = [named] if path == "batch" else [[pair] for pair in named]
    for index, call in enumerate(calls):
        events = OutboxEvent.objects.filter(kind="unlocks").order_by("id")
        before = events.count()
        send(world, path, call, tick + timedelta(milliseconds=index))
        expected: set[tuple[str, str]] = set()
        for p in sorted({p for p, _ in call}):
            new = sorted({i for q, i in call if q == p and not model.holds(p, i)})
            if new:
                # The time the write path recorded (an admin grant takes the server's clock).
                at = Unlock.objects.get(player=world.players[p], achievement=achievements[new[0]]).unlocked_at
                expected |= {(str(world.players[p].pk), kind) for kind in model.unlocked(p, new, at)}
        if events.count() > before:
            awarded = events.last().payload["awards"]
            assert {(a["player_id"], a["kind"]) for a in awarded} == expected
            assert {a["game_id"] for a in awarded} <= {str(achievements[0].game_id)}
        else:
            assert expected == set()


def revoke_event(world: World, model: Model, player: int, position: int) -> None:
    achievements = world.achievements()
    position %= len(achievements)
    held = Unlock.objects.filter(player=world.players[player], achievement=achievements[position]).first()
    assert (held is not None) is model.holds(player, position)
    if held is not None:
        revoke_unlock(unlock=held, actor=None, reason="cheated")
        model.revoked(player, position)


def manifest_event(world: World, model: Model, retypes: list[str], added: list[str], drawn: list) -> None:
    types = [retypes[i] if i < len(retypes) else kind for i, kind in enumerate(model.types)] + added
    document = manifest([(kind, drawn[i][1] if i < len(drawn) else False) for i, kind in enumerate(types)])
    import_manifest(manifest=document)
    model.set_changed(types)


def assert_the_rules_hold(world: World, model: Model) -> None:
    awards = world.awards()
    assert awards == model.awards
    for p in (0, 1):
        # Never beaten without every progression achievement (and a win when there are any).
        assert ((p, "beaten") in awards) is model.beaten(p)
        # Mastered exactly when every achievement is held, or before the set grew.
        if model.mastered(p):
            assert (p, "mastered") in awards
        # The counters the unlock statement decides by agree with what is held.
        row = PlayerGameStats.objects.filter(player=world.players[p], game__slug=SLUG).first()
        if row is not None:
            held = [model.types[i] for pp, i in model.held if pp == p]
            assert (row.progression_count, row.win_condition_count) == (
                held.count("progression"),
                held.count("win_condition"),
            )


@EXAMPLES
@given(drawn=sets, history=histories)
def test_awards_follow_their_rules_through_every_write_path(world: World, drawn: list, history: list) -> None:
    with example():
        import_manifest(manifest=manifest(drawn))
        model = Model(types=[kind for kind, _ in drawn])
        for step, event in enumerate(history):
            tick = world.start + timedelta(seconds=step)
            if event[0] == "unlock":
                unlock_event(world, model, event[1], event[2], tick)
            elif event[0] == "revoke":
                revoke_event(world, model, event[1], event[2])
            else:
                manifest_event(world, model, event[1], event[2], drawn)
            assert_the_rules_hold(world, model)


# --- The rules at work, one by one ---------------------------------------------------------------


def typed_game(*types: str) -> Game:
    return import_manifest(manifest=manifest([(kind, False) for kind in types])).game


def give_at(player: Player, game: Game, position: int, at: datetime) -> None:
    achievement = game.achievements.get(position=position)
    unlock_achievement(player=player, achievement=achievement, source=Source.GAME_SERVER, at=at)


def awards_of(player: Player) -> dict[str, datetime]:
    return dict(Award.objects.filter(player=player).values_list("kind", "awarded_at"))


def test_a_game_with_neither_progression_nor_win_conditions_is_never_beaten(alice: Player) -> None:
    game = typed_game("", "missable")
    now = timezone.now()
    give_at(alice, game, 0, now)
    give_at(alice, game, 1, now + timedelta(seconds=1))

    assert awards_of(alice) == {"mastered": now + timedelta(seconds=1)}


def test_any_one_win_condition_beats_a_game_once_every_progression_achievement_is_held(alice: Player) -> None:
    game = typed_game("progression", "win_condition", "win_condition", "")
    now = timezone.now()
    give_at(alice, game, 2, now)  # a win condition, but progression is missing
    assert awards_of(alice) == {}

    give_at(alice, game, 0, now + timedelta(seconds=1))

    assert awards_of(alice) == {"beaten": now + timedelta(seconds=1)}


def test_a_mastery_outlives_a_set_that_grows_and_keeps_its_time(alice: Player) -> None:
    game = typed_game("progression", "")
    now = timezone.now()
    give_at(alice, game, 0, now)
    give_at(alice, game, 1, now + timedelta(seconds=1))
    import_manifest(manifest=manifest([("progression", False), ("", False), ("", False)]))
    assert awards_of(alice) == {"beaten": now, "mastered": now + timedelta(seconds=1)}

    give_at(alice, game, 2, now + timedelta(seconds=2))  # the new one: still the first mastery

    assert awards_of(alice) == {"beaten": now, "mastered": now + timedelta(seconds=1)}


def test_a_new_progression_achievement_withdraws_the_beaten_award_until_it_is_earned(alice: Player) -> None:
    game = typed_game("progression", "win_condition")
    now = timezone.now()
    give_at(alice, game, 0, now)
    give_at(alice, game, 1, now + timedelta(seconds=1))
    import_manifest(manifest=manifest([("progression", False), ("win_condition", False), ("progression", False)]))
    assert set(awards_of(alice)) == {"mastered"}

    give_at(alice, game, 2, now + timedelta(seconds=5))

    assert awards_of(alice)["beaten"] == now + timedelta(seconds=5)


def test_a_retype_that_a_player_already_meets_dates_the_beaten_award_by_their_unlocks(alice: Player) -> None:
    game = typed_game("", "", "")
    now = timezone.now()
    for position in range(2):
        give_at(alice, game, position, now + timedelta(seconds=position))

    import_manifest(manifest=manifest([("progression", False), ("win_condition", False), ("", False)]))

    assert awards_of(alice) == {"beaten": now + timedelta(seconds=1)}


def test_a_revocation_withdraws_a_mastery_kept_from_before_the_set_grew(alice: Player) -> None:
    game = typed_game("")
    now = timezone.now()
    give_at(alice, game, 0, now)
    import_manifest(manifest=manifest([("", False), ("", False)]))
    give_at(alice, game, 1, now + timedelta(seconds=1))
    assert set(awards_of(alice)) == {"mastered"}

    revoke_unlock(unlock=Unlock.objects.get(player=alice, achievement__position=1), actor=None, reason="cheated")

    assert awards_of(alice) == {}


def test_a_historical_import_records_awards_and_announces_none(alice: Player) -> None:
    game = typed_game("win_condition")
    then = timezone.now() - timedelta(days=30)

    unlock_achievement(player=alice, achievement=game.achievements.get(), source=Source.DEMO, at=then, live=False)

    assert awards_of(alice) == {"beaten": then, "mastered": then}
    assert not OutboxEvent.objects.filter(kind="unlocks").exists()


def test_an_unknown_player_earns_nothing(db: Any) -> None:
    game = typed_game("win_condition")

    [outcome] = unlock_achievements([UnlockRequest(uuid.uuid4(), game.achievements.get())], source=Source.GAME_SERVER)

    assert outcome is None
    assert not Award.objects.exists()
