"""Anomaly review: every unlock scored for suspicion by a few documented rules, in the
background, and a community manager's two decisions on a flagged one.

The rules (their exact definitions and the reasons for each number: docs/analytics.md,
"Anomaly review"). Each one that fires adds its weight and a line of evidence with the
numbers behind it:

- `too_fast`: unlocked in under a fifth of the time the fastest tenth of its holders took,
  counted from the player's first activity in the game, with at most 1 in 100 holders
  about as quick (the time-to-unlock distribution, once it has MIN_SAMPLE unlocks);
- `burst`: one of BURST_UNLOCKS or more unlocks by the player in the game within
  BURST_WINDOW of each other (claimed times where the reporter gave them);
- `rare_before_common`: an achievement held by under RARE_PERCENT of the game's players,
  unlocked while holding none of the game's common ones (COMMON_PERCENT or more);
- `impossible_time`: a game client claimed a time before the player's account or the
  achievement existed.

An unlock whose weights add up to FLAG_THRESHOLD gets an UnlockFlag (open), so every rule
alone puts an unlock in the queue except a burst reported by a game server; the score
orders the queue. Unlocks granted from the admin are never scored.

Scoring never runs on the unlock request: `score_pending` (the Celery task
`analytics.tasks.score_unlocks`, every 30 s) scores the unlocks after the ScoringCursor.
"""

from __future__ import annotations

import bisect
import enum
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import takewhile
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from achievements.models import Achievement, Source, Unlock
from achievements.services import revoke_unlock
from analytics.models import Distribution, ScoringCursor, UnlockFlag
from infra.errors import Invalid, NotFound
from infra.numbers import duration, percent
from stats.models import PlayerGameStats
from tracker.models import Player

# --- The rules' numbers (docs/analytics.md, "Anomaly review") ------------------------------

FLAG_THRESHOLD = 50

# Below this many samples (timed unlocks, players counted) a distribution or a percentage
# says too little about a game.
MIN_SAMPLE = 20

TOO_FAST_WEIGHT = 50
TOO_FAST_SHARE_OF_P10 = 0.2  # under a fifth of the fastest tenth's time,
TOO_FAST_MAX_SHARE_AS_FAST = 0.01  # with at most 1 in 100 holders about as quick (at least 1: itself)

BURST_UNLOCKS = 8
BURST_WINDOW = timedelta(seconds=10)
BURST_WEIGHT = 50
# A game server's batch may carry no claimed times, so an honest session's unlocks arrive
# stamped together: alone that is not enough to flag.
BURST_WEIGHT_SERVER = 25

RARE_PERCENT = 5.0
COMMON_PERCENT = 50.0
RARE_BEFORE_COMMON_WEIGHT = 50

IMPOSSIBLE_TIME_WEIGHT = 60

# Unlocks are scored once they are this old. Ids are handed out before commit, so a lower
# id can commit after a higher one; every live unlock path stamps `unlocked_at` right
# before one short transaction (on PostgreSQL a single statement), so stopping at the first
# unlock stamped less than this ago never steps over one still committing. It also lets a
# burst arrive whole before any of its unlocks is judged.
SCORING_DELAY = timedelta(seconds=60)
BATCH_SIZE = 500

RULE_LABELS = {
    "too_fast": "Too fast",
    "burst": "Burst",
    "rare_before_common": "Rare before common",
    "impossible_time": "Impossible claimed time",
}

REPORTERS = {Source.PLAYER_CLIENT: "a game client", Source.GAME_SERVER: "a game server", Source.DEMO: "the demo loader"}

Evidence = dict[str, Any]


# --- What the rules look at ----------------------------------------------------------------


@dataclass(frozen=True)
class UnlockFacts:
    """One unlock under review."""

    id: int
    player_id: UUID
    game_id: UUID
    achievement_id: UUID
    unlocked_at: datetime
    claimed_at: datetime | None
    source: str
    account_created: datetime
    achievement_created: datetime

    @property
    def when(self) -> datetime:
        """When it happened as far as we know: the reporter's claimed time if it gave one
        (an offline batch carries the real times of play), else the server's stamp."""
        return self.claimed_at or self.unlocked_at


