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
from django.utils import timezone

from achievements import selectors, tasks, unlock_sql
from achievements.models import Achievement, Progress, Source, Unlock
from infra import outbox, replicas
from infra.errors import Conflict, Invalid, NotFound
from infra.sql import flat, prep, rows_sql, table, to_python
from leaderboards.boards import Board, Member, Moves, Score
from leaderboards.models import ModerationAction, Season, SeasonStanding
from leaderboards.selectors import rank_on
from leaderboards.services import apply_season_points, record_moderation
from leaderboards.sync import (
    index_changes,
    push_and_rank,
    push_to_index,
    rebuild_season_board,
    reindex_player_after_commit,
)
from stats import tasks as stats_tasks
from stats.services import PointsDelta, apply_deltas
from tracker import selectors as tracker_selectors
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
    relay sends it after commit, at least once (infra.outbox). On PostgreSQL the whole
    durable write is one statement (achievements.unlock_sql). After commit the rank index
    gets the new scores, and with `rank` each outcome its game-board rank, in one Redis call.

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
    if writes_in_one_statement():
        # One statement is a transaction of its own: no BEGIN and COMMIT round trips.
        written = _write_one_statement(pairs, at=at, source=source, game_key=game_key, live=live)
    else:
        with transaction.atomic():
            achievements = {r.achievement.pk: r.achievement for r in requests}
            written = _write_portable(pairs, achievements, at, source, game_key)
            if live and written.created:
                outbox.record("unlocks", written.event(at))
    if live and written.created:
        outbox.wake()
    # Read your own writes: these players read the primary for a while (docs/replicas.md).
    replicas.pin_players({player_id for player_id, _ in written.created})
    missing = [p for p, _ in pairs if p not in written.created and p not in written.earlier]
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
        new_rank = ranks.get((Board.game(r.achievement.game_id), str(r.player_id)))
        outcomes.append(
            UnlockOutcome(r.player_id, r.achievement, is_new, at if is_new else earlier.get(pair, at), new_rank)
        )
    return outcomes


def writes_in_one_statement() -> bool:
    return connection.vendor == "postgresql"


@dataclass(frozen=True)
class Written:
    """What an unlock write changed, as either path returns it."""

    created: set[tuple[uuid.UUID, uuid.UUID]]
    players: dict[uuid.UUID, Member]  # every requested player that exists and is active
    moves: Moves  # every game, global and season board the new unlocks moved
    earlier: dict[tuple[uuid.UUID, uuid.UUID], datetime]  # when pairs not created were unlocked
    new: list[tuple] = field(default_factory=list)  # (player_id, achievement_id, game_id, points)

    def event(self, at: datetime) -> dict[str, Any]:
        """The outbox payload of these unlocks (unlock_sql builds the same in SQL): the
        unlocks, and the rises of the boards they moved (`Rise` rows)."""
        return {
            "at": at.isoformat(),
            "unlocks": [[str(p), str(a), str(g), points] for p, a, g, points in self.new],
            "rises": [list(rise) for rise in self.moves.rises()],
        }


def _write_one_statement(
    pairs: list[tuple[tuple[uuid.UUID, uuid.UUID], datetime | None]],
    *,
    at: datetime,
    source: str,
    game_key: GameKey | None,
    live: bool,
) -> Written:
    created, players, moved, earlier = unlock_sql.write(
        [(p, a, claimed) for (p, a), claimed in pairs],
        at=at,
        source=source,
        game_key_id=game_key.pk if game_key else None,
        live=live,
    )
    u, t = uuid.UUID, _timestamp
    return Written(
        created={(u(p), u(a)) for p, a in created},
        players={u(p): Member(region, hidden) for p, region, hidden in players},
        moves=Moves(
            scores=[
                Score(Board(kind, scope), player, points, t(reached), added)
                for kind, scope, player, points, reached, added, _ in moved
            ],
            season_regions={scope: region for kind, scope, *_, region in moved if kind == "season"},
        ),
        earlier={(u(p), u(a)): t(when) for p, a, when in earlier},
    )


def _timestamp(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _write_portable(
    pairs: list[tuple[tuple[uuid.UUID, uuid.UUID], datetime | None]],
    achievements: dict[Any, Achievement],
    at: datetime,
    source: str,
    game_key: GameKey | None,
) -> Written:
    """The same write as unlock_sql's statement, in several statements, for SQLite."""
    players = {p.pk: p for p in Player.objects.filter(pk__in={p for (p, _), _ in pairs}, is_active=True)}
    rows = [
        (
            prep(Unlock, "player", p),
            prep(Unlock, "achievement", a),
            prep(Unlock, "game", achievements[a].game_id),
            prep(Unlock, "unlocked_at", at),
            prep(Unlock, "claimed_at", claimed),
            source,
            game_key.pk if game_key else None,
        )
        for (p, a), claimed in pairs
        if p in players
    ]
    created: set[tuple[Any, Any]] = set()
    if rows:
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {table(Unlock)} (player_id, achievement_id, game_id, unlocked_at,
                    claimed_at, source, game_key_id)
                VALUES {rows_sql(rows)}
                ON CONFLICT (player_id, achievement_id) DO NOTHING
                RETURNING player_id, achievement_id
                """,
                flat(rows),
            )
            created = {
                (to_python(Unlock, "player", p), to_python(Unlock, "achievement", a)) for p, a in cursor.fetchall()
            }
    new = [(p, a) for (p, a), _ in pairs if (p, a) in created]
    totals = apply_deltas([PointsDelta(p, achievements[a].game_id, achievements[a].points, 1) for p, a in new], at=at)
    seasons = apply_season_points([(players[p], achievements[a], at) for p, a in new], sign=1, at=at)
    scores = [Score(Board.game(g), str(p), points, reached, added) for p, g, points, reached, added in totals.games]
    scores += [
        Score(Board.everywhere(), str(p), points, reached, added) for p, points, reached, added in totals.players
    ]
    return Written(
        created=created,
        players={pk: Member(p.region, p.boards_hidden) for pk, p in players.items()},
        moves=Moves(scores + seasons.scores, seasons.season_regions),
        earlier=_existing_unlock_times([pair for pair, _ in pairs if pair not in created]),
        new=[(p, a, achievements[a].game_id, achievements[a].points) for p, a in new],
    )


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
        replicas.pin_players([player.pk])
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
