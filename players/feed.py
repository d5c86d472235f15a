"""The friends' feed: what a player's friends did, newest first, a page at a time
(docs/feed.md).

Four kinds of item, each read from the table that already records it, merged on read
("fan-out on read": nothing is written for the feed): a friend's unlock
(`achievements.Unlock`), a friend's award (`achievements.Award`), a friend's finish in the
top ten of a closed season (`leaderboards.SeasonResult`), and a friend passing the viewer
on a game's board (the viewer's own rival alerts, `tracker.Notification`). The first page
is kept in the cache as answered until something changes it (`tracker.feedhead`).

Invariants the one statement below keeps:

- only friends whose activity friends may see (`tracker.auth.ACTIVITY_SHOWN`: not
  private, not hidden by moderation, active) are read, and a rival alert only while its
  rival is one of them;
- the order is total — (at, kind, id), newest first — and a page continues strictly after
  its cursor, the last item of the page before: an item recorded after a page was read
  never moves, repeats or hides an item of the pages after it (a keyset, not an offset);
- through their (player, time) indexes, unlocks and awards cost a few index entries per
  friend plus about a page of rows in all, the other kinds at most a page: a page costs
  the same whatever the friends' histories hold (`_statement`);
- hidden achievements are masked by `achievements.selectors.Reveal`, told which of them
  the viewer holds by the statement itself.
"""

from __future__ import annotations

import uuid
from dataclasses import astuple, dataclass
from datetime import datetime
from functools import cache
from typing import Any, Literal

from django.core import signing
from django.db import models

from achievements.models import Achievement, Award, Unlock
from achievements.selectors import reveal_for
from infra.sql import prepared_cursor
from leaderboards.models import Season, SeasonResult
from leaderboards.services import FEED_FINISH_RANK
from tracker import feedhead
from tracker.auth import Caller, friends_sharing_activity
from tracker.models import Game, Notification, Player

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# How many of each friend's newest unlock and award times the cut-off reads (`_statement`).
CUT_DEPTH = 2
# A season finish is in the feed when the friend's final rank was at most this.
TOP_FINISH = FEED_FINISH_RANK


class Kind(models.TextChoices):
    UNLOCK = "unlock", "A friend unlocked an achievement"
    AWARD = "award", "A friend beat or mastered a game"
    SEASON_FINISH = "season_finish", "A friend finished a season in the top ten"
    PASSED = "passed", "A friend passed you on a game's board"


# --- The cursor ---------------------------------------------------------------------------


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: its last item's (at, kind, id). The next page starts after it."""

    at: datetime
    kind: str
    id: int

    _SALT = "questboard.feed.cursor"

    def encode(self) -> str:
        """Opaque to clients, and signed: a cursor we did not hand out is refused."""
        return signing.dumps([self.at.isoformat(), self.kind, self.id], salt=self._SALT)

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            at, kind, pk = signing.loads(text, salt=cls._SALT)
            return cls(datetime.fromisoformat(at), Kind(kind).value, int(pk))
        except (signing.BadSignature, ValueError, TypeError) as error:
            raise BadCursor("Not a cursor this feed handed out: use `next` of the page before.") from error


# --- The page -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One row of the feed statement."""

    kind: str
    at: datetime
    id: int
    player_id: uuid.UUID
    username: str
    game_id: uuid.UUID
    game_slug: str
    game_name: str
    achievement_id: uuid.UUID | None
    season_id: uuid.UUID | None
    season_name: str | None
    award: str | None
    rank: int | None
    points: int | None
    your_points: int | None
    viewer_holds: bool  # an unlock of an achievement the viewer has unlocked too
    achievement: Achievement | None  # an unlock's

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.at, self.kind, self.id)


@dataclass(frozen=True)
class FeedPage:
    items: list[dict[str, Any]]  # as `players.api.FeedApi.Output` shows them
    next: str | None  # the cursor of the page after, None on the last page


