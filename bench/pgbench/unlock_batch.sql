-- The same write for 100 players at once, 100 rows per statement (a batch unlock).
-- Players are consecutive, so concurrent clients lock rows in one order.
\set n random(1, :players - 99)
\set a random(0, :achievements - 1)
BEGIN;
INSERT INTO bench_pg_unlock (player_id, achievement_id, game_id, unlocked_at, source)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(p), 12, '0'))::uuid, a.id, a.game_id, now(), 'server'
FROM generate_series(:n, :n + 99) AS p, bench_pg_achievement a WHERE a.idx = :a
ON CONFLICT (player_id, achievement_id) DO NOTHING;
INSERT INTO bench_pg_stats AS t (player_id, game_id, points, achievement_count, completion, points_reached_at,
    playtime_seconds, weighted_score, first_activity, last_activity, updated_at)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(p), 12, '0'))::uuid, a.game_id, a.points, 1, 0.5, now(),
    0, 0, now(), now(), now()
FROM generate_series(:n, :n + 99) AS p, bench_pg_achievement a WHERE a.idx = :a
ON CONFLICT (player_id, game_id) DO UPDATE SET points = t.points + excluded.points,
    achievement_count = t.achievement_count + 1, points_reached_at = excluded.points_reached_at,
    last_activity = excluded.last_activity, updated_at = excluded.updated_at;
END;
