-- The unlock: one statement, one round trip. Loaded once by achievements/unlock_sql.py,
-- whose docstring states what it keeps (idempotence, lock order, what is exact).
WITH
-- Step 0: the requested (player, achievement, claimed at) rows, sorted and unique.
req AS (
    SELECT r.player_id, r.achievement_id, r.claimed_at
    FROM unnest(%(players)s::uuid[], %(achievements)s::uuid[], %(claimed)s::timestamptz[])
        AS r(player_id, achievement_id, claimed_at)
),
-- Step 0: those whose player exists and is active, with the achievement's game, points and type.
known AS (
    SELECT req.player_id, req.achievement_id, req.claimed_at, a.game_id, a.points, a.type, p.region
    FROM req
    JOIN tracker_player p ON p.id = req.player_id AND p.is_active
    JOIN achievements_achievement a ON a.id = req.achievement_id
),
-- Step 1: the unlocks; the unique (player, achievement) constraint decides which are new.
inserted AS (
    INSERT INTO achievements_unlock
        (player_id, achievement_id, game_id, unlocked_at, claimed_at, source, game_key_id)
    SELECT player_id, achievement_id, game_id, %(at)s::timestamptz, claimed_at, %(source)s::text, %(game_key)s::text
    FROM known
    ORDER BY player_id, achievement_id
    ON CONFLICT (player_id, achievement_id) DO NOTHING
    RETURNING player_id, achievement_id
),
-- Step 1: only the new unlocks count from here on.
new AS (
    SELECT known.* FROM inserted JOIN known USING (player_id, achievement_id)
),
-- Step 2: the new points and unlocks per player and game, and how many of them are typed
-- progression and win condition (the beaten award's counters).
game_new AS (
    SELECT player_id, game_id, sum(points) AS added, count(*) AS n,
        count(*) FILTER (WHERE type = 'progression') AS progressed,
        count(*) FILTER (WHERE type = 'win_condition') AS won
    FROM new GROUP BY player_id, game_id
),
-- Step 2: per-game stats upserted; completion against the game's whole set, hidden included.
game_rows AS (
    INSERT INTO stats_playergamestats AS t (player_id, game_id, points, achievement_count, completion,
        points_reached_at, first_activity, last_activity, playtime_seconds, updated_at,
        progression_count, win_condition_count)
    SELECT n.player_id, n.game_id, n.added, n.n,
        COALESCE(100.0 * n.n / NULLIF(g.achievement_count, 0), 0),
        CASE WHEN n.added > 0 THEN %(second)s::timestamptz END, %(second)s::timestamptz, %(second)s::timestamptz, 0, %(second)s::timestamptz,
        n.progressed, n.won
    FROM game_new n JOIN tracker_game g ON g.id = n.game_id
    ORDER BY n.player_id, n.game_id
    ON CONFLICT (player_id, game_id) DO UPDATE SET
        points = t.points + excluded.points,
        achievement_count = t.achievement_count + excluded.achievement_count,
        progression_count = t.progression_count + excluded.progression_count,
        win_condition_count = t.win_condition_count + excluded.win_condition_count,
        completion = COALESCE(100.0 * (t.achievement_count + excluded.achievement_count)
            / (SELECT NULLIF(g.achievement_count, 0) FROM tracker_game g WHERE g.id = excluded.game_id), 0),
        points_reached_at = CASE WHEN excluded.points > 0
            THEN excluded.points_reached_at ELSE t.points_reached_at END,
        last_activity = excluded.last_activity,
        updated_at = excluded.updated_at
    RETURNING player_id, game_id, points, points_reached_at, achievement_count, progression_count, win_condition_count
),
-- Step 2: the awards these unlocks completed (docs/awards.md), judged only for the (player,
-- game) rows this statement changed, from their counters and the game's: beaten when every
-- progression achievement and, if the game has any, a win condition are held (only a write
-- that added one of those can complete it); mastered when every achievement of the set is.
-- Held already: the insert does nothing, and the award keeps its first time.
awarded AS (
    INSERT INTO achievements_award (player_id, game_id, kind, awarded_at)
    SELECT r.player_id, r.game_id, k.kind, %(at)s::timestamptz
    FROM game_rows r
    JOIN game_new n USING (player_id, game_id)
    JOIN tracker_game g ON g.id = r.game_id
    CROSS JOIN (VALUES ('beaten'), ('mastered')) AS k(kind)
    WHERE CASE k.kind
        WHEN 'beaten' THEN (n.progressed > 0 OR n.won > 0)
            AND r.progression_count >= g.progression_count
            AND (g.win_condition_count = 0 OR r.win_condition_count > 0)
        ELSE g.achievement_count > 0 AND r.achievement_count >= g.achievement_count
    END
    ORDER BY r.player_id, r.game_id, k.kind
    ON CONFLICT (player_id, game_id, kind) DO NOTHING
    RETURNING player_id, game_id, kind
),
-- Step 2: the new points and unlocks per player, across games.
total_new AS (
    SELECT player_id, sum(points) AS added, count(*) AS n FROM new GROUP BY player_id
),
-- Step 2: player totals upserted.
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
-- Step 3: the seasons each new unlock counts in: open, window [starts_at, ends_at) holding
-- the unlock time, the season's region (if any), its chosen achievements (if any).
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
-- Step 3: season standings upserted.
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
-- Step 4: what moved on every all-regions board, once, for the reply and the outbox.
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
-- Step 4: the accepted friends of each player whose points rose on a game's board.
risers_friends AS (
    SELECT m.scope, m.player_id, m.points, m.added, f.addressee_id AS friend_id
    FROM moved m JOIN tracker_friendship f ON f.requester_id = m.player_id AND f.status = 'accepted'
    WHERE m.kind = 'game' AND m.added > 0
    UNION ALL
    SELECT m.scope, m.player_id, m.points, m.added, f.requester_id
    FROM moved m JOIN tracker_friendship f ON f.addressee_id = m.player_id AND f.status = 'accepted'
    WHERE m.kind = 'game' AND m.added > 0
),
-- Step 4: the friends each game rise passed, decided here, at the moment of the rise: those
-- whose points the player went from at most to strictly more, as this statement found them
-- (a rival alert sent late says what was true then: docs/live.md).
passed AS (
    SELECT r.scope, r.player_id, jsonb_agg(jsonb_build_object(
            'player_id', fs.player_id, 'points', fs.points, 'rival_points', r.points)) AS friends
    FROM risers_friends r
    JOIN stats_playergamestats fs ON fs.player_id = r.friend_id AND fs.game_id = r.scope::uuid
    WHERE fs.points >= r.points - r.added AND fs.points < r.points
    GROUP BY r.scope, r.player_id
),
-- Step 4: one outbox row of kind "unlocks" (payload: infra.outbox.UnlocksPayload).
outbox AS (
    INSERT INTO tracker_outboxevent (kind, payload, created)
    SELECT 'unlocks', jsonb_build_object(
        'at', %(at_text)s::text,
        'unlocks', (SELECT COALESCE(jsonb_agg(jsonb_build_object(
                'player_id', player_id, 'achievement_id', achievement_id, 'game_id', game_id, 'points', points
            )), '[]')
            FROM new),
        'rises', (SELECT COALESCE(jsonb_agg(jsonb_build_object(
                'kind', m.kind, 'scope', m.scope, 'player_id', m.player_id, 'before', m.points - m.added,
                'after', m.points, 'passed', COALESCE(passed.friends, '[]')
            )), '[]')
            FROM moved m
            LEFT JOIN passed ON m.kind = 'game' AND passed.scope = m.scope AND passed.player_id = m.player_id
            WHERE m.added > 0),
        'awards', (SELECT COALESCE(jsonb_agg(jsonb_build_object(
                'player_id', player_id, 'game_id', game_id, 'kind', kind
            )), '[]')
            FROM awarded)
    ), now()
    WHERE %(live)s::boolean AND EXISTS (SELECT 1 FROM new)
    RETURNING id
)
-- The reply (achievements.unlock_sql.Result), one named column each.
SELECT
    (SELECT jsonb_agg(jsonb_build_object('player_id', player_id, 'achievement_id', achievement_id))
        FROM inserted) AS created,
    (SELECT jsonb_agg(jsonb_build_object('player_id', id, 'region', region, 'hidden', boards_hidden))
        FROM tracker_player
        WHERE id IN (SELECT player_id FROM req) AND is_active) AS players,
    (SELECT jsonb_agg(jsonb_build_object('kind', kind, 'scope', scope, 'player_id', player_id, 'points', points,
            'reached_at', points_reached_at, 'added', added, 'season_region', season_region))
        FROM moved) AS moved,
    (SELECT jsonb_agg(jsonb_build_object('player_id', u.player_id, 'achievement_id', u.achievement_id,
            'unlocked_at', u.unlocked_at))
        FROM achievements_unlock u JOIN req USING (player_id, achievement_id)) AS earlier