@dataclass(frozen=True)
class PlayerFacts:
    """A player's record in one game, as it stands when their unlocks are scored."""

    first_activity: datetime | None
    first_unlocked_at: datetime | None  # the earliest server stamp of their current unlocks
    unlocks: list[tuple[datetime, UUID]] = field(default_factory=list)  # (when, achievement), by when


@dataclass(frozen=True)
class GameFacts:
    """What a game's whole population says, loaded once per scoring run."""

    players: int  # players with any activity: the denominator of the unlock percentages
    percentages: dict[UUID, float]
    common: frozenset[UUID]
    time_to_unlock: dict[UUID, dict[str, Any]]  # achievement -> Distribution.data


# --- The rules -----------------------------------------------------------------------------


def too_fast(unlock: UnlockFacts, player: PlayerFacts, game: GameFacts) -> Evidence | None:
    distribution = game.time_to_unlock.get(unlock.achievement_id)
    if not distribution or distribution.get("samples", 0) < MIN_SAMPLE:
        return None
    if player.first_activity is None or player.first_unlocked_at is None:
        return None
    # Measured as the distribution is (unlocked_at - first activity), but only when the
    # first activity is something before the player's first unlock (a reported session):
    # a session is often reported when it ends, so until then the clock would start at the
    # first unlock and make every honest later unlock of that session look fast.
    if player.first_activity > player.first_unlocked_at - timedelta(seconds=1):
        return None
    seconds = (unlock.unlocked_at - player.first_activity).total_seconds()
    samples, p10, median = distribution["samples"], float(distribution["p10"]), float(distribution["median"])
    limit = p10 * TOO_FAST_SHARE_OF_P10
    if seconds >= limit:
        return None
    # And next to nobody was that quick: the holders in the histogram's buckets up to the
    # one this time falls in. A few honest players do reach an achievement early (one
    # found by chance on the way); a tail of them makes the time possible.
    upto, as_fast = holders_as_fast(distribution.get("histogram") or [], seconds)
    if as_fast > max(1, samples * TOO_FAST_MAX_SHARE_AS_FAST):
        return None
    nearly = f"{as_fast} of them" if as_fast else "none"
    within = f"{duration(upto)} or less" if upto is not None else "as little"
    return {
        "rule": "too_fast",
        "weight": TOO_FAST_WEIGHT,
        "detail": (
            f"Unlocked {duration(seconds)} after the player's first activity in the game. Of its {samples} "
            f"holders the fastest tenth took {duration(p10)} or more (median {duration(median)}), and "
            f"{nearly} took {within}. The rule fires under a fifth of the fastest tenth's time "
            f"({duration(limit)}) when at most 1 in 100 holders was as quick."
        ),
        "seconds": round(seconds, 1),
        "p10_seconds": p10,
        "median_seconds": median,
        "limit_seconds": round(limit, 1),
        "samples": samples,
        "holders_as_fast": as_fast,
    }


def holders_as_fast(histogram: list[dict[str, Any]], seconds: float) -> tuple[int | None, int]:
    """(upper bound, holders) of the time-to-unlock histogram up to the bucket `seconds`
    falls in: how many holders took at most about as long."""
    counted = 0
    for bucket in histogram:
        counted += bucket["count"]
        if bucket["upto"] is None or bucket["upto"] >= int(seconds):
            return bucket["upto"], counted
    return None, counted


