"""Who may call a view at all, checked before the request's input is read.

DRF checks a view's permissions after authentication and before the handler runs, so an
anonymous caller gets 401 before any validation or lookup could tell it whether an id
exists (docs/api.md, "Authentication comes first"). The rules themselves are
tracker.auth's; these classes only apply them early. The schema reads `schemes` and
`anonymous_methods` to say, per operation, which credentials it takes.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from tracker.auth import Caller, require_caller, require_player

GAME_KEY = "GameApiKey"
PLAYER_TOKEN = "jwtAuth"


class CallerRequired(BasePermission):
    """A game key or a player: anonymous callers get 401."""

    schemes: frozenset[str] = frozenset({GAME_KEY, PLAYER_TOKEN})
    anonymous_methods: frozenset[str] = frozenset()

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method not in self.anonymous_methods:
            self.check(Caller.of(request))
        return True

    def check(self, caller: Caller) -> None:
        require_caller(caller)


class CallerRequiredToWrite(CallerRequired):
    """Reads are public; anything else needs a game key or a player."""

    anonymous_methods = frozenset(SAFE_METHODS)


class PlayerRequired(CallerRequired):
    """A player about itself: anonymous callers get 401, game keys 403."""

    schemes = frozenset({PLAYER_TOKEN})

    def check(self, caller: Caller) -> None:
        require_player(caller)


class GameKeyRequiredToWrite(CallerRequiredToWrite):
    """Reads are public; writes take a game key (tracker.auth says which game's)."""

    schemes = frozenset({GAME_KEY})
