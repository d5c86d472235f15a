"""Who is calling, and what they may do: the authentication classes and the rules.

Two kinds of caller reach the API: game servers with a per-game API key
(``Authorization: Api-Key <key>``) and players with a JWT (``Authorization: Bearer
<access>``) or a browser session. Every authorisation rule lives here, once.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import models
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from infra.errors import Forbidden
from infra.memo import LocalCache
from infra.ratelimits import credentials_checked
from tracker.models import Friendship, Game, GameKey, GameMember, Player, Privacy, Source

# Usable keys by prefix. A key revoked elsewhere stops working when its entry expires
# (CATALOGUE_CACHE_SECONDS); expiry and the hash are checked on every request.
_usable_keys: LocalCache[GameKey] = LocalCache("game keys")


class GameKeyAuthentication(BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request: Request) -> tuple[AnonymousUser, GameKey] | None:
        header = get_authorization_header(request).decode("latin-1")
        scheme, _, key = header.partition(" ")
        if scheme != self.keyword:
            return None
        key = key.strip()
        # A wrong key costs its address's budget; past it, a 429 before any lookup.
        with credentials_checked(request, known=lambda: self.known(key)):
            return AnonymousUser(), self.game_key(key)

    @staticmethod
    def known(key: str) -> bool:
        """Whether `key` is a usable key this process has looked up already: checked
        without the database."""
        game_key = _usable_keys.peek(key.partition(".")[0])
        return game_key is not None and not game_key.has_expired and game_key.is_valid(key)

    @staticmethod
    def game_key(key: str) -> GameKey:
        """The usable key `key` is, or AuthenticationFailed."""
        prefix, dot, _ = key.partition(".")
        # Prefixes are letters and digits (rest_framework_api_key); anything else, a NUL
        # included, never reaches the database.
        if not dot or not (prefix.isascii() and prefix.isalnum()):
            raise exceptions.AuthenticationFailed("Malformed API key.")
        game_key = _usable_keys.get(
            prefix, lambda: GameKey.objects.get_usable_keys().select_related("game").filter(prefix=prefix).first()
        )
        if game_key is None or game_key.has_expired or not game_key.is_valid(key):
            raise exceptions.AuthenticationFailed("Unknown, revoked or expired API key.")
        return game_key

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


@dataclass(frozen=True)
class Caller:
    """The authenticated party behind a request: a player, a game server, or nobody."""

    player: Player | None = None
    game_key: GameKey | None = None
    staff: bool = False  # the admin's own views, never an API request

    @classmethod
    def of(cls, request: Request) -> Caller:
        if isinstance(request.auth, GameKey):
            return cls(game_key=request.auth)
        user = request.user
        if user is not None and user.is_authenticated:
            return cls(player=user)
        return cls()

    @property
    def game(self) -> Game | None:
        return self.game_key.game if self.game_key else None

    @property
    def is_anonymous(self) -> bool:
        return self.player is None and self.game_key is None

    @property
    def source(self) -> Source:
        """Who is reporting, as unlocks and play sessions record it."""
        return Source.GAME_SERVER if self.game_key is not None else Source.PLAYER_CLIENT


# Whoever may be listening: the viewer of a public stream (a board's or a season's socket),
# where anyone, anonymous included, may be watching. Such payloads are built for it.
EVERYONE = Caller()


def require_caller(caller: Caller) -> None:
    if caller.is_anonymous:
        raise exceptions.NotAuthenticated("Send a game API key or a player access token.")


def key_is_for(caller: Caller, game_id: object) -> bool:
    """Whether the caller is game `game_id`'s own API key (ids compared as text, so a UUID
    and its string form are the same game)."""
    return caller.game_key is not None and str(caller.game_key.game_id) == str(game_id)


def check_key_is_for(caller: Caller, game_id: object) -> None:
    """A game key acts only on its own game: any other game's key gets 403. The one place
    that refusal is written; a player or nobody passes through (their own rules apply)."""
    if caller.game_key is not None and not key_is_for(caller, game_id):
        raise Forbidden("This API key belongs to another game.")


def check_may_report(caller: Caller, player_id: object, achievement_game_id: object, client_unlockable: bool) -> None:
    """May this caller report an unlock or progress for player `player_id` on this achievement?

    A game key acts for any player, but only on its own game's achievements. A player acts
    only for itself, and only on achievements the game marked client-unlockable.
    """
    require_caller(caller)
    if caller.game_key is not None:
        check_key_is_for(caller, achievement_game_id)
        return
    assert caller.player is not None
    if str(caller.player.pk) != str(player_id):
        raise Forbidden("A player token may only report its own achievements.")
    if not client_unlockable:
        raise Forbidden("This achievement can only be unlocked by the game's server.")


def check_may_report_play(caller: Caller, player: Player, game: Game) -> None:
    """Play sessions: a game key for any player of its own game; a player for itself."""
    require_caller(caller)
    if caller.game_key is not None:
        check_key_is_for(caller, game.pk)
        return
    assert caller.player is not None
    if caller.player.pk != player.pk:
        raise Forbidden("A player token may only report its own play.")


def require_player(caller: Caller) -> Player:
    """Endpoints about "me" (friends, notifications) need a player, not a game key."""
    require_caller(caller)
    if caller.player is None:
        raise Forbidden("This endpoint is for players; send a player access token.")
    return caller.player


def check_may_manage_game(caller: Caller, game: Game) -> None:
    require_caller(caller)
    if not key_is_for(caller, game.pk):
        raise Forbidden("Only this game's API key may change its achievement set.")


# --- Studios: who reads a game's analytics, and whose rows the admin shows ----------------

# Community managers moderate every game, so the admin shows them (and superusers) all of
# them; every other staff account sees only the games of its studio memberships.
MANAGERS_GROUP = "Community managers"


def studio_games(player: Player) -> models.QuerySet[Game]:
    """The games `player` works on: those of its studio memberships (GameMember, set by
    superusers in the admin); every game for a superuser. The one place membership is read."""
    if player.is_superuser:
        return Game.objects.all()
    return Game.objects.filter(pk__in=GameMember.objects.filter(player=player).values("game"))


def is_studio_member(player: Player, game: Game) -> bool:
    return studio_games(player).filter(pk=game.pk).exists()


def check_may_view_analytics(caller: Caller, game: Game) -> None:
    """A game's analytics (pages, API, CSV): for its studio's members, superusers, and the
    game's own API key. Another game's key, another studio's developer and a plain player
    get 403; nobody at all, 401."""
    require_caller(caller)
    if caller.game_key is not None:
        check_key_is_for(caller, game.pk)
        return
    assert caller.player is not None
    if not is_studio_member(caller.player, game):
        raise Forbidden("Only this game's studio may read its analytics.")


def admin_games(user: Player) -> models.QuerySet[Game] | None:
    """The games whose rows (the game itself, its achievements, seasons, unlocks...) this
    staff user sees in the admin: None for every game (superusers and community managers),
    else the games of their studio memberships."""
    if user.is_superuser or user.groups.filter(name=MANAGERS_GROUP).exists():
        return None
    return studio_games(user)


class Visibility(Enum):
    """How much of a player's data a caller may see."""

    ALL = "all"
    # A game server sees a non-public player's data for its game only, and only if its game
    # has recorded them (else the player is unknown to it: stats.selectors.viewed_player).
    OWN_GAME = "own_game"
    NONE = "none"