def feed_page(viewer: Player, *, limit: int = DEFAULT_LIMIT, cursor: Cursor | None = None) -> FeedPage:
    """A page of `viewer`'s friends' feed, newest first, after `cursor` (None: the first
    page). Hidden achievements are masked as everywhere (`achievements.selectors.Reveal`).
    One query: the items with their achievements, and whether the viewer holds each of
    them (`Reveal` needs it for the hidden ones). The first page is answered from the
    cache while it is kept there (`tracker.feedhead`), without the statement."""
    take = limit + 1
    kept = feedhead.kept(viewer.pk) if cursor is None else None
    page = kept.first(take) if kept is not None else None
    if page is not None:
        items, cursors = page
    else:
        entries = _entries(viewer, take, cursor)
        items, cursors = _items(viewer, entries), [astuple(entry.cursor) for entry in entries]
        if kept is not None:
            kept.keep(viewer.pk, take, items, cursors)
    more = len(items) > limit
    return FeedPage(items[:limit], Cursor(*cursors[limit - 1]).encode() if more else None)


def _items(viewer: Player, entries: list[Entry]) -> list[dict[str, Any]]:
    achievements = [e.achievement for e in entries if e.achievement is not None]
    held = [e.achievement_id for e in entries if e.viewer_holds]
    reveal = reveal_for(Caller(player=viewer), achievements, unlocked=held)
    items = []
    # Ids as the JSON shows them: a kept page (`tracker.feedhead`) is then plain data,
    # cheap to load and to encode again.
    for entry in entries:
        item: dict[str, Any] = {
            "kind": entry.kind,
            "at": entry.at,
            "player": {"id": str(entry.player_id), "username": entry.username},
            "game": {"id": str(entry.game_id), "slug": entry.game_slug, "name": entry.game_name},
        }
        if entry.kind == Kind.UNLOCK:
            item["achievement"] = reveal.data(entry.achievement)
        elif entry.kind == Kind.AWARD:
            item["award"] = entry.award
        elif entry.kind == Kind.SEASON_FINISH:
            item |= {"season": {"id": str(entry.season_id), "name": entry.season_name}, "rank": entry.rank}
            item["points"] = entry.points
        else:
            item |= {"points": entry.points, "your_points": entry.your_points}
        items.append(item)
    return items


# --- The statement ------------------------------------------------------------------------


def _entries(viewer: Player, take: int, cursor: Cursor | None) -> list[Entry]:
    """The next `take` items after `cursor`, in one prepared statement (planned once per
    connection and cursor kind)."""
    friends, friend_params = _friends_query()
    sql, order = _statement(friends, cursor.kind if cursor else None)
    values = {
        "friends": [viewer.pk if value == _ANY_VIEWER else value for value in friend_params],
        "take": (take,),
        "depth": (CUT_DEPTH,),
        "viewer": (viewer.pk,),
        "rival": (Notification.Kind.RIVAL,),
    }
    if cursor is not None:
        values |= {"at": (cursor.at,), "id": (cursor.id,)}
    with prepared_cursor() as db:
        db.execute(sql, [values[name][index] for name, index in order])
        rows = db.fetchall()
    fields, width = _ACHIEVEMENT_FIELDS, len(_ACHIEVEMENT_FIELDS)
    return [
        Entry(*row[:-width], Achievement.from_db(db.db.alias, fields, row[-width:]) if row[-width] else None)
        for row in rows
    ]


# An unlock's achievement comes with it, every column, as the ORM would load it.
_ACHIEVEMENT_FIELDS = [field.attname for field in Achievement._meta.concrete_fields]


# Stands for the viewer in the friends query, compiled once: building it through the ORM
# cost more Python than the rest of the read.
_ANY_VIEWER = uuid.UUID("5e1f5e1f-0000-4000-8000-000000000000")


@cache
def _friends_query() -> tuple[str, tuple[Any, ...]]:
    """The viewer's friends who share their activity, with their names
    (`tracker.auth.friends_sharing_activity`), as SQL and its parameters, the viewer's id
    written as `_ANY_VIEWER`."""
    query = friends_sharing_activity(Player(pk=_ANY_VIEWER)).values("id", "username").query
    sql, params = query.sql_with_params()
    return sql, tuple(params)


