"""Which players a game knows, for the privacy rule of the endpoints that take a player id."""

from __future__ import annotations

from stats.models import PlayerGameStats
from tracker.auth import Caller, Visibility, check_may_view
from tracker.models import Player
from tracker.selectors import get_player, unknown_player


def has_played(player_id: object, game_id: object) -> bool:
    """Whether game `game_id` has ever recorded player `player_id`: an unlock or a play
    session there made their stats row in it, which a revocation lowers but never removes
    (the same players rarity counts as the game's). One lookup on its unique index."""
    return PlayerGameStats.objects.filter(player_id=player_id, game_id=game_id).exists()


def viewed_player(caller: Caller, player_id: object) -> tuple[Player, Visibility]:
    """The player a caller asks about by id, and how much it may see (403 when nothing:
    `tracker.auth.check_may_view`).

    A game key may see a non-public player within its own game, but only a player its game
    has recorded (`has_played`): about any other it gets the very 404 of an id that
    belongs to no one, so a key cannot learn that a private player's id exists. A player
    the game has recorded, and every public one, is answered as before."""
    player = get_player(player_id)
    seen = check_may_view(caller, player)
    if seen is Visibility.OWN_GAME and not has_played(player.pk, caller.game_key.game_id):  # type: ignore[union-attr]
        raise unknown_player(player_id)
    return player, seen
