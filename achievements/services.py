"""Every write to achievements, unlocks and progress goes through these functions.

The API views, the batch endpoint, the admin, the Celery tasks and the demo seeder all
call them; nothing else writes these tables.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from achievements import tasks
from achievements.models import Achievement, Progress, Source, Unlock
from leaderboards.models import ModerationAction, Season, SeasonStanding
from leaderboards.services import (
    apply_season_points,
    changes_for,
    push_to_index,
    rebuild_season_board,
    record_moderation,
    reindex_player_after_commit,
)
from stats import tasks as stats_tasks
from stats.services import NewTotals, PointsDelta, apply_deltas
from tracker.errors import Conflict, Invalid, NotFound
from tracker.models import Game, GameKey, Player
from tracker.sql import prep, rows_sql, table, to_python


@dataclass(frozen=True)
class UnlockRequest:
    player: Player
    achievement: Achievement
    claimed_at: datetime | None = None


@dataclass(frozen=True)
class UnlockOutcome:
    player: Player
    achievement: Achievement
    created: bool
    unlocked_at: datetime


def unlock_achievements(
    requests: Sequence[UnlockRequest],
    *,
    source: str,
    game_key: GameKey | None = None,
    at: datetime | None = None,
    live: bool = True,
) -> list[UnlockOutcome]:
    """Record unlocks, each at most once per player and achievement, whatever the concurrency.

    The unique (player, achievement) constraint with ``ON CONFLICT DO NOTHING`` decides
    which unlocks are new; only those add points, in the same transaction. Effects that
    other systems see (rank index, notifications, rarity) are scheduled after commit.
    Returns one outcome per request, in order.

    `live=False` is for historical imports (the demo seeder): totals, seasons and the rank
    index are kept as always, but nobody is notified of the past and rarity is left to
    the periodic refresh.
    """
    if not requests:
        return []
    at = at or timezone.now()
    seen: set[tuple[Any, Any]] = set()
    fresh: list[UnlockRequest] = []
    for request in requests:
        pair = (request.player.pk, request.achievement.pk)
        if pair not in seen:
            seen.add(pair)
            fresh.append(request)

    rows = [
        (
            prep(Unlock, "player", r.player.pk),
            prep(Unlock, "achievement", r.achievement.pk),
            prep(Unlock, "game", r.achievement.game_id),
            prep(Unlock, "unlocked_at", at),
            prep(Unlock, "claimed_at", r.claimed_at),
            source,
            game_key.pk if game_key else None,
        )
        # A fixed order keeps concurrent batches from deadlocking on the unique index.
        for r in sorted(fresh, key=lambda r: (str(r.player.pk), str(r.achievement.pk)))
    ]
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {table(Unlock)} (player_id, achievement_id, game_id, unlocked_at,
                    claimed_at, source, game_key_id)
                VALUES {rows_sql(rows)}
                ON CONFLICT (player_id, achievement_id) DO NOTHING
                RETURNING player_id, achievement_id
                """,
                [value for row in rows for value in row],
            )
            created = {
                (to_python(Unlock, "player", p), to_python(Unlock, "achievement", a)) for p, a in cursor.fetchall()
            }
        new = [r for r in fresh if (r.player.pk, r.achievement.pk) in created]
        if new:
            totals = apply_deltas(
                [PointsDelta(r.player.pk, r.achievement.game_id, r.achievement.points, 1) for r in new], at=at
            )
            seasons = apply_season_points([(r.player, r.achievement, at) for r in new], sign=1, at=at)
            changes = changes_for(totals, seasons, {r.player.pk: r.player for r in new})
            transaction.on_commit(lambda: push_to_index(changes, only_up=True), robust=True)
            if live:
                game_ids = sorted({str(r.achievement.game_id) for r in new})
                announced = [[str(r.player.pk), str(r.achievement.pk), at.isoformat()] for r in new]
                risen = _rises(new, totals, seasons)
                transaction.on_commit(lambda: tasks.schedule_rarity_refresh(game_ids), robust=True)
                transaction.on_commit(lambda: tasks.announce_unlocks.delay(announced, risen), robust=True)
        earlier = _existing_unlock_times([r for r in requests if (r.player.pk, r.achievement.pk) not in created])

    outcomes = []
    reported: set[tuple[Any, Any]] = set()
    for r in requests:
        pair = (r.player.pk, r.achievement.pk)
        is_new = pair in created and pair not in reported
        reported.add(pair)
        outcomes.append(UnlockOutcome(r.player, r.achievement, is_new, at if is_new else earlier.get(pair, at)))
    return outcomes


