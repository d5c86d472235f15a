"""The first page of each player's friends' feed, kept in the cache (docs/feed.md, "The
first page, kept").

The feed statement (`players.feed`) reads every friend's history; the first page, which a
dashboard reads again on every `feed.updated` and a game client polls, is read far more
often than it changes. So that page is kept as it was answered, per viewer (`Head`), under
two stamps: the viewer's own and the catalogue's. Whoever changes what the page would
show gives a new stamp once the change has committed, and the next read runs the
statement again:

- the viewer's stamp (`changed`), for what concerns some players' pages:
  - a friend's unlock or award: the relay (`achievements.tasks.relay_unlocks`), beside
    the `feed.updated` it sends; the unlocking player's own when the achievement is
    hidden (their feed shows it to them unmasked from now on);
  - a revoked unlock and the awards it withdrew (`achievements.services.revoke_unlock`);
  - a friend's top-ten season finish (`leaderboards.services.close_season`);
  - a friend passing them on a board (`leaderboards.live.announce_rises`);
  - a friendship accepted or ended (`friendship_saved`, `friendship_deleted`: model
    signals, so the admin, an account's deletion and every other writer count);
  - a friend's name, privacy or activity changed (`player_saved`, a model signal), hidden
    or restored by moderation or deactivated (`shown_changed`, for writes that bypass it);
- the catalogue's stamp (`catalogue_changed_on_commit`), for what concerns every page: a game,
  achievement or season saved or deleted (model signals; a manifest import saves its
  game, so its bulk writes are covered too).

A rarity is the one thing a kept page may show out of date, by FEED_HEAD_SECONDS at most:
it moves with every unlock, and a page read again for each would be a page never kept.

Stamps are random and outlive the pages kept under them, so a stamp never comes back to a
value a kept page holds. A cache that does not answer costs the statement, never an
error; a stamp it failed to change leaves a kept page out of date for FEED_HEAD_SECONDS
at most, when it expires.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Iterable
from typing import Any, NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from infra.cache import CACHE_ERRORS
from tracker.auth import friend_ids
from tracker.models import Friendship, Player

log = logging.getLogger(__name__)

CATALOGUE_KEY = "feed:catalogue"


class Head(NamedTuple):
    """A first page as answered: its items, each item's cursor (as `players.feed.Cursor`
    takes them), how many the statement was asked for, and the stamps it was read under."""

    stamp: str | None
    catalogue: str | None
    take: int
    items: list[dict[str, Any]]
    cursors: list[tuple[Any, ...]]


class Kept(NamedTuple):
    stamp: str | None  # the viewer's stamp now (None: never given one, or expired)
    catalogue: str | None  # the catalogue's now
    head: Head | None  # the kept page, whatever its stamps

    def first(self, take: int) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]] | None:
        """The first `take` items and their cursors, if the kept page was read under
        today's stamps and knows them: it was read for as many, or it holds the whole feed."""
        head = self.head
        if head is None or (head.stamp, head.catalogue) != (self.stamp, self.catalogue):
            return None
        if take > head.take and len(head.items) >= head.take:
            return None
        return head.items[:take], head.cursors[:take]

    def keep(self, player_id: object, take: int, items: list[dict[str, Any]], cursors: list[tuple[Any, ...]]) -> None:
        """Keep the first page the statement answered after these stamps were read (a
        stamp changed meanwhile leaves the page kept under the old one, and unused)."""
        head = Head(self.stamp, self.catalogue, take, items, cursors)
        with contextlib.suppress(*CACHE_ERRORS):
            cache.set(_head_key(player_id), tuple(head), settings.FEED_HEAD_SECONDS)


def _stamp_key(player_id: object) -> str:
    return f"feed:stamp:{player_id}"


def _head_key(player_id: object) -> str:
    return f"feed:head:{player_id}"


def kept(player_id: object) -> Kept | None:
    """The stamps and the player's kept page, in one round trip; None when keeping is off
    or the cache does not answer (read the statement, keep nothing)."""
    if not settings.FEED_HEAD_SECONDS:
        return None
    keys = [_stamp_key(player_id), CATALOGUE_KEY, _head_key(player_id)]
    try:
        found = cache.get_many(keys)
    except CACHE_ERRORS:
        return None
    stamp, catalogue, head = (found.get(key) for key in keys)
    return Kept(stamp, catalogue, Head(*head) if head is not None else None)


def _new_stamps(keys: Iterable[str]) -> None:
    stamps = {key: secrets.token_hex(8) for key in keys}
    if not stamps or not settings.FEED_HEAD_SECONDS:
        return
    try:
        # Twice a page's life: a stamp outlives every page kept under the one before it.
        cache.set_many(stamps, 2 * settings.FEED_HEAD_SECONDS)
    except CACHE_ERRORS:
        log.warning("%d feed stamps not changed: the cache did not answer", len(stamps))


def changed(player_ids: Iterable[object]) -> None:
    """New stamps for these players: their kept first pages are not used again. Call once
    the change has committed. One round trip however many players."""
    _new_stamps(_stamp_key(player_id) for player_id in player_ids)


def changed_on_commit(player_ids: Iterable[object]) -> None:
    ids = list(player_ids)
    if ids:
        transaction.on_commit(lambda: changed(ids), robust=True)


def catalogue_changed_on_commit() -> None:
    """A new catalogue stamp after commit: every kept page is read again once."""
    transaction.on_commit(lambda: _new_stamps([CATALOGUE_KEY]), robust=True)


def shown_changed(player: Player) -> None:
    """What `player`'s friends see of them may have changed (privacy, name, moderation,
    activity): their friends' pages are read again after commit."""
    changed_on_commit(friend_ids(player))


# --- Model signals (connected in `tracker.apps`) ------------------------------------------

# Player fields that decide what friends' feeds show of a player (`tracker.auth.ACTIVITY_SHOWN`, the name).
SHOWN_FIELDS = frozenset({"username", "privacy", "is_active", "boards_hidden"})


def player_saved(sender: type[Player], instance: Player, created: bool, update_fields: Any, **kwargs: Any) -> None:
    """A saved player may show differently. A save of other named fields (a login) costs
    nothing; a new player has no friends yet."""
    if not created and (update_fields is None or SHOWN_FIELDS.intersection(update_fields)):
        shown_changed(instance)


def friendship_saved(sender: type[Friendship], instance: Friendship, **kwargs: Any) -> None:
    """An accepted friendship brings each side's activity into the other's feed."""
    if instance.status == Friendship.Status.ACCEPTED:
        changed_on_commit([instance.requester_id, instance.addressee_id])


def friendship_deleted(sender: type[Friendship], instance: Friendship, **kwargs: Any) -> None:
    """An ended friendship takes each side's activity out of the other's feed."""
    if instance.status == Friendship.Status.ACCEPTED:
        changed_on_commit([instance.requester_id, instance.addressee_id])


def catalogue_saved(sender: type[Any], **kwargs: Any) -> None:
    """A game, achievement or season saved or deleted: names, masks and seasons on every
    page may differ."""
    catalogue_changed_on_commit()
