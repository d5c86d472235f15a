"""Player tokens (simplejwt): what they carry, and the one rule that says when they stop working.

A token stays good while it is unexpired, not blacklisted, and *current* for its player:

- the player is active (deactivation refuses every token at once);
- it was issued under the player's present password: simplejwt's revoke claim
  (``CHECK_REVOKE_TOKEN``, a hash of the password hash) no longer matches once the password
  is set again, by whatever road (the password page, the admin, ``manage.py
  changepassword``, a service);
- it was issued in the player's present session generation: "log out everywhere" and
  deactivation move the generation on (``Player.session_generation``).

The rule is checked on every API request, on every refresh and on every socket that opens
or is told to check again (infra.realtime), always against the player row read then, so a
change takes effect on the next request, not when the token expires.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework.request import Request
from rest_framework_simplejwt import serializers as jwt_serializers
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import RefreshToken, Token
from rest_framework_simplejwt.utils import get_md5_hash_password

from infra.ratelimits import credentials_checked
from infra.sql import by_pk
from tracker.models import Player

# Tokens issued before generations existed carry no claim: they belong to generation 0,
# which a player leaves the first time every session of theirs is ended.
GENERATION_CLAIM = "session_gen"


def check_token_current(token: Token, player: Player) -> None:
    """Raise AuthenticationFailed (401) unless `token` still speaks for `player`."""
    if not player.is_active:
        raise AuthenticationFailed(_("This account is deactivated."), code="user_inactive")
    if token.get(api_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(player.password):
        raise AuthenticationFailed(
            _("The password was changed after this token was issued; log in again."), code="password_changed"
        )
    if token.get(GENERATION_CLAIM, 0) != player.session_generation:
        raise AuthenticationFailed(
            _("Every session of this player was ended after this token was issued; log in again."),
            code="sessions_ended",
        )


def player_of(token: Token) -> Player:
    """The player a validated token speaks for, if it is still current (else 401)."""
    try:
        player_id = token[api_settings.USER_ID_CLAIM]
    except KeyError:
        raise InvalidToken(_("Token contained no recognizable user identification")) from None
    try:
        player = by_pk(Player, uuid.UUID(str(player_id)))
    except ValueError:
        player = None
    if player is None:
        raise AuthenticationFailed(_("User not found"), code="user_not_found") from None
    check_token_current(token, player)
    return player


class PlayerJWTAuthentication(JWTAuthentication):
    """simplejwt's Bearer authentication, with the whole rule above instead of its own
    partial check (it knows nothing of session generations)."""

    def authenticate(self, request: Request) -> tuple[Player, Token] | None:
        if self.get_header(request) is None:
            return None
        # A token that fails costs its address's budget; past it, a 429 before any lookup.
        with credentials_checked(request, known=lambda: self.signed(request)):
            return super().authenticate(request)

    def signed(self, request: Request) -> bool:
        """Whether the request's token carries our signature and is current: checked
        without the database."""
        header = self.get_header(request)
        raw = None if header is None else self.get_raw_token(header)
        try:
            return raw is not None and bool(self.get_validated_token(raw))
        except (InvalidToken, TokenError):
            return False

    def get_user(self, validated_token: Token) -> Player:
        return player_of(validated_token)


def access_token_player(raw: str) -> tuple[Player, Token]:
    """The player behind a raw access token, and the token (sockets: ``?token=``)."""
    auth = PlayerJWTAuthentication()
    token = auth.get_validated_token(raw)  # type: ignore[arg-type]  # PyJWT takes str too
    return auth.get_user(token), token


class TokenObtainPairSerializer(jwt_serializers.TokenObtainPairSerializer):
    """``POST /api/v1/auth/token/``: the pair carries the player's session generation."""

    @classmethod
    def get_token(cls, user: Player) -> RefreshToken:
        token = super().get_token(user)
        token[GENERATION_CLAIM] = user.session_generation
        return token


class TokenRefreshSerializer(jwt_serializers.TokenRefreshSerializer):
    """``POST /api/v1/auth/token/refresh/``: simplejwt checks only that the player is
    active; a refresh token must also still be current (a 401 otherwise, never a new pair)."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        player_of(self.token_class(attrs["refresh"]))
        return super().validate(attrs)