def _rises(new: Sequence[UnlockRequest], totals: NewTotals, seasons: Sequence[tuple]) -> list[list[Any]]:
    """[board kind, scope, player, points before, points after] for every board on which an
    unlock raised a player's points: the game's, the global one, and seasons'."""
    per_game: dict[tuple[Any, Any], int] = defaultdict(int)
    per_player: dict[Any, int] = defaultdict(int)
    for r in new:
        per_game[(r.player.pk, r.achievement.game_id)] += r.achievement.points
        per_player[r.player.pk] += r.achievement.points
    rises = [
        ["game", str(game_id), str(player_id), points - per_game[(player_id, game_id)], points]
        for player_id, game_id, points, _ in totals.games
        if per_game[(player_id, game_id)]
    ]
    rises += [
        ["global", "", str(player_id), points - per_player[player_id], points]
        for player_id, points, _ in totals.players
        if per_player[player_id]
    ]
    rises += [
        ["season", str(season_id), str(player_id), points - added, points]
        for season_id, player_id, points, _, added in seasons
        if added > 0
    ]
    return rises


def unlock_achievement(
    *,
    player: Player,
    achievement: Achievement,
    source: str,
    claimed_at: datetime | None = None,
    game_key: GameKey | None = None,
    at: datetime | None = None,
    live: bool = True,
) -> UnlockOutcome:
    [outcome] = unlock_achievements(
        [UnlockRequest(player, achievement, claimed_at)], source=source, game_key=game_key, at=at, live=live
    )
    return outcome


def _existing_unlock_times(requests: Sequence[UnlockRequest]) -> dict[tuple[Any, Any], datetime]:
    if not requests:
        return {}
    players = {r.player.pk for r in requests}
    achievements = {r.achievement.pk for r in requests}
    rows = Unlock.objects.filter(player_id__in=players, achievement_id__in=achievements)
    return {(p, a): t for p, a, t in rows.values_list("player_id", "achievement_id", "unlocked_at")}


@dataclass(frozen=True)
class ProgressOutcome:
    value: int
    target: int
    unlocked: bool  # the player holds the achievement, by this progress or before
    unlock: UnlockOutcome | None = field(default=None)  # set when this progress reached the target


