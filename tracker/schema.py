"""OpenAPI schema tuning: our authentication schemes, who may call each operation, the
error responses every operation documents, and names for nested serializers."""

from __future__ import annotations

import inspect
import re
from typing import Any

from drf_spectacular.contrib.rest_framework_simplejwt import (
    SimpleJWTScheme,
    TokenObtainPairSerializerExtension,
    TokenRefreshSerializerExtension,
)
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers
from rest_framework_simplejwt.views import TokenViewBase

from tracker.serializers import ErrorOutputSerializer, StrictSerializer


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


ERROR_DESCRIPTIONS = {
    "400": "Invalid input: `fields` names each invalid field.",
    "401": "No credentials where they are needed, or credentials that are malformed, unknown or expired.",
    "403": "The caller may not do this.",
    "404": "Something the request names does not exist (or is not visible to the caller).",
    "409": "The request conflicts with the current state.",
    "413": "Request body too large.",
    "429": "Too many requests: retry after the `Retry-After` header's seconds.",
}


class QuestboardSchema(AutoSchema):
    """Views keep their serializers nested (`BatchUnlockApi.InputSerializer`); name the
    schema components after the outer class too, so that they stay unique.

    Security follows the view's permission classes (tracker.permissions): an operation that
    needs credentials lists only the schemes it takes, a public one lists anonymous access
    as well. Every operation documents the errors it can answer, in the one error shape.
    """

    def _permission(self) -> Any:
        for permission in self.view.get_permissions():
            if hasattr(permission, "schemes"):
                return permission
        return None

    def get_auth(self) -> list[dict[str, Any]]:
        auths = super().get_auth()
        permission = self._permission()
        if permission is None:
            return auths
        # Imported here: tracker.permissions needs the models, loaded after this module.
        from tracker.permissions import GAME_KEY, PLAYER_TOKEN

        if self.method in permission.anonymous_methods:
            return [auth for auth in auths if auth] + [{}]
        return [
            auth
            for auth in auths
            if auth and not any(name in (GAME_KEY, PLAYER_TOKEN) and name not in permission.schemes for name in auth)
        ]

    def needs_credentials(self) -> bool:
        permission = self._permission()
        return permission is not None and self.method not in permission.anonymous_methods

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        has_body = self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None
        path_parameters = set(re.findall(r"{(\w+)}", self.path))
        codes = {"429"}
        # Every view with authenticators refuses bad credentials; sign-in refuses a bad password.
        if self.view.get_authenticators() or isinstance(self.view, TokenViewBase):
            codes.add("401")
        if has_body or any(parameter["in"] == "query" for parameter in self._get_parameters()):
            codes.add("400")
        if has_body:
            codes.add("413")
        # A path names something, and so does the body of a report (a player, an achievement).
        if path_parameters or (has_body and self.method == "POST" and self.needs_credentials()):
            codes.add("404")
        # A game key where a player is needed, another game's key, another player's data.
        if self.needs_credentials() or "player_id" in path_parameters:
            codes.add("403")
        for code in sorted(codes | {code for code in responses if code in ERROR_DESCRIPTIONS}):
            described = responses.get(code, {})
            if "content" not in described:
                error = self._get_response_for_code(ErrorOutputSerializer, code, direction=direction)
                error["description"] = described.get("description") or ERROR_DESCRIPTIONS[code]
                responses[code] = error
        return responses

    def _map_basic_serializer(self, serializer: Any, direction: str) -> dict[str, Any]:
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request" and isinstance(serializer, StrictSerializer):
            schema["additionalProperties"] = False
        if schema.get("description") == inspect.getdoc(StrictSerializer):
            del schema["description"]  # inherited, it describes our base class, not this body
        return schema

    def _map_serializer_field(self, field: Any, direction: str, bypass_extensions: bool = False) -> Any:
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        rejects_empty = isinstance(field, (serializers.ListField, serializers.ListSerializer)) and not getattr(
            field, "allow_empty", True
        )
        if direction == "request" and rejects_empty and isinstance(schema, dict) and schema.get("type") == "array":
            schema["minItems"] = max(schema.get("minItems", 0), 1)
        return schema

    def get_serializer_name(self, serializer: Any, direction: str) -> str:
        qualname = type(serializer).__qualname__
        if "." in qualname:
            return qualname.replace(".", "").replace("Api", "")
        return super().get_serializer_name(serializer, direction)
