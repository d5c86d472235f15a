-- The unlock's durable write, one row: insert-or-nothing into a copy of achievements_unlock
-- (same indexes, constraints and foreign keys) and a points upsert into a copy of
-- stats_playergamestats, in one transaction. Variables: players (-D), achievements (-D).
\set n random(1, :players)
\set a random(0, :achievements - 1)
BEGIN;
INSERT INTO bench_pg_unlock (player_id, achievement_id, game_id, unlocked_at, source)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(:n), 12, '0'))::uuid, a.id, a.game_id, now(), 'server'
FROM bench_pg_achievement a WHERE a.idx = :a
ON CONFLICT (player_id, achievement_id) DO NOTHING;
INSERT INTO bench_pg_stats AS t (player_id, game_id, points, achievement_count, completion, points_reached_at,
    playtime_seconds, weighted_score, first_activity, last_activity, updated_at)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(:n), 12, '0'))::uuid, a.game_id, a.points, 1, 0.5, now(),
    0, 0, now(), now(), now()
FROM bench_pg_achievement a WHERE a.idx = :a
ON CONFLICT (player_id, game_id) DO UPDATE SET points = t.points + excluded.points,
    achievement_count = t.achievement_count + 1, points_reached_at = excluded.points_reached_at,
    last_activity = excluded.last_activity, updated_at = excluded.updated_at;
END;
