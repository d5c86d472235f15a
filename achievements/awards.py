"""Beaten and mastered awards (docs/awards.md) where the unlock does not decide them: a
revocation, and a changed achievement set.

The unlock statement (achievements/unlock.sql, its `awarded` step) grants awards as unlocks
complete them, from the per-game counters it keeps (`PlayerGameStats.progression_count`,
`win_condition_count`, `achievement_count`) against the game's own (`Game.*_count`, kept by
the manifest import). The rules, on a stats row ``s`` of game ``g``:

- beaten: the game has progression or win-condition achievements, ``s`` holds every
  progression one, and at least one win condition when the game has any;
- mastered: the game has achievements and ``s`` holds every one of them.

A revocation judges both again on the set as it is (`after_revoke`); a manifest that changes
what beating the game takes judges every player's beaten award again, set-based
(`after_set_change`). A mastery outlives a set that grew: it is kept, as RetroAchievements
keeps it, for the set the player completed; only a revocation in that game withdraws it.
tests/test_awards_rules.py holds the statement and these to one model of the rules.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection

from achievements.models import Achievement, AchievementType, Award, Unlock
from infra.sql import table
from stats.models import PlayerGameStats
from tracker.models import Game

# Types that count toward the beaten award; "missable" only informs players.
TOWARD_BEATEN = (AchievementType.PROGRESSION.value, AchievementType.WIN_CONDITION.value)

# The rules on a stats row `s` and its game `g`, as the unlock statement states them.
BEATEN = (
    "(g.progression_count > 0 OR g.win_condition_count > 0)"
    " AND s.progression_count >= g.progression_count"
    " AND (g.win_condition_count = 0 OR s.win_condition_count > 0)"
)
MASTERED = "g.achievement_count > 0 AND s.achievement_count >= g.achievement_count"


def after_revoke(*, player_id: uuid.UUID, game_id: uuid.UUID) -> None:
    """Withdraw the player's awards in the game that the set, as it is, no longer grants,
    once a revoked unlock has been taken out of their counters (same transaction). A
    mastery always goes, a mastery of a set that grew since included: the player no longer
    holds what it stood for. A beaten award stays if the player still beats the game
    without the revoked achievement (another win condition, say), with its first time."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            DELETE FROM {table(Award)} w
            USING {table(PlayerGameStats)} s, {table(Game)} g
            WHERE w.player_id = %s AND w.game_id = %s
                AND s.player_id = w.player_id AND s.game_id = w.game_id AND g.id = w.game_id
                AND NOT (CASE w.kind WHEN 'beaten' THEN {BEATEN} ELSE {MASTERED} END)
            """,
            [player_id, game_id],
        )


@dataclass(frozen=True)
class Retype:
    """An achievement of the set whose type a manifest changed."""

    achievement_id: uuid.UUID
    before: str
    after: str


def changes_beaten(game: Game, *, progression: int, win_condition: int, retyped: Iterable[Retype]) -> bool:
    """Whether a manifest that leaves the game with these counts and retypes these
    achievements changes what beating it takes (so `after_set_change` is due)."""
    counts_changed = (game.progression_count, game.win_condition_count) != (progression, win_condition)
    return counts_changed or any(r.before in TOWARD_BEATEN or r.after in TOWARD_BEATEN for r in retyped)


def pause_unlocks() -> None:
    """Hold every unlock, until this transaction ends, from here on.

    The unlock statement reads types and the game's counts in its own snapshot: one that
    began before a set change commits would count a retyped achievement by its old type,
    or grant a beaten award by the old rules after `after_set_change` looked. So an import
    that may change them waits for the unlocks in flight, and later ones wait for it: a
    lock a statement takes before its snapshot, as the season recount's is
    (achievements.services.recount_season). Revocations wait too; reads do not.

    Take it before any row lock: an unlock's foreign keys are checked as it commits, on the
    rows of its game and achievement, so an import holding those rows and then asking for
    this lock would wait for an unlock that waits for it. Taken only by imports that give
    types, for their length (a few milliseconds, and the re-evaluation when one is due).
    """
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {table(Unlock)} IN SHARE MODE")


def wait_for_set_changes() -> None:
    """Take a revocation's place among set changes before its row locks (same transaction).

    A revocation locks the unlock's rows, then deletes it; an import that gives types holds
    unlocks first (`pause_unlocks`), then locks the set's rows. Each would wait for the
    other. Asked first, this lock (which other writers share) makes a revocation wait for
    an import in flight, then read the achievement's type as that import left it."""
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {table(Unlock)} IN ROW EXCLUSIVE MODE")


