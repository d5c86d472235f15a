"""Background work on achievement sets: thin Celery adapters over `achievements.rarity`,
and the outbox handler of committed unlocks."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from celery import shared_task
from django.core.cache import cache

from achievements import rarity
from achievements.models import Achievement
from achievements.selectors import achievement_data
from config.celery import app as celery_app
from infra import outbox, realtime
from infra.outbox import AwardItem, BoardMovesPayload, UnlocksPayload
from leaderboards import sync
from leaderboards.boards import Rise
from tracker import feedhead
from tracker.auth import activity_audience
from tracker.models import Game

log = logging.getLogger("questboard.achievements")

RARITY_DEBOUNCE_SECONDS = 60


def schedule_rarity_refresh(game_ids: Iterable[str]) -> None:
    """Refresh rarity soon after unlocks: with a broker, once a minute per game at most
    (the delayed task sees every unlock of its minute); inline without one (the laptop
    default), where no delayed task could follow.

    Failing to schedule is harmless: the periodic full refresh covers every game.
    """
    for game_id in game_ids:
        try:
            if celery_app.conf.task_always_eager:
                refresh_rarity(game_id)
            elif cache.add(f"rarity-pending:{game_id}", 1, timeout=RARITY_DEBOUNCE_SECONDS):
                refresh_rarity.apply_async(args=[game_id], countdown=RARITY_DEBOUNCE_SECONDS)
        except Exception:
            log.warning("could not schedule a rarity refresh for game %s", game_id, exc_info=True)


# A failed rarity refresh is tried again after 1 s, doubling to a minute: 20 tries span
# about 15 minutes, the period of the full refresh (refresh_all_rarity), which then has its turn.
RARITY_MAX_RETRIES = 20


@shared_task(bind=True, acks_late=True, max_retries=RARITY_MAX_RETRIES)
def refresh_rarity(self: Any, game_id: str) -> None:
    """`rarity.refresh_rarity`, soon after unlocks (debounced) and for every game by beat.

    A failure (the database away, a deadlock) is retried with a growing pause, as
    `leaderboards.tasks.announce_board_moves` is, so rarity is not left stale until the
    next full refresh. Run inline (no broker), it raises: `schedule_rarity_refresh` logs it."""
    try:
        rarity.refresh_rarity(game_id=game_id)
    except Exception as error:
        if self.request.is_eager:
            raise
        raise self.retry(exc=error, countdown=min(2**self.request.retries, 60)) from error


@shared_task
def refresh_weighted_scores(game_id: str) -> None:
    """`rarity.refresh_weighted_scores`, for every game by beat."""
    rarity.refresh_weighted_scores(game_id=game_id)


@shared_task
def refresh_all_rarity() -> None:
    """Rarity, then weighted scores, for every game (Celery beat)."""
    for game_id in Game.objects.values_list("pk", flat=True):
        refresh_rarity.delay(str(game_id))
        refresh_weighted_scores.delay(str(game_id))


def award_earned(award: AwardItem, game: Game, at: str) -> dict[str, Any]:
    """The data of an award.earned event (docs/live.md): which award, of which game, when."""
    return {
        "kind": award["kind"],
        "game": {"id": str(game.pk), "slug": game.slug, "name": game.name},
        "awarded_at": at,
    }


def relay_unlocks(events: list[UnlocksPayload]) -> None:
    """The outbox handler of committed unlocks (payload: `infra.outbox.UnlocksPayload`,
    built by the unlock statement), in order:

    1. a rarity refresh, debounced (best effort: the periodic refresh covers every game;
       inline, without a broker, it runs first so the toast shows the new rarity);
    2. achievement.unlocked to each player: the toast players wait for; feed.updated to
       their friends who see their activity, whose kept first pages are then read anew
       (docs/feed.md; an award comes with an unlock);
       award.earned to each player for each award the unlocks earned (docs/awards.md;
       events recorded before awards existed carry none);
    3. the new scores into the rank index again (ZADD GT never lowers a score, so a repeat
       or a late arrival is harmless) — this is what ranks a player whose unlock landed
       while Redis was away;
    4. a `board_moves` event for the slower work (leaderboard.updated, rival alerts),
       relayed on its own so a broker outage holds up only that.

    Raises when the channel layer or Redis fails, so the batch stays pending.
    """
    toasts = [(unlocked, event["at"]) for event in events for unlocked in event["unlocks"]]
    rises = [(Rise.of(item), datetime.fromisoformat(event["at"])) for event in events for item in event["rises"]]
    awards = [(award, event["at"]) for event in events for award in event.get("awards", [])]
    schedule_rarity_refresh(sorted({unlocked["game_id"] for unlocked, _ in toasts}))
    achievements = Achievement.objects.in_bulk({uuid.UUID(unlocked["achievement_id"]) for unlocked, _ in toasts})
    games = Game.objects.only("slug", "name").in_bulk({uuid.UUID(award["game_id"]) for award, _ in awards})
    audience = activity_audience({unlocked["player_id"] for unlocked, _ in toasts})
    # Before the signal, so a page read on it is read anew; and the page of whoever now
    # holds a hidden achievement, which their feed shows them unmasked from now on.
    unmasked = {
        unlocked["player_id"]
        for unlocked, _ in toasts
        if (achievement := achievements.get(uuid.UUID(unlocked["achievement_id"]))) and achievement.hidden
    }
    feedhead.changed(audience | unmasked)
    realtime.broadcast(
        [
            (
                realtime.player_group(unlocked["player_id"]),
                "achievement.unlocked",
                {
                    "player_id": unlocked["player_id"],
                    "achievement": achievement_data(achievements[uuid.UUID(unlocked["achievement_id"])]),
                    "timestamp": at,
                },
            )
            for unlocked, at in toasts
            if uuid.UUID(unlocked["achievement_id"]) in achievements
        ]
        + [
            (realtime.player_group(award["player_id"]), "award.earned", award_earned(award, games[game_id], at))
            for award, at in awards
            if (game_id := uuid.UUID(award["game_id"])) in games
        ]
        + realtime.feed_updated(audience),
        strict=True,
    )
    sync.push_rises(rises)
    if rises:
        outbox.record("board_moves", BoardMovesPayload(rises=[rise.item() for rise, _ in rises]))
