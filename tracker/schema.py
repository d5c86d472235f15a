"""OpenAPI schema tuning: our authentication scheme, and names for nested serializers."""

from __future__ import annotations

from typing import Any

from drf_spectacular.contrib.rest_framework_simplejwt import (
    SimpleJWTScheme,
    TokenObtainPairSerializerExtension,
    TokenRefreshSerializerExtension,
)
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema


class GameKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tracker.auth.GameKeyAuthentication"
    name = "GameApiKey"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "A game server's key: `Authorization: Api-Key <prefix.secret>`.",
        }


# drf-spectacular describes simplejwt's own classes only, not subclasses: ours (tracker.tokens)
# keep the same descriptions.
class PlayerJWTScheme(SimpleJWTScheme):
    target_class = "tracker.tokens.PlayerJWTAuthentication"


class PlayerTokenObtainPairSerializerExtension(TokenObtainPairSerializerExtension):
    target_class = "tracker.tokens.TokenObtainPairSerializer"


class PlayerTokenRefreshSerializerExtension(TokenRefreshSerializerExtension):
    target_class = "tracker.tokens.TokenRefreshSerializer"


class QuestboardSchema(AutoSchema):
    """Views keep their serializers nested (`BatchUnlockApi.InputSerializer`); name the
    schema components after the outer class too, so that they stay unique."""

    def get_serializer_name(self, serializer: Any, direction: str) -> str:
        qualname = type(serializer).__qualname__
        if "." in qualname:
            return qualname.replace(".", "").replace("Api", "")
        return super().get_serializer_name(serializer, direction)