def after_set_change(*, game: Game, retyped: Iterable[Retype]) -> None:
    """Judge every player's beaten award in `game` again, set-based, after a manifest
    changed its types or added typed achievements (in the import's transaction, after
    `pause_unlocks` and with `game` saved: only a manifest that gives types can).

    1. The holders of each retyped achievement move it between their counters.
    2. Beaten awards the set no longer grants are withdrawn.
    3. Players the set now counts as beaten get the award, dated when their unlocks first
       met the new rules: their last progression unlock or their first win condition,
       whichever came later.

    Masteries are left as they are: a manifest never removes an achievement, so it cannot
    complete anyone's set, and one that adds some leaves earlier masteries standing
    (docs/awards.md).
    """
    stats, awards, unlocks = table(PlayerGameStats), table(Award), table(Unlock)
    moves = [r for r in retyped if r.before in TOWARD_BEATEN or r.after in TOWARD_BEATEN]
    with connection.cursor() as cursor:
        if moves:
            cursor.execute(
                f"""
                UPDATE {stats} s SET
                    progression_count = s.progression_count + d.progression,
                    win_condition_count = s.win_condition_count + d.win_condition
                FROM (
                    SELECT u.player_id, sum(m.progression) AS progression, sum(m.win_condition) AS win_condition
                    FROM {unlocks} u
                    JOIN unnest(%s::uuid[], %s::int[], %s::int[]) AS m(achievement_id, progression, win_condition)
                        USING (achievement_id)
                    GROUP BY u.player_id
                ) d
                WHERE s.game_id = %s AND s.player_id = d.player_id
                """,
                [
                    [r.achievement_id for r in moves],
                    [_delta(r, AchievementType.PROGRESSION) for r in moves],
                    [_delta(r, AchievementType.WIN_CONDITION) for r in moves],
                    game.pk,
                ],
            )
        cursor.execute(
            f"""
            DELETE FROM {awards} w
            USING {stats} s, {table(Game)} g
            WHERE w.game_id = %s AND w.kind = 'beaten'
                AND s.player_id = w.player_id AND s.game_id = w.game_id AND g.id = w.game_id
                AND NOT ({BEATEN})
            """,
            [game.pk],
        )
        cursor.execute(
            f"""
            INSERT INTO {awards} (player_id, game_id, kind, awarded_at)
            SELECT u.player_id, a.game_id, 'beaten', GREATEST(
                max(u.unlocked_at) FILTER (WHERE a.type = 'progression'),
                min(u.unlocked_at) FILTER (WHERE a.type = 'win_condition'))
            FROM {table(Achievement)} a
            JOIN {unlocks} u ON u.achievement_id = a.id
            JOIN {stats} s ON s.player_id = u.player_id AND s.game_id = a.game_id
            JOIN {table(Game)} g ON g.id = a.game_id
            WHERE a.game_id = %s AND a.type IN ('progression', 'win_condition') AND {BEATEN}
            GROUP BY u.player_id, a.game_id
            ORDER BY u.player_id
            ON CONFLICT (player_id, game_id, kind) DO NOTHING
            """,
            [game.pk],
        )


def _delta(retype: Retype, kind: AchievementType) -> int:
    """What a retype adds to a holder's counter of `kind`: +1, -1 or 0."""
    return int(retype.after == kind) - int(retype.before == kind)
