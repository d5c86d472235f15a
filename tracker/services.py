"""Writes to the core models: players and game keys."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from tracker import crypto
from tracker.errors import Conflict, Invalid
from tracker.models import Game, GameKey, Player


def player_register(*, username: str, email: str, password: str, region: str) -> Player:
    if Player.objects.filter(username__iexact=username).exists():
        raise Conflict("That username is taken.", fields={"username": ["Already taken."]})
    if email and Player.objects.filter(email_digest=crypto.digest(email)).exists():
        raise Conflict("An account with that email exists.", fields={"email": ["Already registered."]})
    player = Player(username=username, region=region)
    player.set_email(email)
    try:
        validate_password(password, user=player)
    except ValidationError as error:
        raise Invalid("The password is too weak.", fields={"password": list(error.messages)}) from None
    player.set_password(password)
    try:
        with transaction.atomic():
            player.save()
    except IntegrityError:
        # Lost a race with another sign-up for the same name or email.
        raise Conflict("That username or email is taken.") from None
    return player


def game_key_create(*, game: Game, name: str = "") -> str:
    """Create an API key for `game` and return the raw key; only its hash is stored."""
    _, raw = GameKey.objects.create_key(game=game, name=name or f"{game.slug} server key")
    return raw
