"""What the player's site and its endpoints read: statistics, dashboard, history,
profiles, comparisons. Aggregates come from the stats rows and daily snapshots, never
from a scan of all unlocks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import Avg, Count, QuerySet, Sum

from achievements.models import Progress, Unlock, rare_below
from achievements.selectors import reveal_for, reveal_unlocks
from infra.numbers import share
from stats.models import DailySnapshot, PlayerGameStats, PlayerTotals
from tracker.auth import Caller, friend_ids
from tracker.models import Friendship, Game, Player, Privacy


def hours(seconds: int | None) -> float:
    return round((seconds or 0) / 3600, 2)


def game_stats(player: Player, *, game: Game | None = None) -> QuerySet[PlayerGameStats]:
    """The player's per-game rows, most recently played first."""
    rows = PlayerGameStats.objects.filter(player=player).select_related("game").order_by("-last_activity")
    return rows.filter(game=game) if game is not None else rows


def statistics(player: Player, *, game: Game | None = None) -> list[dict[str, Any]]:
    return [
        {
            "game_id": str(row.game_id),
            "game_slug": row.game.slug,
            "game_name": row.game.name,
            "playtime": hours(row.playtime_seconds),
            "achievements": row.achievement_count,
            "total_achievements": row.game.achievement_count,
            "completion": round(row.completion, 2),
            "points": row.points,
            "weighted_score": round(row.weighted_score, 1),
            "last_played": row.last_activity.isoformat() if row.last_activity else None,
        }
        for row in game_stats(player, game=game)
    ]


def recent_unlocks(player: Player, *, game: Game | None = None, limit: int = 10) -> list[Unlock]:
    unlocks = Unlock.objects.filter(player=player).select_related("achievement", "game").order_by("-unlocked_at", "-id")
    if game is not None:
        unlocks = unlocks.filter(game=game)
    return list(unlocks[:limit])


def rarest_unlocks(player: Player, *, limit: int = 5) -> list[Unlock]:
    """Rarest first; the id breaks ties of a batch (one instant), so the same data always
    lists alike and the profile card's ETag (players.profilecard) does not flap."""
    return list(
        Unlock.objects.filter(player=player)
        .select_related("achievement", "game")
        .order_by("achievement__unlock_percentage", "-unlocked_at", "-id")[:limit]
    )


@dataclass(frozen=True)
class Dashboard:
    total_achievements: int
    total_points: int
    weighted_score: float
    total_playtime: float
    games_owned: int
    average_completion: float
    recent: list[Unlock]


def dashboard(player: Player, *, game: Game | None = None) -> Dashboard:
    rows = PlayerGameStats.objects.filter(player=player)
    if game is not None:
        rows = rows.filter(game=game)
    agg = rows.aggregate(
        achievements=Sum("achievement_count"),
        points=Sum("points"),
        weighted=Sum("weighted_score"),
        playtime=Sum("playtime_seconds"),
        games=Count("id"),
        completion=Avg("completion"),
    )
    return Dashboard(
        total_achievements=agg["achievements"] or 0,
        total_points=agg["points"] or 0,
        weighted_score=round(agg["weighted"] or 0.0, 1),
        total_playtime=hours(agg["playtime"]),
        games_owned=agg["games"] or 0,
        average_completion=round(agg["completion"] or 0.0, 2),
        recent=recent_unlocks(player, game=game, limit=10),
    )


MAX_HISTORY_DAYS = 366


def history(player: Player, *, game: Game | None, start: date, end: date) -> list[dict[str, Any]]:
    """One row per day from `start` to `end`: totals at the end of the day and what the day
    added. Days without a snapshot carry the previous totals forward with nothing gained."""
    snaps = DailySnapshot.objects.filter(player=player)
    snaps = snaps.filter(game=game) if game is not None else snaps.filter(game__isnull=True)
    before = snaps.filter(date__lt=start).order_by("-date").first()
    by_day = {s.date: s for s in snaps.filter(date__gte=start, date__lte=end)}
    points, count, playtime = (
        (before.points, before.achievement_count, before.playtime_seconds) if before else (0, 0, 0)
    )
    days = []
    day = start
    while day <= end:
        snap = by_day.get(day)
        if snap is not None:
            points, count, playtime = snap.points, snap.achievement_count, snap.playtime_seconds
        days.append(
            {
                "date": day.isoformat(),
                "points": points,
                "achievements": count,
                "playtime": hours(playtime),
                "points_gained": snap.points_gained if snap else 0,
                "unlocks": snap.unlocks if snap else 0,
                "playtime_gained": hours(snap.playtime_gained) if snap else 0.0,
            }
        )
        day += timedelta(days=1)
    return days