class _Params:
    """The parameters of a statement being written, in the order its `%s` appear: each
    by name and, for a name with several values (the friends query's), which one."""

    def __init__(self) -> None:
        self.order: list[tuple[str, int]] = []

    def __call__(self, name: str, index: int = 0) -> str:
        self.order.append((name, index))
        return "%s"

    def embed(self, name: str, sql: str) -> str:
        """`sql`, a compiled query with `%s` placeholders, whose values are `name`'s."""
        parts = sql.split("%s")
        return "".join(part + (self(name, i) if i < len(parts) - 1 else "") for i, part in enumerate(parts))


def _after(
    param: _Params,
    kind: str,
    cursor_kind: str | None,
    at: str,
    pk: str,
    *,
    bound: Literal["exact", "loose", "strict"] = "exact",
) -> str:
    """ "Strictly after the cursor in (at DESC, kind DESC, id DESC) order" for the items of
    one kind, whose time and id columns are `at` and `pk`. The kind is constant within a
    part, so (at, kind, id) < cursor becomes a condition on (at, id) that the part's
    (player, time) index serves. For the cut-off's phase (`_statement`), on the time
    alone: `bound` "loose" also lets in the cursor's very moment, "strict" leaves it out
    (they differ only for the cursor's own kind)."""
    if cursor_kind is None:
        return "TRUE"
    if kind < cursor_kind:
        return f"{at} <= {param('at')}"
    if kind > cursor_kind or bound == "strict":
        return f"{at} < {param('at')}"
    if bound == "loose":
        return f"{at} <= {param('at')}"
    return f"({at}, {pk}) < ({param('at')}, {param('id')})"