def visibility(caller: Caller, player: Player) -> Visibility:
    if caller.player is not None and caller.player.pk == player.pk:
        return Visibility.ALL
    if player.privacy == Privacy.PUBLIC:
        return Visibility.ALL
    if caller.game_key is not None:
        return Visibility.OWN_GAME
    if player.privacy == Privacy.FRIENDS and caller.player is not None:
        if Friendship.objects.are_friends(caller.player, player):
            return Visibility.ALL
    return Visibility.NONE


def check_may_view(caller: Caller, player: Player) -> Visibility:
    seen = visibility(caller, player)
    if seen is Visibility.NONE:
        raise Forbidden("This player's profile is not visible to you.")
    return seen


def check_in_view(caller: Caller, seen: Visibility, game_id: object) -> None:
    """May a caller that `check_may_view` answered `seen` see the player's data in game
    `game_id` (None: across every game, as on the global board)? A game key sees a
    non-public player only in its own game."""
    if seen is Visibility.OWN_GAME:
        _require_own_game(caller, game_id)


def game_in_view(caller: Caller, seen: Visibility, game: Game | None) -> Game | None:
    """The game to limit a player's data to, once `check_may_view` has answered `seen`:
    the one asked for (None: every game), or, for a game key looking at a non-public
    player, its own game (another game asked for is refused)."""
    if seen is not Visibility.OWN_GAME:
        return game
    if game is None:
        return caller.game
    _require_own_game(caller, game.pk)
    return game


def _require_own_game(caller: Caller, game_id: object) -> None:
    assert caller.game_key is not None
    if game_id is None or not key_is_for(caller, game_id):
        raise Forbidden("This player's data outside your game is not visible to you.")


def friend_ids(player: Player) -> set[object]:
    return friend_ids_by_player([player.pk])[player.pk]


def friend_ids_by_player(player_ids: Iterable[object]) -> dict[object, set[object]]:
    """Each player's friends' ids, in one query."""
    player_ids = set(player_ids)
    pairs = (
        Friendship.objects.accepted()
        .filter(models.Q(requester__in=player_ids) | models.Q(addressee__in=player_ids))
        .values_list("requester_id", "addressee_id")
    )
    friends: dict[object, set[object]] = {pk: set() for pk in player_ids}
    for requester, addressee in pairs:
        if requester in friends:
            friends[requester].add(addressee)
        if addressee in friends:
            friends[addressee].add(requester)
    return friends


# --- Whose activity reaches a friend's feed -----------------------------------------------

