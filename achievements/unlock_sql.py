"""The durable write of unlocks on PostgreSQL: one statement, one round trip.

`write` sends a single statement whose data-modifying CTEs, in one transaction, do
everything an unlock must do before it may answer 2xx:

1. ``INSERT INTO achievements_unlock … ON CONFLICT (player, achievement) DO NOTHING``
   for every requested pair whose player exists and is active: the unique constraint
   decides which unlocks are new, whatever the concurrency. Nothing is read first.
2. One upsert of the per-game stats and one of the player totals, adding only the new
   unlocks' points (read from the achievements table, never from a cache) and counts;
   completion is recomputed against the game's current set, hidden achievements included.
3. One upsert of the standings of every open season the new unlocks count in (window
   ``[starts_at, ends_at)`` holding the unlock time, the season's region, its chosen
   achievements) — the same rules as `leaderboards.services.apply_season_points`.
4. One outbox row (kind ``unlocks``) with what the after-commit work needs
   (`infra.outbox`): the new unlocks, and the rise of every board they moved, from the
   same rows the reply returns as what moved. No NOTIFY: PostgreSQL serialises the commits of notifying
   transactions, fsync included, which capped unlocks at a few hundred a second; the
   relay polls instead.

Every upsert takes its rows in (key) order, so concurrent batches lock rows in one order
and cannot deadlock. Each written row is returned to the caller, as the portable path
(`achievements.services._write_portable`) returns them, for the rank index and the reply.

The statement is PostgreSQL's; SQLite (the laptop default) takes the portable path, and
tests/test_unlock_paths.py proves both leave identical tables.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from infra.sql import prepared_cursor

STATEMENT = """
WITH req AS (
    SELECT r.player_id, r.achievement_id, r.claimed_at
    FROM unnest(%(players)s::uuid[], %(achievements)s::uuid[], %(claimed)s::timestamptz[])
        AS r(player_id, achievement_id, claimed_at)
),
known AS (
    SELECT req.player_id, req.achievement_id, req.claimed_at, a.game_id, a.points, p.region
    FROM req
    JOIN tracker_player p ON p.id = req.player_id AND p.is_active
    JOIN achievements_achievement a ON a.id = req.achievement_id
),
inserted AS (
    INSERT INTO achievements_unlock
        (player_id, achievement_id, game_id, unlocked_at, claimed_at, source, game_key_id)
    SELECT player_id, achievement_id, game_id, %(at)s::timestamptz, claimed_at, %(source)s::text, %(game_key)s::text
    FROM known
    ORDER BY player_id, achievement_id
    ON CONFLICT (player_id, achievement_id) DO NOTHING
    RETURNING player_id, achievement_id
),
new AS (
    SELECT known.* FROM inserted JOIN known USING (player_id, achievement_id)
),
game_new AS (
    SELECT player_id, game_id, sum(points) AS added, count(*) AS n FROM new GROUP BY player_id, game_id
),
game_rows AS (
    INSERT INTO stats_playergamestats AS t (player_id, game_id, points, achievement_count, completion,
        points_reached_at, first_activity, last_activity, playtime_seconds, updated_at)
    SELECT n.player_id, n.game_id, n.added, n.n,
        COALESCE(100.0 * n.n / NULLIF(g.achievement_count, 0), 0),
        CASE WHEN n.added > 0 THEN %(second)s::timestamptz END, %(second)s::timestamptz, %(second)s::timestamptz, 0, %(second)s::timestamptz
    FROM game_new n JOIN tracker_game g ON g.id = n.game_id
    ORDER BY n.player_id, n.game_id
    ON CONFLICT (player_id, game_id) DO UPDATE SET
        points = t.points + excluded.points,
        achievement_count = t.achievement_count + excluded.achievement_count,
        completion = COALESCE(100.0 * (t.achievement_count + excluded.achievement_count)
            / (SELECT NULLIF(g.achievement_count, 0) FROM tracker_game g WHERE g.id = excluded.game_id), 0),
        points_reached_at = CASE WHEN excluded.points > 0
            THEN excluded.points_reached_at ELSE t.points_reached_at END,
        last_activity = excluded.last_activity,
        updated_at = excluded.updated_at
    RETURNING player_id, game_id, points, points_reached_at
),
total_new AS (
    SELECT player_id, sum(points) AS added, count(*) AS n FROM new GROUP BY player_id
),
total_rows AS (
    INSERT INTO stats_playertotals AS t (player_id, points, achievement_count, points_reached_at, updated_at)
    SELECT player_id, added, n, CASE WHEN added > 0 THEN %(second)s::timestamptz END, %(second)s::timestamptz
    FROM total_new
    ORDER BY player_id
    ON CONFLICT (player_id) DO UPDATE SET
        points = t.points + excluded.points,
        achievement_count = t.achievement_count + excluded.achievement_count,
        points_reached_at = CASE WHEN excluded.points > 0
            THEN excluded.points_reached_at ELSE t.points_reached_at END,
        updated_at = excluded.updated_at
    RETURNING player_id, points, points_reached_at
),
season_new AS (
    SELECT s.id AS season_id, s.region AS season_region, n.player_id, sum(n.points) AS added, count(*) AS n
    FROM new n
    JOIN leaderboards_season s ON s.game_id = n.game_id AND s.closed_at IS NULL
        AND s.starts_at <= %(at)s::timestamptz AND s.ends_at > %(at)s::timestamptz
    WHERE (s.region = '' OR s.region = n.region)
        AND (NOT EXISTS (SELECT 1 FROM leaderboards_season_achievements c WHERE c.season_id = s.id)
            OR EXISTS (SELECT 1 FROM leaderboards_season_achievements c
                WHERE c.season_id = s.id AND c.achievement_id = n.achievement_id))
    GROUP BY s.id, s.region, n.player_id
),
season_rows AS (
    INSERT INTO leaderboards_seasonstanding AS t
        (season_id, player_id, points, achievement_count, points_reached_at, updated_at)
    SELECT season_id, player_id, added, n, CASE WHEN added > 0 THEN %(second)s::timestamptz END, %(second)s::timestamptz
    FROM season_new
    ORDER BY season_id, player_id
    ON CONFLICT (season_id, player_id) DO UPDATE SET
        points = t.points + excluded.points,
        achievement_count = t.achievement_count + excluded.achievement_count,
        points_reached_at = CASE WHEN excluded.points > 0
            THEN excluded.points_reached_at ELSE t.points_reached_at END,
        updated_at = excluded.updated_at
    RETURNING season_id, player_id, points, points_reached_at
),
moved AS (
    SELECT 'game' AS kind, r.game_id::text AS scope, r.player_id, r.points, r.points_reached_at, n.added,
        '' AS season_region
    FROM game_rows r JOIN game_new n USING (player_id, game_id)
    UNION ALL
    SELECT 'global', '', r.player_id, r.points, r.points_reached_at, n.added, ''
    FROM total_rows r JOIN total_new n USING (player_id)
    UNION ALL
    SELECT 'season', r.season_id::text, r.player_id, r.points, r.points_reached_at, n.added, n.season_region
    FROM season_rows r JOIN season_new n USING (season_id, player_id)
),
outbox AS (
    INSERT INTO tracker_outboxevent (kind, payload, created)
    SELECT 'unlocks', jsonb_build_object(
        'at', %(at_text)s::text,
        'unlocks', (SELECT COALESCE(jsonb_agg(jsonb_build_array(player_id, achievement_id, game_id, points)), '[]')
            FROM new),
        'rises', (SELECT COALESCE(jsonb_agg(jsonb_build_array(kind, scope, player_id, points - added, points)), '[]')
            FROM moved WHERE added > 0)
    ), now()
    WHERE %(live)s::boolean AND EXISTS (SELECT 1 FROM new)
    RETURNING id
)
SELECT
    (SELECT jsonb_agg(jsonb_build_array(player_id, achievement_id)) FROM inserted),
    (SELECT jsonb_agg(jsonb_build_array(id, region, boards_hidden)) FROM tracker_player
        WHERE id IN (SELECT player_id FROM req) AND is_active),
    (SELECT jsonb_agg(jsonb_build_array(kind, scope, player_id, points, points_reached_at, added, season_region))
        FROM moved),
    (SELECT jsonb_agg(jsonb_build_array(u.player_id, u.achievement_id, u.unlocked_at))
        FROM achievements_unlock u JOIN req USING (player_id, achievement_id))
"""


def write(
    pairs: Sequence[tuple[Any, Any, datetime | None]],
    *,
    at: datetime,
    source: str,
    game_key_id: Any,
    live: bool,
) -> tuple[list[Any], ...]:
    """Run the statement for (player_id, achievement_id, claimed_at) `pairs`, sorted and
    without duplicates. Returns its four JSON columns as lists (None as []): the unlocks
    inserted, the requested players that exist, what moved on which all-regions board
    (kind, scope, player, points, reached at, added, season region) and the unlock times
    of every requested pair that exists."""
    with prepared_cursor() as cursor:
        cursor.execute(
            STATEMENT,
            {
                "players": [p for p, _, _ in pairs],
                "achievements": [a for _, a, _ in pairs],
                "claimed": [c for _, _, c in pairs],
                "at": at,
                "at_text": at.isoformat(),
                "second": at.replace(microsecond=0),
                "source": source,
                "game_key": game_key_id,
                "live": live,
            },
        )
        # Django reads jsonb as text (JSONField decodes its own), so decode here.
        return tuple(json.loads(column) if column else [] for column in cursor.fetchone())