@cache
def _statement(friends: str, cursor_kind: str | None) -> tuple[str, list[str]]:
    """The feed statement after a cursor of `cursor_kind` (None: the first page), and its
    parameters' names in order. `friends`: the query of the viewer's friends who share
    their activity (`tracker.auth.friends_sharing_activity`), compiled by the ORM.

    Unlocks and awards are many per friend, so each is read in two phases through the
    (player, time DESC) index. First each friend's CUT_DEPTH newest times (an index-only
    scan each) and the cut-off, the `take`-th newest of all those: every one of the
    `take` newest items is at or after it (the k-th newest of a subset is never newer than
    the k-th newest of the whole), so the rest of the page lies past it. Then only the
    friends with a time at or after the cut-off (about `take` of them, not all) are read
    again, their items from the cut-off on, at most `take` each. With fewer than `take`
    times in all the cut-off is -infinity: every friend is read, and none has more than
    `take` to give. After a cursor, the cut-off counts only times strictly before the
    cursor's moment, and the friends read again include those with items at that very
    moment. Kinds order by their names in bytes (COLLATE "C"), as `_after` compares them."""
    p = _Params()
    unlock, award = Unlock._meta.db_table, Award._meta.db_table
    result, season = SeasonResult._meta.db_table, Season._meta.db_table
    notification, game = Notification._meta.db_table, Game._meta.db_table

    def newest(kind: str, table: str, at: str) -> str:
        """Each friend's `depth` newest times of `kind` (an index-only scan each), then
        the cut-off: the `take`-th newest of them (before the cursor's moment), or
        -infinity when there are fewer."""
        return f"""
        {kind}_own AS MATERIALIZED (
            SELECT friend.id AS player_id, own.at FROM friend CROSS JOIN LATERAL (
                SELECT t.{at} AS at FROM {table} t
                WHERE t.player_id = friend.id AND {_after(p, kind, cursor_kind, f"t.{at}", "t.id", bound="loose")}
                ORDER BY t.{at} DESC LIMIT {p("depth")}
            ) own
        ),
        {kind}_cut AS (
            SELECT CASE WHEN count(*) < {p("take")} THEN '-infinity' ELSE min(newest.at) END AS at FROM (
                SELECT o.at FROM {kind}_own o WHERE {_after(p, kind, cursor_kind, "o.at", "", bound="strict")}
                ORDER BY o.at DESC LIMIT {p("take")}
            ) newest
        ),
        {kind}_active AS (
            SELECT DISTINCT o.player_id FROM {kind}_own o, {kind}_cut WHERE o.at >= {kind}_cut.at
        ),"""

    text = f"""
        WITH friend AS MATERIALIZED ({p.embed("friends", friends)}),
        {newest(Kind.UNLOCK, unlock, "unlocked_at")}
        {newest(Kind.AWARD, award, "awarded_at")}
        entry AS (
            (SELECT 'unlock' AS kind, u.unlocked_at AS at, u.id, u.player_id, u.game_id,
                    u.achievement_id, NULL::uuid AS season_id, NULL::text AS season_name,
                    NULL::text AS award, NULL::integer AS rank, NULL::integer AS points,
                    NULL::integer AS your_points
             FROM unlock_active CROSS JOIN unlock_cut CROSS JOIN LATERAL (
                 SELECT u.* FROM {unlock} u
                 WHERE u.player_id = unlock_active.player_id AND u.unlocked_at >= unlock_cut.at
                   AND {_after(p, Kind.UNLOCK, cursor_kind, "u.unlocked_at", "u.id")}
                 ORDER BY u.unlocked_at DESC, u.id DESC LIMIT {p("take")}
             ) u
             ORDER BY u.unlocked_at DESC, u.id DESC LIMIT {p("take")})
            UNION ALL
            (SELECT 'award', a.awarded_at, a.id, a.player_id, a.game_id, NULL, NULL, NULL, a.kind,
                    NULL, NULL, NULL
             FROM award_active CROSS JOIN award_cut CROSS JOIN LATERAL (
                 SELECT a.* FROM {award} a
                 WHERE a.player_id = award_active.player_id AND a.awarded_at >= award_cut.at
                   AND {_after(p, Kind.AWARD, cursor_kind, "a.awarded_at", "a.id")}
                 ORDER BY a.awarded_at DESC, a.id DESC LIMIT {p("take")}
             ) a
             ORDER BY a.awarded_at DESC, a.id DESC LIMIT {p("take")})
            UNION ALL
            (SELECT 'season_finish', s.closed_at, r.id, r.player_id, s.game_id, NULL, s.id, s.name,
                    NULL, r.rank, r.points, NULL
             FROM {result} r JOIN {season} s ON s.id = r.season_id
             WHERE r.player_id IN (SELECT id FROM friend) AND r.rank <= {TOP_FINISH}
               AND s.closed_at IS NOT NULL
               AND {_after(p, Kind.SEASON_FINISH, cursor_kind, "s.closed_at", "r.id")}
             ORDER BY s.closed_at DESC, r.id DESC LIMIT {p("take")})
            UNION ALL
            (SELECT 'passed', n.created, n.id, (n.payload->>'rival_id')::uuid, rival_game.id, NULL,
                    NULL, NULL, NULL, NULL, (n.payload->>'rival_points')::integer,
                    (n.payload->>'your_points')::integer
             FROM {notification} n
             JOIN {game} rival_game ON rival_game.id = (n.payload->>'game_id')::uuid
             WHERE n.player_id = {p("viewer")} AND n.kind = {p("rival")}
               AND (n.payload->>'rival_id')::uuid IN (SELECT id FROM friend)
               AND {_after(p, Kind.PASSED, cursor_kind, "n.created", "n.id")}
             ORDER BY n.created DESC, n.id DESC LIMIT {p("take")})
        )
        SELECT e.kind, e.at, e.id, e.player_id, friend.username, e.game_id, g.slug, g.name,
               e.achievement_id, e.season_id, e.season_name, e.award, e.rank, e.points, e.your_points,
               e.achievement_id IS NOT NULL AND EXISTS (
                   SELECT FROM {unlock} mine WHERE mine.player_id = {p("viewer")}
                   AND mine.achievement_id = e.achievement_id
               ) AS viewer_holds,
               {", ".join(f"a.{Achievement._meta.get_field(name).column}" for name in _ACHIEVEMENT_FIELDS)}
        FROM (SELECT * FROM entry ORDER BY at DESC, kind COLLATE "C" DESC, id DESC LIMIT {p("take")}) e
        JOIN friend ON friend.id = e.player_id
        JOIN {game} g ON g.id = e.game_id
        LEFT JOIN {Achievement._meta.db_table} a ON a.id = e.achievement_id
        ORDER BY e.at DESC, e.kind COLLATE "C" DESC, e.id DESC
    """
    return text, p.order