def burst(unlock: UnlockFacts, player: PlayerFacts, game: GameFacts) -> Evidence | None:
    times = [when for when, _ in player.unlocks]
    best, span = 0, timedelta(0)
    # Every window of BURST_WINDOW that holds this unlock starts at one of the unlocks
    # before it within BURST_WINDOW: count each such window.
    for start in range(bisect.bisect_left(times, unlock.when - BURST_WINDOW), bisect.bisect_right(times, unlock.when)):
        end = bisect.bisect_right(times, times[start] + BURST_WINDOW)
        if end - start > best:
            best, span = end - start, times[end - 1] - times[start]
    if best < BURST_UNLOCKS:
        return None
    weight = BURST_WEIGHT_SERVER if unlock.source == Source.GAME_SERVER else BURST_WEIGHT
    return {
        "rule": "burst",
        "weight": weight,
        "detail": (
            f"{best} unlocks by this player in this game within {duration(span.total_seconds())} "
            f"(the rule fires at {BURST_UNLOCKS} within {duration(BURST_WINDOW.total_seconds())}); "
            + (
                "reported by a game server, which may batch a session's unlocks, so it weighs less."
                if weight == BURST_WEIGHT_SERVER
                else f"reported by {REPORTERS.get(unlock.source, unlock.source)}."
            )
        ),
        "unlocks": best,
        "span_seconds": round(span.total_seconds(), 1),
        "source": unlock.source,
    }


def rare_before_common(unlock: UnlockFacts, player: PlayerFacts, game: GameFacts) -> Evidence | None:
    held_by = game.percentages.get(unlock.achievement_id)
    if held_by is None or held_by >= RARE_PERCENT or game.players < MIN_SAMPLE or not game.common:
        return None
    if any(achievement in game.common for when, achievement in player.unlocks if when <= unlock.when):
        return None
    return {
        "rule": "rare_before_common",
        "weight": RARE_BEFORE_COMMON_WEIGHT,
        "detail": (
            f"Held by {percent(held_by)} of the game's {game.players} players, and unlocked while holding "
            f"none of its {len(game.common)} common achievements (held by {percent(COMMON_PERCENT)} or more)."
        ),
        "percent": held_by,
        "players": game.players,
        "common_achievements": len(game.common),
        "common_held": 0,
    }


def impossible_time(unlock: UnlockFacts, player: PlayerFacts, game: GameFacts) -> Evidence | None:
    if unlock.source != Source.PLAYER_CLIENT or unlock.claimed_at is None:
        return None
    # The same allowance for a client's clock as the API gives a claimed time ahead of ours.
    skew = settings.UNLOCK_MAX_CLOCK_SKEW
    before = [
        (what, moment)
        for what, moment in (
            ("the player's account was created", unlock.account_created),
            ("the achievement existed", unlock.achievement_created),
        )
        if unlock.claimed_at < moment - skew
    ]
    if not before:
        return None
    return {
        "rule": "impossible_time",
        "weight": IMPOSSIBLE_TIME_WEIGHT,
        "detail": "The game client claimed it happened at {}, {}.".format(
            unlock.claimed_at.isoformat(timespec="seconds"),
            " and ".join(
                f"{duration((moment - unlock.claimed_at).total_seconds())} before {what} "
                f"({moment.isoformat(timespec='seconds')})"
                for what, moment in before
            ),
        ),
        "claimed_at": unlock.claimed_at.isoformat(),
        "account_created": unlock.account_created.isoformat(),
        "achievement_created": unlock.achievement_created.isoformat(),
    }


Rule = Callable[[UnlockFacts, PlayerFacts, GameFacts], Evidence | None]
RULES: tuple[Rule, ...] = (too_fast, burst, rare_before_common, impossible_time)


def evidence_for(unlock: UnlockFacts, player: PlayerFacts, game: GameFacts) -> list[Evidence]:
    """What every rule found about one unlock (empty: nothing suspicious)."""
    return [found for rule in RULES if (found := rule(unlock, player, game)) is not None]


# --- The background job --------------------------------------------------------------------


