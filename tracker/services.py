"""Writes to the core models: players and game keys."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenBackendExpiredToken
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.tokens import RefreshToken

from infra import outbox
from infra.errors import Conflict, Forbidden, Invalid
from tracker import feedhead
from tracker.models import Game, GameKey, Player


def player_register(*, username: str, email: str, password: str, region: str) -> Player:
    """A new player. A taken username is refused (names are public: every profile is at
    /players/<name>/); an email already in use is not, so sign-up never tells a stranger
    whether an address has an account."""
    if Player.objects.filter(username__iexact=username).exists():
        raise Conflict("That username is taken.", fields={"username": ["Already taken."]})
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
        # Lost a race with another sign-up for the same name.
        raise Conflict("That username is taken.", fields={"username": ["Already taken."]}) from None
    return player


# --- Ending a player's sessions --------------------------------------------------------------
# Tokens stop working by rule (infra.tokens.check_token_current): a new password, a new
# session generation or deactivation is enough, whichever road wrote it. These services add
# what no rule can do: they tell the player's open sockets, after commit and through the
# outbox (so the news is not lost with the channel layer), to check their credentials again.


def _sockets_check_after_commit(player: Player) -> None:
    outbox.record("sessions", {"player": str(player.pk)})


def player_password_set(*, player: Player, password: str | None) -> None:
    """Set the player's password (None: no usable password). Every token issued under the
    old one stops working at once; so do the player's browser sessions, except the one the
    caller keeps with update_session_auth_hash. Validation is the caller's (its form)."""
    if password is None:
        player.set_unusable_password()
    else:
        player.set_password(password)
    with transaction.atomic():
        player.save(update_fields=["password"])
        _sockets_check_after_commit(player)


def player_token_end(*, refresh: str, player: Player | None) -> None:
    """Log one device out: blacklist its refresh token (its access token lives out its few
    minutes). Ending a token that is already ended or expired does nothing, so a logout can
    be retried. 400 for anything that is not a refresh token of ours; 403 when `player`
    (the caller, when known) is not its owner."""
    try:
        claims = token_backend.decode(refresh, verify=True)  # the signature, then the expiry
    except TokenBackendExpiredToken:
        return
    except TokenBackendError:
        raise Invalid("Not a valid refresh token.", fields={"refresh": ["Not a valid refresh token."]}) from None
    if claims.get(jwt_settings.TOKEN_TYPE_CLAIM) != RefreshToken.token_type:
        raise Invalid("Not a refresh token.", fields={"refresh": ["Send the refresh token, not the access token."]})
    if player is not None and str(claims.get(jwt_settings.USER_ID_CLAIM)) != str(player.pk):
        raise Forbidden("This refresh token belongs to another player.")
    # The signature is verified above; verify=False skips only the blacklist check, so an
    # ended token is ended again without error.
    RefreshToken(refresh, verify=False).blacklist()


def player_sessions_end(*, player: Player) -> None:
    """Log the player out of every device signed in with tokens ("log out everywhere"):
    every refresh and access token issued so far stops working, and sockets opened with
    them close. Browser sessions are the browser's to end (or a password change's)."""
    with transaction.atomic():
        Player.objects.filter(pk=player.pk).update(session_generation=F("session_generation") + 1)
        player.refresh_from_db(fields=["session_generation"])
        _sockets_check_after_commit(player)


def player_deactivate(*, player: Player) -> None:
    """A community manager suspends the account: every token, browser session and socket
    is refused at once. The session generation moves on too, so that reactivating the
    account later brings none of the old tokens back."""
    with transaction.atomic():
        Player.objects.filter(pk=player.pk).update(is_active=False, session_generation=F("session_generation") + 1)
        player.refresh_from_db(fields=["is_active", "session_generation"])
        _sockets_check_after_commit(player)
        feedhead.shown_changed(player)


def game_key_create(*, game: Game, name: str = "", requests_per_minute: int | None = None) -> str:
    """Create an API key for `game` and return the raw key; only its hash is stored.
    `requests_per_minute` None: the key gets RATE_LIMIT_GAME_KEY."""
    if requests_per_minute is not None and requests_per_minute < 1:
        raise Invalid("requests_per_minute must be at least 1.", fields={"requests_per_minute": ["At least 1."]})
    _, raw = GameKey.objects.create_key(
        game=game, name=name or f"{game.slug} server key", requests_per_minute=requests_per_minute
    )
    return raw
