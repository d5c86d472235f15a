"""Every write to achievements, unlocks and progress goes through these functions.

The API views, the batch endpoint, the admin, the Celery tasks and the demo seeder all
call them; nothing else writes these tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, F, Max, Q, QuerySet, Sum
from django.utils import timezone

from achievements import awards, selectors, tasks, unlock_sql
from achievements.models import Achievement, AchievementType, Progress, Source, Unlock
from infra import outbox, replicas
from infra.errors import Conflict, Invalid, NotFound
from infra.sql import prep, table
from leaderboards.boards import Board, Member, Moves, Score
from leaderboards.models import ModerationAction, Season, SeasonStanding
from leaderboards.selectors import rank_on
from leaderboards.services import record_moderation
from leaderboards.sync import (
    index_changes,
    push_and_rank,
    push_to_index,
    rebuild_season_board,
    reindex_player_after_commit,
)
from stats import tasks as stats_tasks
from stats.services import take_back_unlock
from tracker import feedhead
from tracker import selectors as tracker_selectors
from tracker.auth import activity_audience
from tracker.models import Game, GameKey, Player
from tracker.regions import Region


@dataclass(frozen=True)
class UnlockRequest:
    player_id: uuid.UUID
    achievement: Achievement
    claimed_at: datetime | None = None


@dataclass(frozen=True)
class UnlockOutcome:
    player_id: uuid.UUID
    achievement: Achievement
    created: bool
    unlocked_at: datetime
    new_rank: int | None = None  # on the game's board, when asked for (`rank=True`)
    # Asked for, but it could not be read once the unlock had committed (new_rank is None):
    # the unlock stands, and its caller says so instead of failing it.
    rank_unavailable: bool = False


def unlock_achievements(
    requests: Sequence[UnlockRequest],
    *,
    source: str,
    game_key: GameKey | None = None,
    at: datetime | None = None,
    live: bool = True,
    rank: bool = False,
) -> list[UnlockOutcome | None]:
    """Record unlocks, each at most once per player and achievement, whatever the concurrency.

    The unique (player, achievement) constraint with ``ON CONFLICT DO NOTHING`` decides
    which unlocks are new; only those add points, in the same transaction, which also
    records an outbox event for the live side (notifications, rival alerts, rarity): the
    relay sends it after commit, at least once (infra.outbox). The whole durable write is
    one statement (achievements.unlock_sql), the one home of the unlock's rules. After commit the rank index
    gets the new scores, and with `rank` each outcome its game-board rank, in one Redis call.
    Nothing after the commit can fail the call: a rank that cannot be read then (Redis and
    PostgreSQL both failing) is `rank_unavailable`.

    Returns one outcome per request, in order; None where the player does not exist (or is
    deactivated), in which case nothing was written for that request.

    `live=False` is for historical imports (the demo seeder): totals, seasons and the rank
    index are kept as always, but nobody is notified of the past and rarity is left to
    the periodic refresh.
    """
    if not requests:
        return []
    at = at or timezone.now()
    # One row per pair, in a fixed order: concurrent batches then lock rows in one order.
    pairs = sorted({(r.player_id, r.achievement.pk): r.claimed_at for r in reversed(requests)}.items())
    top_level = not connection.in_atomic_block
    # One statement is a transaction of its own: no BEGIN and COMMIT round trips.
    written = _write(pairs, at=at, source=source, game_key=game_key, live=live)
    if live and written.created:
        outbox.wake()
    # Read your own writes: these players read the primary for a while (docs/replicas.md).
    replicas.pin_players({player_id for player_id, _ in written.created})
    # Pairs another request inserted while this statement ran (its snapshot could not see
    # them): their time is read after commit, where a failure is this request's 503, and
    # the retry answers 200 with it. Unknown players hold nothing to read.
    missing = [p for p, _ in pairs if p[0] in written.players and p not in written.created and p not in written.earlier]
    earlier = {**written.earlier, **_existing_unlock_times(missing)}
    changes = index_changes(written.moves, written.players)
    asks = [(Board.game(r.achievement.game_id), str(r.player_id)) for r in requests if rank]
    if top_level:
        ranks = push_and_rank(changes, asks)
    else:
        transaction.on_commit(lambda: push_to_index(changes, only_up=True), robust=True)
        ranks = {ask: rank_on(*ask) for ask in asks}

    outcomes: list[UnlockOutcome | None] = []
    reported: set[tuple[Any, Any]] = set()
    for r in requests:
        pair = (r.player_id, r.achievement.pk)
        if r.player_id not in written.players:
            outcomes.append(None)
            continue
        is_new = pair in written.created and pair not in reported
        reported.add(pair)
        new_rank = ranks.get((Board.game(r.achievement.game_id), str(r.player_id))) if ranks is not None else None
        outcomes.append(
            UnlockOutcome(
                r.player_id,
                r.achievement,
                is_new,
                at if is_new else earlier.get(pair, at),
                new_rank,
                rank_unavailable=rank and ranks is None,
            )
        )
    return outcomes


@dataclass(frozen=True)
class Written:
    """What the unlock statement changed, as Python values."""

    created: set[tuple[uuid.UUID, uuid.UUID]]
    players: dict[uuid.UUID, Member]  # every requested player that exists and is active
    moves: Moves  # every game, global and season board the new unlocks moved
    earlier: dict[tuple[uuid.UUID, uuid.UUID], datetime]  # when pairs not created were unlocked


def _write(
    pairs: list[tuple[tuple[uuid.UUID, uuid.UUID], datetime | None]],
    *,
    at: datetime,
    source: str,
    game_key: GameKey | None,
    live: bool,
) -> Written:
    result = unlock_sql.write(
        [(p, a, claimed) for (p, a), claimed in pairs],
        at=at,
        source=source,
        game_key_id=game_key.pk if game_key else None,
        live=live,
    )
    u = uuid.UUID
    return Written(
        created={(u(row["player_id"]), u(row["achievement_id"])) for row in result.created},
        players={u(row["player_id"]): Member(row["region"], row["hidden"]) for row in result.players},
        moves=Moves(
            scores=[
                Score(
                    Board(row["kind"], row["scope"]),
                    row["player_id"],
                    row["points"],
                    _timestamp(row["reached_at"]),
                    row["added"],
                )
                for row in result.moved
            ],
            season_regions={row["scope"]: row["season_region"] for row in result.moved if row["kind"] == "season"},
        ),
        earlier={
            (u(row["player_id"]), u(row["achievement_id"])): datetime.fromisoformat(row["unlocked_at"])
            for row in result.earlier
        },
    )


def _timestamp(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


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
        [UnlockRequest(player.pk, achievement, claimed_at)], source=source, game_key=game_key, at=at, live=live
    )
    if outcome is None:
        raise NotFound(f"Unknown player '{player.pk}'.")
    return outcome


def _existing_unlock_times(pairs: Sequence[tuple[Any, Any]]) -> dict[tuple[Any, Any], datetime]:
    if not pairs:
        return {}
    rows = Unlock.objects.filter(player_id__in={p for p, _ in pairs}, achievement_id__in={a for _, a in pairs})
    return {(p, a): t for p, a, t in rows.values_list("player_id", "achievement_id", "unlocked_at")}


@dataclass(frozen=True)
class ProgressOutcome:
    value: int
    target: int
    unlocked: bool  # the player holds the achievement, by this progress or before
    unlock: UnlockOutcome | None = field(default=None)  # set when this progress reached the target
    new_rank: int | None = None  # on the game's board, when asked for (`rank=True`) and unlocked
    rank_unavailable: bool = False  # as UnlockOutcome's


def record_progress(
    *,
    player: Player,
    achievement: Achievement,
    value: int,
    source: str,
    game_key: GameKey | None = None,
    at: datetime | None = None,
    rank: bool = False,
) -> ProgressOutcome:
    """Record absolute progress toward an incremental achievement.

    Progress never goes backwards: a lower value than the stored one changes nothing.
    Reaching the target unlocks the achievement through `unlock_achievements`. With `rank`,
    a player who holds it gets their game-board rank, read after commit as the unlock's is.
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
        replicas.pin_players([player.pk])
        unlock = None
        if stored >= target:
            unlock = unlock_achievement(player=player, achievement=achievement, source=source, game_key=game_key, at=at)
    held = unlock is not None or Unlock.objects.filter(player=player, achievement=achievement).exists()
    if not (rank and held):
        return ProgressOutcome(value=stored, target=target, unlocked=held, unlock=unlock)
    ask = (Board.game(achievement.game_id), str(player.pk))
    # Committed by now, unless a caller's transaction holds this one: then a failure is
    # still the caller's to roll back.
    ranks = push_and_rank([], [ask]) if not connection.in_atomic_block else {ask: rank_on(*ask)}
    return ProgressOutcome(
        value=stored,
        target=target,
        unlocked=True,
        unlock=unlock,
        new_rank=ranks[ask] if ranks is not None else None,
        rank_unavailable=ranks is None,
    )


