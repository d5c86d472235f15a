"""OpenAPI schema tuning: our authentication scheme, and names for nested serializers."""

from __future__ import annotations

from typing import Any

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


class QuestboardSchema(AutoSchema):
    """Views keep their serializers nested (`BatchUnlockApi.InputSerializer`); name the
    schema components after the outer class too, so that they stay unique."""

    def get_serializer_name(self, serializer: Any, direction: str) -> str:
        qualname = type(serializer).__qualname__
        if "." in qualname:
            return qualname.replace(".", "").replace("Api", "")
        return super().get_serializer_name(serializer, direction)