# Whose activity (unlocks, awards, season finishes, passing a friend) may reach their
# accepted friends' feeds (docs/feed.md): what `visibility` grants a friend, a public or
# friends-only player's data and never a private one's; and only while moderation has not
# hidden them from the boards and their account is active, so a blocked player's activity
# appears in no feed. The feed's read and its live fan-out both filter by it.
ACTIVITY_SHOWN = models.Q(is_active=True, boards_hidden=False) & ~models.Q(privacy=Privacy.PRIVATE)


def friends_sharing_activity(player: Player) -> models.QuerySet[Player]:
    """`player`'s accepted friends whose activity their feed shows (`ACTIVITY_SHOWN`), as
    one query, for a statement to read inside itself."""
    # The other side of each of the player's accepted friendships: a subquery the planner
    # reads through the friendship indexes (two ORed `pk IN` would scan every player).
    other = models.Case(models.When(requester=player, then=models.F("addressee")), default=models.F("requester"))
    friendships = Friendship.objects.accepted().filter(models.Q(requester=player) | models.Q(addressee=player))
    return Player.objects.filter(ACTIVITY_SHOWN, pk__in=friendships.annotate(other=other).values("other"))


def activity_audience(player_ids: Iterable[object]) -> set[object]:
    """The ids of the players whose friends' feed shows activity of any of `player_ids`:
    the accepted friends of each of them whose activity friends may see
    (`ACTIVITY_SHOWN`). Two queries, however many players."""
    shown = Player.objects.filter(ACTIVITY_SHOWN, pk__in=set(player_ids)).values_list("pk", flat=True)
    return set().union(*friend_ids_by_player(shown).values())


def names_visible_to(
    caller: Caller,
    players: Iterable[tuple[object, str]],
    *,
    game_id: object = None,
    friends: Collection[object] | None = None,
) -> set[object]:
    """The ids, as given, of the (player id, privacy) pairs whose names this caller may see
    on a board of `game_id` (None: the global board).

    Public players are seen by all; friends-only players by their friends; a game's own
    key sees everyone on that game's boards; staff see everyone; every player sees themself.

    One query at most, and only when a player asks and a friends-only player is listed:
    the caller's friends (a player has few; this never grows with the page). None when
    `friends`, the caller's friends' ids, is given (the friends board has them).
    """
    players = list(players)
    if caller.staff or (
        caller.game_key is not None and game_id is not None and str(caller.game_key.game_id) == str(game_id)
    ):
        return {pid for pid, _ in players}
    visible = {pid for pid, privacy in players if privacy == Privacy.PUBLIC}
    if caller.player is not None:
        me = str(caller.player.pk)
        visible |= {pid for pid, _ in players if str(pid) == me}
        friends_only = [pid for pid, privacy in players if privacy == Privacy.FRIENDS and str(pid) != me]
        if friends_only:
            known = {str(f) for f in (friend_ids(caller.player) if friends is None else friends)}
            visible |= {pid for pid in friends_only if str(pid) in known}
    return visible


# --- Who is identifiable on a board -------------------------------------------------------

ANONYMOUS_NAME = "Anonymous player"


def masked_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A board row whose player may not be named to the viewer: it keeps its place (rank,
    points and whatever else ranks it) but says nothing that tells who it is. The name
    becomes ANONYMOUS_NAME and the id, the one stable value that would let a viewer follow
    the player from board to board (and to their profile), becomes None."""
    return {**row, "player_id": None, "username": ANONYMOUS_NAME}


def rows_for(
    caller: Caller,
    rows: Iterable[Mapping[str, Any]],
    privacy: Mapping[Any, str],
    *,
    game_id: object = None,
    friends: Collection[object] | None = None,
) -> list[dict[str, Any]]:
    """Board rows as this caller may see them: the one place boards, standings windows,
    friends boards and live board events decide who is identifiable.

    A player whose name this caller may not see (`names_visible_to`, on a board of
    `game_id`; None: the global board) is not identifiable by id either: their row is
    `masked_row`. `rows` are dicts with at least "player_id" and "username"; `privacy` maps
    each listed player id, as the rows give it, to their privacy setting (a player missing
    from it is unknown, so masked). `friends` as for `names_visible_to`. Adds no query
    beyond what `names_visible_to` may need, however many rows."""
    rows = list(rows)
    listed = {row["player_id"] for row in rows}
    visible = names_visible_to(
        caller, [(pid, privacy[pid]) for pid in listed if pid in privacy], game_id=game_id, friends=friends
    )
    return [dict(row) if row["player_id"] in visible else masked_row(row) for row in rows]


def may_name(
    caller: Caller,
    player_id: object,
    privacy: str,
    *,
    game_id: object = None,
    friends: Collection[object] | None = None,
) -> bool:
    """May this caller be told who this one player is (`names_visible_to`, for one)?"""
    return bool(names_visible_to(caller, [(player_id, privacy)], game_id=game_id, friends=friends))