def record_progress(
    *,
    player: Player,
    achievement: Achievement,
    value: int,
    source: str,
    game_key: GameKey | None = None,
    at: datetime | None = None,
) -> ProgressOutcome:
    """Record absolute progress toward an incremental achievement.

    Progress never goes backwards: a lower value than the stored one changes nothing.
    Reaching the target unlocks the achievement through `unlock_achievements`.
    """
    target = achievement.progress_target
    if target is None:
        raise Invalid(
            "This achievement is not incremental; unlock it instead.",
            fields={"achievement_id": ["Achievement has no progress_target."]},
        )
    if value < 0:
        raise Invalid("Progress cannot be negative.", fields={"value": ["Must be 0 or more."]})
    at = at or timezone.now()
    capped = min(value, target)
    progress = table(Progress)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {progress} AS p (player_id, achievement_id, value, updated_at)
                VALUES (%s, %s, %s, %s)
                ON CONFLICT (player_id, achievement_id) DO UPDATE SET
                    value = CASE WHEN excluded.value > p.value THEN excluded.value ELSE p.value END,
                    updated_at = CASE WHEN excluded.value > p.value
                        THEN excluded.updated_at ELSE p.updated_at END
                RETURNING value
                """,
                [
                    prep(Progress, "player", player.pk),
                    prep(Progress, "achievement", achievement.pk),
                    capped,
                    prep(Progress, "updated_at", at),
                ],
            )
            (stored,) = cursor.fetchone()
        if stored >= target:
            unlock = unlock_achievement(player=player, achievement=achievement, source=source, game_key=game_key, at=at)
            return ProgressOutcome(value=stored, target=target, unlocked=True, unlock=unlock)
    held = Unlock.objects.filter(player=player, achievement=achievement).exists()
    return ProgressOutcome(value=stored, target=target, unlocked=held)


# --- Achievement sets ---------------------------------------------------------------------

MANIFEST_FIELDS = ("name", "description", "icon", "points", "hidden", "client_unlockable", "progress_target")


@dataclass(frozen=True)
class ImportResult:
    game: Game
    game_created: bool
    created: int
    updated: int


def import_manifest(*, manifest: dict[str, Any]) -> ImportResult:
    """Create or update a game and its achievement set from a validated manifest.

    Idempotent: achievements are matched by `api_name`, updated in place, never
    duplicated. Achievements missing from the manifest are kept, since players hold
    unlocks of them. Points of an achievement somebody has already unlocked cannot
    change: every total, board and season built on them would silently become wrong.
    """
    with transaction.atomic():
        game, game_created = Game.objects.select_for_update().get_or_create(
            slug=manifest["slug"], defaults={"name": manifest["name"]}
        )
        game.name = manifest["name"]
        game.description = manifest.get("description", game.description)
        existing = {a.api_name: a for a in game.achievements.select_for_update()}
        to_create, to_update = [], []
        for position, item in enumerate(manifest["achievements"]):
            values = {name: item[name] for name in MANIFEST_FIELDS if name in item}
            values["position"] = position
            current = existing.get(item["api_name"])
            if current is None:
                to_create.append(Achievement(game=game, api_name=item["api_name"], **values))
                continue
            if values.get("points", current.points) != current.points and current.unlocks.exists():
                raise Conflict(
                    f"Points of '{current.api_name}' cannot change: players have unlocked it.",
                    fields={"achievements": [f"{current.api_name}: points are fixed once unlocked."]},
                )
            if any(getattr(current, name) != value for name, value in values.items()):
                for name, value in values.items():
                    setattr(current, name, value)
                to_update.append(current)
        Achievement.objects.bulk_create(to_create)
        if to_update:
            Achievement.objects.bulk_update(to_update, ["position", *MANIFEST_FIELDS])
        counts = list(game.achievements.values_list("points", flat=True))
        count_changed = game.achievement_count != len(counts)
        game.achievement_count = len(counts)
        game.total_points = sum(counts)
        game.save(update_fields=["name", "description", "achievement_count", "total_points"])
        if count_changed:
            # Every player's completion changes: a background job for a big game. New
            # unlocks meanwhile already count against the new set (stats.services).
            game_id = str(game.pk)
            transaction.on_commit(lambda: stats_tasks.refresh_completion.delay(game_id), robust=True)
    return ImportResult(game, game_created, len(to_create), len(to_update))


def revoke_unlock(*, unlock: Unlock, actor: Player | None, reason: str) -> None:
    """Take an unlock back (moderation): the player's totals, completion, open seasons'
    points and every board follow, and the revocation is recorded with who and why.
    Closed seasons keep their archived results."""
    now = timezone.now()
    with transaction.atomic():
        unlock = Unlock.objects.select_for_update().select_related("achievement", "player").filter(pk=unlock.pk).first()
        if unlock is None:
            raise NotFound("That unlock does not exist (already revoked?).")
        player, achievement = unlock.player, unlock.achievement
        unlock.delete()
        # Progress at the target would unlock it again on the next report.
        Progress.objects.filter(player=player, achievement=achievement).delete()
        apply_deltas([PointsDelta(player.pk, achievement.game_id, -achievement.points, -1)], at=now)
        apply_season_points([(player, achievement, unlock.unlocked_at)], sign=-1, at=now)
        record_moderation(
            kind=ModerationAction.Kind.REVOKE,
            actor=actor,
            player=player,
            reason=reason,
            unlocked_at=unlock.unlocked_at.isoformat(),
            **_logged(achievement),
        )
        reindex_player_after_commit(player)
        game_ids = [str(achievement.game_id)]
        transaction.on_commit(lambda: tasks.schedule_rarity_refresh(game_ids), robust=True)


def grant_achievement(*, achievement: Achievement, players: Sequence[Player], actor: Player | None, reason: str) -> int:
    """Unlock an achievement for players by hand (support: a bug kept a game from reporting
    it), through the one unlock path, and log each grant. Returns how many were new."""
    with transaction.atomic():
        outcomes = unlock_achievements([UnlockRequest(p, achievement) for p in players], source=Source.ADMIN)
        for outcome in outcomes:
            if outcome.created:
                record_moderation(
                    kind=ModerationAction.Kind.GRANT,
                    actor=actor,
                    player=outcome.player,
                    reason=reason,
                    **_logged(achievement),
                )
    return sum(outcome.created for outcome in outcomes)


def _logged(achievement: Achievement) -> dict[str, Any]:
    """What the moderation log keeps of an achievement a grant or revocation touched."""
    return {
        "game": str(achievement.game_id),
        "achievement": str(achievement.pk),
        "api_name": achievement.api_name,
        "points": achievement.points,
    }


def source_for(game_key: GameKey | None) -> str:
    return Source.GAME_SERVER if game_key else Source.PLAYER_CLIENT


def recount_season(season: Season) -> int:
    """Recount an open season's standings from the unlocks inside its window, after a
    community manager created or changed it (its window may have begun already, or its
    region or chosen achievements changed). Returns the players standing."""
    if season.closed_at is not None:
        return 0
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Unlocks committing meanwhile wait to add their season points on top of the
            # recount, and the recount sees every unlock committed before it: none is lost
            # or counted twice. (SQLite serialises writers anyway.)
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {table(SeasonStanding)} IN SHARE ROW EXCLUSIVE MODE")
        chosen = set(season.achievements.values_list("pk", flat=True))
        unlocks = Unlock.objects.filter(
            game=season.game_id, unlocked_at__gte=season.starts_at, unlocked_at__lt=season.ends_at
        ).order_by("unlocked_at")
        if season.region:
            unlocks = unlocks.filter(player__region=season.region)
        if chosen:
            unlocks = unlocks.filter(achievement__in=chosen)
        standings: dict[Any, SeasonStanding] = {}
        for player_id, points, at in unlocks.values_list("player_id", "achievement__points", "unlocked_at"):
            standing = standings.setdefault(
                player_id,
                SeasonStanding(season=season, player_id=player_id, points=0, achievement_count=0, updated_at=at),
            )
            standing.points += points
            standing.achievement_count += 1
            if points:
                standing.points_reached_at = at.replace(microsecond=0)
        SeasonStanding.objects.filter(season=season).delete()
        SeasonStanding.objects.bulk_create(standings.values(), batch_size=2000)
        transaction.on_commit(lambda: rebuild_season_board(season), robust=True)
    return len(standings)
