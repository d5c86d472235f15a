"""Reads of achievements and unlocks, and the lookups every endpoint shares."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, QuerySet

from achievements.models import Achievement, Award, Progress, Unlock, rarity_tier
from infra.errors import NotFound
from infra.memo import LocalCache
from tracker.auth import Caller, key_is_for, rows_for
from tracker.models import Game, Player

HIDDEN_NAME = "Hidden achievement"


# --- Who may see what a hidden achievement is ---------------------------------------------


@dataclass(frozen=True)
class Reveal:
    """Which hidden achievements one viewer may see, for the achievements at hand.

    The rule, once: a hidden achievement's name, description, icon and api_name are shown
    only to a player who has unlocked it themselves, to its game's own API key, and to
    staff in the admin. Everyone else (anonymous callers, other games' keys, players who
    have not unlocked it, including on the page or share link of a player who has) sees it
    masked: HIDDEN_NAME, no description, icon or api_name. Its points, type, rarity and
    unlock percentage stay visible, as Xbox shows a secret achievement's gamerscore: the
    totals, completion and awards shown beside it count it, so hiding them would not hide
    them (and a player must see what beating the game takes: docs/awards.md).
    """

    caller: Caller
    unlocked: frozenset[Any]  # the hidden ones at hand the viewer has unlocked themselves

    def masks(self, achievement: Achievement) -> bool:
        if not achievement.hidden or self.caller.staff:
            return False
        if key_is_for(self.caller, achievement.game_id):
            return False
        return achievement.pk not in self.unlocked

    def data(self, achievement: Achievement) -> dict[str, Any]:
        """The achievement as the API shows it to this viewer."""
        return achievement_data(achievement, masked=self.masks(achievement))


def reveal_for(caller: Caller, achievements: Iterable[Achievement], *, unlocked: Iterable[Any] | None = None) -> Reveal:
    """What `caller` may see of these achievements (`Reveal`).

    `unlocked`: the ids of achievements the viewer has unlocked, when the caller already has
    them (a superset is fine). Without it, at most one query: the viewer's unlocks among the
    hidden achievements at hand, and only when the viewer is a player and one is hidden.
    """
    hidden = {a.pk for a in achievements if a.hidden}
    if not hidden or caller.player is None:
        return Reveal(caller, frozenset())
    if unlocked is None:
        unlocked = Unlock.objects.filter(player=caller.player, achievement_id__in=hidden).values_list(
            "achievement_id", flat=True
        )
    return Reveal(caller, frozenset(hidden.intersection(unlocked)))


def reveal_unlocks(caller: Caller, owner: Player, unlocks: Iterable[Unlock]) -> Reveal:
    """What `caller` may see of the achievements `owner` unlocked: all of them when the
    caller is the owner (no query), else as `reveal_for` decides."""
    unlocks = list(unlocks)
    mine = caller.player is not None and caller.player.pk == owner.pk
    return reveal_for(
        caller, [u.achievement for u in unlocks], unlocked=[u.achievement_id for u in unlocks] if mine else None
    )


def achievement_data(achievement: Achievement, *, masked: bool = False) -> dict[str, Any]:
    """An achievement as the API shows it; `masked` hides what a hidden one is about (who
    may see it: `Reveal`)."""
    return {
        "id": str(achievement.pk),
        "game_id": str(achievement.game_id),
        "api_name": None if masked else achievement.api_name,
        "name": HIDDEN_NAME if masked else achievement.name,
        "description": "" if masked else achievement.description,
        "icon": "" if masked else achievement.icon,
        "points": achievement.points,
        "hidden": achievement.hidden,
        "client_unlockable": achievement.client_unlockable,
        "progress_target": achievement.progress_target,
        "type": achievement.type or None,
        "unlock_percentage": achievement.unlock_percentage,
        "rarity": rarity_tier(achievement.unlock_percentage, achievement.unlock_count),
    }


# The catalogue: each game's achievement set, loaded whole in one query and kept for
# CATALOGUE_CACHE_SECONDS (a set with hundreds of achievements then costs one query per
# process every few seconds, not one per achievement). A manifest import forgets its game
# at once in the importing process; other processes see it within the TTL, and sooner for
# a name or id they do not know yet (a miss reloads the set).


@dataclass(frozen=True)
class AchievementSet:
    by_id: dict[uuid.UUID, Achievement]
    by_name: dict[str, Achievement]


sets: LocalCache[AchievementSet] = LocalCache("achievement sets")
# Which game an achievement belongs to never changes, so it is kept for good.
game_of: dict[uuid.UUID, uuid.UUID] = {}


def forget_game(game_id: Any) -> None:
    sets.discard(game_id)


def achievement_set(game_id: Any, *, reload: bool = False) -> AchievementSet:
    if reload:
        sets.discard(game_id)

    def load() -> AchievementSet:
        rows = list(Achievement.objects.select_related("game").filter(game_id=game_id))
        game_of.update((a.pk, a.game_id) for a in rows)
        return AchievementSet({a.pk: a for a in rows}, {a.api_name: a for a in rows})

    return sets.get(game_id, load)


def _find(game_id: Any, key: Any, by_id: bool) -> Achievement | None:
    for reload in (False, True):
        found = achievement_set(game_id, reload=reload)
        hit = (found.by_id if by_id else found.by_name).get(key)
        if hit is not None:
            return hit
    return None


def get_achievement(
    *, achievement_id: Any = None, api_name: str | None = None, game: Game | None = None
) -> Achievement:
    found = achievements_by_ref([achievement_id if achievement_id is not None else api_name], game=game)
    if not found:
        raise NotFound(f"Unknown achievement '{achievement_id or api_name}'.")
    return next(iter(found.values()))


def achievements_by_ref(refs: Iterable[Any], *, game: Game | None) -> dict[Any, Achievement]:
    """Achievements by id (UUIDs), and by api_name within `game`, from the catalogue. Ids
    never seen cost one query together; names are looked up in `game`'s set."""
    refs = set(refs)
    ids = {ref for ref in refs if isinstance(ref, uuid.UUID)}
    unseen = [ref for ref in ids if ref not in game_of]
    if unseen:
        game_of.update(Achievement.objects.filter(pk__in=unseen).values_list("pk", "game_id"))
    found: dict[Any, Achievement] = {}
    for ref in refs:
        if ref in ids:
            hit = _find(game_of[ref], ref, by_id=True) if ref in game_of else None
        else:
            hit = _find(game.pk, ref, by_id=False) if game is not None else None
        if hit is not None:
            found[ref] = hit
    return found