def score_pending(*, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> int:
    """Score every unlock after the cursor that is at least SCORING_DELAY old, a batch at a
    time, flagging the suspicious ones. Returns how many unlocks it looked at.

    Each batch is one transaction holding the cursor row locked (SELECT ... FOR UPDATE):
    a second run waits, then starts after what the first scored, so no unlock is scored
    twice, and after downtime the job works through everything since the cursor.
    """
    horizon = (now or timezone.now()) - SCORING_DELAY
    games: dict[UUID, GameFacts] = {}
    scored = 0
    while True:
        done, more = _score_batch(horizon, batch_size, games)
        scored += done
        if not more:
            return scored


UNLOCK_COLUMNS = (
    "pk",
    "player_id",
    "game_id",
    "achievement_id",
    "unlocked_at",
    "claimed_at",
    "source",
    "player__created",
    "achievement__created",
)


def _score_batch(horizon: datetime, limit: int, games: dict[UUID, GameFacts]) -> tuple[int, bool]:
    """Score the next batch; returns (unlocks looked at, whether more may be waiting)."""
    with transaction.atomic():
        ScoringCursor.objects.get_or_create(pk=1)
        cursor = ScoringCursor.objects.select_for_update().get(pk=1)
        rows = list(
            Unlock.objects.filter(pk__gt=cursor.last_unlock_id).order_by("pk").values_list(*UNLOCK_COLUMNS)[:limit]
        )
        ready = [UnlockFacts(*row) for row in takewhile(lambda row: row[4] <= horizon, rows)]
        if not ready:
            return 0, False
        flags = [
            UnlockFlag(
                unlock_id=unlock.id,
                player_id=unlock.player_id,
                game_id=unlock.game_id,
                achievement_id=unlock.achievement_id,
                unlocked_at=unlock.unlocked_at,
                score=score,
                evidence=evidence,
            )
            for unlock, evidence in _assess(ready, games)
            if (score := sum(found["weight"] for found in evidence)) >= FLAG_THRESHOLD
        ]
        UnlockFlag.objects.bulk_create(flags, ignore_conflicts=True)
        cursor.last_unlock_id = ready[-1].id
        cursor.save(update_fields=["last_unlock_id", "updated"])
    return len(ready), len(ready) == len(rows) == limit


def assess(unlocks: QuerySet[Unlock]) -> list[tuple[UnlockFacts, list[Evidence]]]:
    """What the rules find about these unlocks as things stand (the job's judgement,
    without flagging anything or moving the cursor)."""
    return _assess([UnlockFacts(*row) for row in unlocks.order_by("pk").values_list(*UNLOCK_COLUMNS)], {})


def _assess(unlocks: list[UnlockFacts], games: dict[UUID, GameFacts]) -> list[tuple[UnlockFacts, list[Evidence]]]:
    # A community manager's grant is a decision, not a claim to check.
    unlocks = [u for u in unlocks if u.source != Source.ADMIN]
    players = _player_facts(unlocks)
    _load_games(games, {u.game_id for u in unlocks})
    return [
        (unlock, evidence_for(unlock, players[(unlock.player_id, unlock.game_id)], games[unlock.game_id]))
        for unlock in unlocks
    ]


def _player_facts(unlocks: list[UnlockFacts]) -> dict[tuple[UUID, UUID], PlayerFacts]:
    """The record of every (player, game) of a batch: two queries, whatever its size."""
    pairs = {(u.player_id, u.game_id) for u in unlocks}
    if not pairs:
        return {}
    player_ids, game_ids = {p for p, _ in pairs}, {g for _, g in pairs}
    first_activity = {
        (p, g): when
        for p, g, when in PlayerGameStats.objects.filter(player_id__in=player_ids, game_id__in=game_ids).values_list(
            "player_id", "game_id", "first_activity"
        )
    }
    history: dict[tuple[UUID, UUID], list[tuple[datetime, UUID]]] = defaultdict(list)
    first_unlocked: dict[tuple[UUID, UUID], datetime] = {}
    rows = Unlock.objects.filter(player_id__in=player_ids, game_id__in=game_ids).values_list(
        "player_id", "game_id", "achievement_id", "unlocked_at", "claimed_at"
    )
    for p, g, achievement, unlocked_at, claimed_at in rows:
        if (p, g) in pairs:
            history[(p, g)].append((claimed_at or unlocked_at, achievement))
            if (p, g) not in first_unlocked or unlocked_at < first_unlocked[(p, g)]:
                first_unlocked[(p, g)] = unlocked_at
    return {
        pair: PlayerFacts(first_activity.get(pair), first_unlocked.get(pair), sorted(history[pair])) for pair in pairs
    }


def _load_games(games: dict[UUID, GameFacts], game_ids: set[UUID]) -> None:
    """Load what the rules need of games not seen yet in this run: three queries."""
    missing = game_ids - games.keys()
    if not missing:
        return
    players = dict(
        PlayerGameStats.objects.filter(game_id__in=missing)
        .values("game_id")
        .annotate(n=Count("pk"))
        .values_list("game_id", "n")
    )
    percentages: dict[UUID, dict[UUID, float]] = defaultdict(dict)
    for pk, game_id, unlock_percentage in Achievement.objects.filter(game_id__in=missing).values_list(
        "pk", "game_id", "unlock_percentage"
    ):
        percentages[game_id][pk] = unlock_percentage
    distributions: dict[UUID, dict[UUID, dict[str, Any]]] = defaultdict(dict)
    for game_id, achievement_id, data in Distribution.objects.filter(
        game_id__in=missing, kind=Distribution.Kind.TIME_TO_UNLOCK, achievement__isnull=False
    ).values_list("game_id", "achievement_id", "data"):
        distributions[game_id][achievement_id] = data
    for game_id in missing:
        shares = percentages[game_id]
        games[game_id] = GameFacts(
            players=players.get(game_id, 0),
            percentages=shares,
            common=frozenset(a for a, held_by in shares.items() if held_by >= COMMON_PERCENT),
            time_to_unlock=distributions[game_id],
        )


# --- Review decisions ----------------------------------------------------------------------


class Decided(enum.Enum):
    DONE = "done"
    ALREADY_GONE = "already_gone"  # revoked: the unlock had been revoked elsewhere already
    NOT_OPEN = "not_open"  # somebody reviewed the flag first: nothing changed


def dismiss_flag(*, flag: UnlockFlag, reviewer: Player, note: str = "") -> Decided:
    """The unlock is fine: close its flag, with who, when and why."""
    with transaction.atomic():
        locked = UnlockFlag.objects.select_for_update().filter(pk=flag.pk, status=UnlockFlag.Status.OPEN).first()
        if locked is None:
            return Decided.NOT_OPEN
        _close(locked, UnlockFlag.Status.DISMISSED, reviewer, note.strip())
    return Decided.DONE


def revoke_flagged_unlock(*, flag: UnlockFlag, reviewer: Player, reason: str) -> Decided:
    """The unlock was cheated: take it back through the moderation service (totals, ranks
    and open seasons follow; the moderation log records who and why) and close the flag.
    An unlock already revoked elsewhere just closes the flag as revoked."""
    reason = reason.strip()
    if not reason:
        raise Invalid("A revocation needs a reason.", fields={"reason": ["Say why the unlock is revoked."]})
    with transaction.atomic():
        locked = UnlockFlag.objects.select_for_update().filter(pk=flag.pk, status=UnlockFlag.Status.OPEN).first()
        if locked is None:
            return Decided.NOT_OPEN
        unlock = Unlock.objects.filter(pk=locked.unlock_id).first() if locked.unlock_id else None
        outcome = Decided.DONE
        try:
            if unlock is None:
                raise NotFound("The unlock is gone.")
            revoke_unlock(unlock=unlock, actor=reviewer, reason=reason)
        except NotFound:
            outcome = Decided.ALREADY_GONE
            reason = f"{reason} (the unlock had already been revoked)"
        _close(locked, UnlockFlag.Status.REVOKED, reviewer, reason)
    return outcome


def _close(flag: UnlockFlag, status: str, reviewer: Player, note: str) -> None:
    flag.status, flag.reviewed_by, flag.reviewed_at, flag.review_note = status, reviewer, timezone.now(), note
    flag.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_note"])