# --- Achievement sets ---------------------------------------------------------------------

MANIFEST_FIELDS = ("name", "description", "icon", "points", "hidden", "client_unlockable", "progress_target", "type")


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
    A `type` of None is none. A manifest that changes what beating the game takes
    (achievement types, typed achievements added) judges every player's beaten award
    again, holding unlocks meanwhile (achievements.awards).
    """
    with transaction.atomic():
        if any("type" in item for item in manifest["achievements"]):
            # Only a manifest that gives types can change what beating the game takes; it
            # holds unlocks first, before the rows it locks below (awards.pause_unlocks).
            awards.pause_unlocks()
        game, game_created = Game.objects.select_for_update().get_or_create(
            slug=manifest["slug"], defaults={"name": manifest["name"]}
        )
        game.name = manifest["name"]
        game.description = manifest.get("description", game.description)
        existing = {a.api_name: a for a in game.achievements.select_for_update()}
        to_create, to_update, retyped = [], [], []
        for position, item in enumerate(manifest["achievements"]):
            values = {name: item[name] for name in MANIFEST_FIELDS if name in item}
            values["position"] = position
            if "type" in values:
                values["type"] = values["type"] or ""
            current = existing.get(item["api_name"])
            if current is None:
                to_create.append(Achievement(game=game, api_name=item["api_name"], **values))
                continue
            if values.get("points", current.points) != current.points and current.unlocks.exists():
                raise Conflict(
                    f"Points of '{current.api_name}' cannot change: players have unlocked it.",
                    fields={"achievements": [f"{current.api_name}: points are fixed once unlocked."]},
                )
            if values.get("type", current.type) != current.type:
                retyped.append(awards.Retype(current.pk, current.type, values["type"]))
            if any(getattr(current, name) != value for name, value in values.items()):
                for name, value in values.items():
                    setattr(current, name, value)
                to_update.append(current)
        kept = [*existing.values(), *to_create]  # the whole set, as this import leaves it
        types = [a.type for a in kept]
        progression, win_condition = (
            types.count(AchievementType.PROGRESSION),
            types.count(AchievementType.WIN_CONDITION),
        )
        rejudge = awards.changes_beaten(game, progression=progression, win_condition=win_condition, retyped=retyped)
        Achievement.objects.bulk_create(to_create)
        if to_update:
            Achievement.objects.bulk_update(to_update, ["position", *MANIFEST_FIELDS])
        count_changed = game.achievement_count != len(kept)
        game.achievement_count = len(kept)
        game.total_points = sum(a.points for a in kept)
        game.progression_count, game.win_condition_count = progression, win_condition
        game.save(
            update_fields=[
                "name",
                "description",
                "achievement_count",
                "total_points",
                "progression_count",
                "win_condition_count",
            ]
        )
        if rejudge:
            awards.after_set_change(game=game, retyped=retyped)
        # Forgotten now for this request's own reads, and again at commit in case another
        # thread reloaded the old rows meanwhile.
        forget_game(game=game)
        transaction.on_commit(lambda: forget_game(game=game))
        if count_changed:
            # Every player's completion changes: a background job for a big game. New
            # unlocks meanwhile already count against the new set (stats.services).
            game_id = str(game.pk)
            transaction.on_commit(lambda: stats_tasks.refresh_completion.delay(game_id), robust=True)
    return ImportResult(game, game_created, len(to_create), len(to_update))


def forget_game(*, game: Game) -> None:
    """This process's catalogue forgets the game and its achievements at once (others
    within CATALOGUE_CACHE_SECONDS)."""
    selectors.forget_game(game.pk)
    tracker_selectors.games.forget(lambda cached: cached.pk == game.pk)


def revoke_unlock(*, unlock: Unlock, actor: Player | None, reason: str) -> None:
    """Take an unlock back (moderation): the player's totals, completion, open seasons'
    points, awards the game no longer grants them (achievements.awards.after_revoke) and
    every board follow, and the revocation is recorded with who and why. Closed seasons
    keep their archived results."""
    now = timezone.now()
    with transaction.atomic():
        awards.wait_for_set_changes()
        unlock = Unlock.objects.select_for_update().select_related("achievement", "player").filter(pk=unlock.pk).first()
        if unlock is None:
            raise NotFound("That unlock does not exist (already revoked?).")
        player, achievement = unlock.player, unlock.achievement
        _take_back_season_points(unlock, at=now)
        unlock.delete()
        # Progress at the target would unlock it again on the next report.
        Progress.objects.filter(player=player, achievement=achievement).delete()
        take_back_unlock(
            player_id=player.pk,
            game_id=achievement.game_id,
            points=achievement.points,
            at=now,
            achievement_type=achievement.type,
        )
        awards.after_revoke(player_id=player.pk, game_id=achievement.game_id)
        feedhead.changed_on_commit(activity_audience([player.pk]) | {player.pk})
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
        outcomes = unlock_achievements([UnlockRequest(p.pk, achievement) for p in players], source=Source.ADMIN)
        by_id = {p.pk: p for p in players}
        for outcome in outcomes:
            if outcome is not None and outcome.created:
                record_moderation(
                    kind=ModerationAction.Kind.GRANT,
                    actor=actor,
                    player=by_id[outcome.player_id],
                    reason=reason,
                    **_logged(achievement),
                )
    return sum(bool(outcome and outcome.created) for outcome in outcomes)


def _logged(achievement: Achievement) -> dict[str, Any]:
    """What the moderation log keeps of an achievement a grant or revocation touched."""
    return {
        "game": str(achievement.game_id),
        "achievement": str(achievement.pk),
        "api_name": achievement.api_name,
        "points": achievement.points,
    }


def save_season(
    *,
    game: Game,
    name: str,
    starts_at: datetime,
    ends_at: datetime,
    region: str = "",
    description: str = "",
    achievements: Iterable[Achievement] = (),
    season: Season | None = None,
) -> Season:
    """Create a season, or change `season`: the one way every surface saves one (the admin,
    the demo seeder, the tests). Empty `achievements`: every achievement of the game counts.

    The window must be non-empty, the region known and the chosen achievements the game's
    own; a closed season is archived and never changes (Invalid otherwise, nothing saved).
    Its standings are then recounted from the unlocks inside the window, so a season whose
    window has begun already, or whose rules changed, counts what it should.
    """
    chosen = list(achievements)
    if ends_at <= starts_at:
        raise Invalid("A season must end after it starts.", fields={"ends_at": ["Must be after starts_at."]})
    if region and region not in Region.values:
        raise Invalid(f"Unknown region '{region}'.", fields={"region": ["Not a known region."]})
    if any(achievement.game_id != game.pk for achievement in chosen):
        raise Invalid(
            "Choose only achievements of the season's game.", fields={"achievements": ["Not of the season's game."]}
        )
    if season is not None and season.closed_at is not None:
        raise Conflict("A closed season is archived and cannot change.")
    season = season or Season()
    season.game, season.name, season.description = game, name, description
    season.starts_at, season.ends_at, season.region = starts_at, ends_at, region
    with transaction.atomic():
        season.save()
        season.achievements.set(chosen)
        recount_season(season=season)
    return season


def recount_season(*, season: Season) -> int:
    """Recount an open season's standings from the unlocks inside its window, after a
    community manager created or changed it (its window may have begun already, or its
    region or chosen achievements changed). Returns the players standing."""
    if season.closed_at is not None:
        return 0
    with transaction.atomic():
        # Unlocks committing meanwhile wait to add their season points on top of the
        # recount, and the recount sees every unlock committed before it: none is lost
        # or counted twice.
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {table(SeasonStanding)} IN SHARE ROW EXCLUSIVE MODE")
        now = timezone.now()
        counted = (
            _counted_in(season)
            .values("player_id")
            .annotate(
                points=Sum("achievement__points"),
                n=Count("pk"),
                reached=Max("unlocked_at", filter=Q(achievement__points__gt=0)),
            )
            .order_by("player_id")
        )
        standings = [
            SeasonStanding(
                season=season,
                player_id=row["player_id"],
                points=row["points"],
                achievement_count=row["n"],
                # The board's tie-break: the second the last points were added, as the unlock
                # statement keeps it.
                points_reached_at=row["reached"].replace(microsecond=0) if row["reached"] else None,
                updated_at=now,
            )
            for row in counted
        ]
        SeasonStanding.objects.filter(season=season).delete()
        SeasonStanding.objects.bulk_create(standings, batch_size=2000)
        transaction.on_commit(lambda: rebuild_season_board(season), robust=True)
    return len(standings)


def _counted_in(season: Season) -> QuerySet[Unlock]:
    """The unlocks that count in `season`, from scratch: of its game, inside its window
    `[starts_at, ends_at)`, by a player of its region (if any), of its chosen achievements
    (if any). The unlock statement (achievements/unlock.sql, `season_new`) applies the same
    rule to each new unlock as it is written; tests/test_unlock_statement.py holds both to
    one model."""
    unlocks = Unlock.objects.filter(
        game=season.game_id, unlocked_at__gte=season.starts_at, unlocked_at__lt=season.ends_at
    )
    if season.region:
        unlocks = unlocks.filter(player__region=season.region)
    chosen = season.achievements.all()
    if chosen.exists():
        unlocks = unlocks.filter(achievement__in=chosen)
    return unlocks


def _take_back_season_points(unlock: Unlock, *, at: datetime) -> None:
    """Take a revoked unlock's points out of every open season it counted in (the rule of
    `_counted_in`), before the unlock row is deleted. The points' reached time stays, as in
    every other counter a revocation lowers."""
    for season in Season.objects.filter(game=unlock.game_id, closed_at__isnull=True):
        if _counted_in(season).filter(pk=unlock.pk).exists():
            SeasonStanding.objects.filter(season=season, player=unlock.player_id).update(
                points=F("points") - unlock.achievement.points,
                achievement_count=F("achievement_count") - 1,
                updated_at=at,
            )
