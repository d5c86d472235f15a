"""Lookups of core rows that every endpoint shares: unknown ids become 404s here."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import router

from infra.errors import NotFound
from infra.memo import LocalCache
from infra.sql import by_pk
from tracker.models import Game, Player

games: LocalCache[Game] = LocalCache("games")


def get_player(player_id: Any) -> Player:
    """An active player by id, from the database the router reads players from, as one
    prepared statement (`infra.sql.by_pk`): every standing and around-me read asks for
    one, and compiling the ORM's query cost more than the rest of such a read's Python."""
    try:
        player = by_pk(Player, uuid.UUID(str(player_id)), using=router.db_for_read(Player))
    except ValueError:
        player = None
    if player is None or not player.is_active:
        raise unknown_player(player_id)
    return player


def unknown_player(player_id: Any) -> NotFound:
    """The 404 of a player id that names no one (or no one the caller may know of)."""
    return NotFound(f"Unknown player '{player_id}'.")


def get_game(game_ref: str) -> Game:
    """A game by id, or by slug for people typing URLs (from the per-process catalogue)."""
    try:
        lookup = {"pk": uuid.UUID(str(game_ref))}
    except ValueError:
        lookup = {"slug": game_ref}
    game = games.get(str(game_ref), lambda: Game.objects.filter(**lookup).first())
    if game is None:
        raise NotFound(f"Unknown game '{game_ref}'.")
    return game