def player_unlocks(player: Player, *, game: Game | None = None) -> QuerySet[Unlock]:
    """A player's unlocks, newest first."""
    unlocks = Unlock.objects.filter(player=player).select_related("achievement").order_by("-unlocked_at", "-id")
    if game is not None:
        unlocks = unlocks.filter(game=game)
    return unlocks


# --- Awards -------------------------------------------------------------------------------


def player_awards(player: Player, *, game: Game | None = None) -> QuerySet[Award]:
    """A player's beaten and mastered games, newest first (a mastery before the beaten award
    of the same moment)."""
    awards = Award.objects.filter(player=player).select_related("game").order_by("-awarded_at", "-kind", "game_id")
    return awards.filter(game=game) if game is not None else awards


def award_data(award: Award) -> dict[str, Any]:
    """An award as the API shows it."""
    game = award.game
    return {
        "kind": award.kind,
        "game": {"id": str(game.pk), "slug": game.slug, "name": game.name},
        "awarded_at": award.awarded_at.isoformat(),
    }


@dataclass(frozen=True)
class GameAwards:
    """How many players beat and mastered a game, and the first to master it."""

    beaten: int
    mastered: int
    first_masters: list[dict[str, Any]]  # {"player_id", "username", "awarded_at"}, earliest first


def game_awards(caller: Caller, game: Game, *, first: int = 10) -> GameAwards:
    """A game's awards as `caller` may see them. Like a board, they leave out players hidden
    by moderation and closed accounts, and name only whom the caller may name
    (`tracker.auth.rows_for`): anyone else is listed as an anonymous player, in their place."""
    shown = Award.objects.filter(game=game, player__boards_hidden=False, player__is_active=True)
    counts = dict(shown.values_list("kind").annotate(n=Count("pk")).order_by())
    masters = list(
        shown.filter(kind=Award.Kind.MASTERED)
        .order_by("awarded_at", "pk")
        .values_list("player_id", "player__username", "player__privacy", "awarded_at")[:first]
    )
    rows = [{"player_id": str(p), "username": name, "awarded_at": at} for p, name, _, at in masters]
    privacy = {str(p): setting for p, _, setting, _ in masters}
    return GameAwards(
        beaten=counts.get(Award.Kind.BEATEN, 0),
        mastered=counts.get(Award.Kind.MASTERED, 0),
        first_masters=rows_for(caller, rows, privacy, game_id=game.pk),
    )


def game_achievements_for(game: Game, viewer: Player | None) -> list[dict[str, Any]]:
    """The game's set, with the viewer's own unlock and progress when there is a viewer."""
    achievements = list(game.achievements.all())
    unlocked: dict[Any, Any] = {}
    progress: dict[Any, int] = {}
    if viewer is not None:
        unlocked = dict(Unlock.objects.filter(player=viewer, game=game).values_list("achievement_id", "unlocked_at"))
        progress = dict(
            Progress.objects.filter(player=viewer, achievement__game=game).values_list("achievement_id", "value")
        )
    return [{"achievement": a, "unlocked_at": unlocked.get(a.pk), "progress": progress.get(a.pk)} for a in achievements]