def totals(player: Player) -> PlayerTotals | None:
    return PlayerTotals.objects.filter(player=player).first()


def achievements_of(owner: Player, game: Game, *, viewer: Caller) -> list[dict[str, Any]]:
    """A game's whole set as `viewer` sees it on `owner`'s page: unlocked ones with their
    time, locked ones with progress; hidden ones masked unless the viewer may see them
    (`achievements.selectors.Reveal`: the viewer unlocked it, not the owner)."""
    unlocked = dict(Unlock.objects.filter(player=owner, game=game).values_list("achievement_id", "unlocked_at"))
    progress = dict(
        Progress.objects.filter(player=owner, achievement__game=game).values_list("achievement_id", "value")
    )
    achievements = list(game.achievements.all())
    reveal = reveal_for(viewer, achievements, unlocked=unlocked if is_viewer(viewer, owner) else None)
    rows = []
    for achievement in achievements:
        at = unlocked.get(achievement.pk)
        rows.append(
            {
                "achievement": achievement,
                "unlocked_at": at,
                "masked": reveal.masks(achievement),
                "progress": progress.get(achievement.pk),
                "progress_percent": _percent(progress.get(achievement.pk), achievement.progress_target),
            }
        )
    rows.sort(key=lambda r: (r["unlocked_at"] is None, -(r["unlocked_at"].timestamp() if r["unlocked_at"] else 0)))
    return rows


def _percent(value: int | None, target: int | None) -> float | None:
    if value is None or not target:
        return None
    return min(100.0, share(value, target, places=1))


def comparison(a: Player, b: Player, game: Game, *, viewer: Caller) -> dict[str, Any]:
    """Two players side by side in one game, as `viewer` sees them: each achievement with
    both unlock times; hidden ones masked unless the viewer may see them."""
    times = {
        (p, ach): at
        for p, ach, at in Unlock.objects.filter(player__in=[a, b], game=game).values_list(
            "player_id", "achievement_id", "unlocked_at"
        )
    }
    achievements = list(game.achievements.all())
    known = next((p for p in (a, b) if is_viewer(viewer, p)), None)
    mine = None if known is None else [ach for p, ach in times if p == known.pk]
    reveal = reveal_for(viewer, achievements, unlocked=mine)
    rows = []
    for achievement in achievements:
        a_at, b_at = times.get((a.pk, achievement.pk)), times.get((b.pk, achievement.pk))
        rows.append(
            {
                "achievement": achievement,
                "a": a_at,
                "b": b_at,
                "masked": reveal.masks(achievement),
            }
        )
    stats = {row.player_id: row for row in PlayerGameStats.objects.filter(game=game, player__in=[a, b])}
    return {"rows": rows, "a_stats": stats.get(a.pk), "b_stats": stats.get(b.pk)}


def is_viewer(viewer: Caller, player: Player) -> bool:
    return viewer.player is not None and viewer.player.pk == player.pk


def shown_unlocks(viewer: Caller, owner: Player, *lists: list[Unlock]) -> list[list[dict[str, Any]]]:
    """Lists of `owner`'s unlocks as `viewer` sees them: each as {"unlock", "masked"}, a
    hidden achievement masked unless the viewer may see it. One query at most for all."""
    reveal = reveal_unlocks(viewer, owner, [u for unlocks in lists for u in unlocks])
    return [[{"unlock": u, "masked": reveal.masks(u.achievement)} for u in unlocks] for unlocks in lists]


def latest_rare_unlocks(limit: int = 8) -> list[Unlock]:
    """Recent unlocks of rare achievements (rare or rarer tiers) by public players, for the
    home page."""
    return list(
        Unlock.objects.filter(
            achievement__unlock_percentage__lt=rare_below(),
            achievement__unlock_count__gt=0,
            player__privacy=Privacy.PUBLIC,
            player__boards_hidden=False,
        )
        .select_related("achievement", "game", "player")
        .order_by("-unlocked_at")[:limit]
    )


def friends_of(player: Player) -> list[Player]:
    return list(Player.objects.filter(pk__in=friend_ids(player)).order_by("username"))


def pending_requests(player: Player) -> tuple[list[Friendship], list[Friendship]]:
    """(incoming, outgoing) pending friend requests."""
    pending = Friendship.objects.filter(status=Friendship.Status.PENDING).select_related("requester", "addressee")
    return list(pending.filter(addressee=player)), list(pending.filter(requester=player))
