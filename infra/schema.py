"""OpenAPI schema tuning: our authentication schemes, who may call each operation, the
error responses every operation documents, names for nested serializers and operations,
and the hooks that give each choice set and each shape of a body one named component
(docs/api.md, "The schema")."""

from __future__ import annotations

import copy
import inspect
import re
from typing import Any

from django.db.models import Choices
from drf_spectacular.contrib.rest_framework_simplejwt import (
    SimpleJWTScheme,
    TokenObtainPairSerializerExtension,
    TokenRefreshSerializerExtension,
)
from drf_spectacular.drainage import warn
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import deep_import_string
from drf_spectacular.settings import spectacular_settings
from rest_framework import serializers
from rest_framework_simplejwt.views import TokenViewBase

from tracker.serializers import GAME_REF, ErrorOutputSerializer, StrictSerializer


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


# drf-spectacular describes simplejwt's own classes only, not subclasses: ours (infra.tokens)
# keep the same descriptions.
class PlayerJWTScheme(SimpleJWTScheme):
    target_class = "infra.tokens.PlayerJWTAuthentication"


class PlayerTokenObtainPairSerializerExtension(TokenObtainPairSerializerExtension):
    target_class = "infra.tokens.TokenObtainPairSerializer"


class PlayerTokenRefreshSerializerExtension(TokenRefreshSerializerExtension):
    target_class = "infra.tokens.TokenRefreshSerializer"


ERROR_DESCRIPTIONS = {
    "400": "Invalid input: `fields` names each invalid field.",
    "401": "No credentials where they are needed, or credentials that are malformed, unknown or expired.",
    "403": "The caller may not do this.",
    "404": "Something the request names does not exist (or is not visible to the caller).",
    "409": "The request conflicts with the current state.",
    "413": "Request body too large.",
    "429": "Too many requests: retry after the `Retry-After` header's seconds.",
}


# The operation id and tag of views we use but do not write (simplejwt's sign-in).
THIRD_PARTY_OPERATIONS = {
    "TokenObtainPairView": ("obtain_token", "auth"),
    "TokenRefreshView": ("refresh_token", "auth"),
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
        # A path or query string with a control character is refused before routing
        # (infra.middleware.ControlCharacterMiddleware), whatever the operation.
        if has_body or path_parameters or any(parameter["in"] == "query" for parameter in self._get_parameters()):
            codes.add("400")
        if has_body:
            codes.add("413")
        # A path names something, and so does the body of a report (a player, an achievement)
        # and a query string's `game`.
        names_a_game = any(p["in"] == "query" and p["name"] == "game" for p in self._get_parameters())
        if path_parameters or names_a_game or (has_body and self.method == "POST" and self.needs_credentials()):
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
            if serializer.shapes:
                schema[SHAPES] = serializer.shapes  # made components by `shaped_bodies`
        if schema.get("description") == inspect.getdoc(StrictSerializer):
            del schema["description"]  # inherited, it describes our base class, not this body
        return schema

    def _get_request_body(self, direction: str = "request") -> dict[str, Any] | None:
        body = super()._get_request_body(direction)
        # A body of several shapes has no field every shape requires, but each shape
        # requires one: there is always a body to send.
        if body is not None and getattr(self.get_request_serializer(), "shapes", None):
            body["required"] = True
        return body

    def _map_serializer_field(self, field: Any, direction: str, bypass_extensions: bool = False) -> Any:
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        rejects_empty = isinstance(field, (serializers.ListField, serializers.ListSerializer)) and not getattr(
            field, "allow_empty", True
        )
        if direction == "request" and rejects_empty and isinstance(schema, dict) and schema.get("type") == "array":
            schema["minItems"] = max(schema.get("minItems", 0), 1)
        return schema

    def get_operation_id(self) -> str:
        """Operation ids are the function names of generated clients (`unlock_achievement`),
        so every operation of ours names itself in `extend_schema(operation_id=...)`, as a
        verb and what it acts on; the path-derived default (`v1_achievements_unlock_create`)
        reads badly and would change with the URL. A view that forgets is a schema warning."""
        view = type(self.view).__name__
        if view in THIRD_PARTY_OPERATIONS:
            return THIRD_PARTY_OPERATIONS[view][0]
        warn(f"{view}.{self.method.lower()} names no operation_id (extend_schema(operation_id=...)).")
        return super().get_operation_id()

    def get_tags(self) -> list[str]:
        view = type(self.view).__name__
        if view in THIRD_PARTY_OPERATIONS:
            return [THIRD_PARTY_OPERATIONS[view][1]]
        return super().get_tags()

    def get_serializer_name(self, serializer: Any, direction: str) -> str:
        qualname = type(serializer).__qualname__
        if "." in qualname:
            return qualname.replace(".", "").replace("Api", "")
        return super().get_serializer_name(serializer, direction)


SHAPES = "x-shapes"


def shaped_bodies(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: a body that takes one of several shapes
    (StrictSerializer.shapes) becomes a `oneOf` of one component per shape, each with only
    its own fields, required. The shapes exclude each other, so a generated client has a
    type per shape (`UnlockInputByIdRequest | UnlockInputByApiNameRequest`), and a request
    with both or neither is invalid by the schema as it is by the server."""
    components = result.get("components", {}).get("schemas", {})
    for name, schema in list(components.items()):
        shapes = schema.pop(SHAPES, None)
        if not shapes:
            continue
        shaped = {field for fields in shapes.values() for field in fields}
        refs = []
        for shape, fields in shapes.items():
            branch = copy.deepcopy(schema)
            for field in shaped - set(fields):
                del branch["properties"][field]
            branch["required"] = [*schema.get("required", []), *fields]
            branch_name = f"{name.removesuffix('Request')}{shape}Request"
            components[branch_name] = branch
            refs.append({"$ref": f"#/components/schemas/{branch_name}"})
        components[name] = {
            "oneOf": refs,
            **({"description": schema["description"]} if "description" in schema else {}),
        }
    return result


def named_parameters(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook, after its own enum naming: a query or path
    parameter whose values are a named choice set refers to that set's one component
    (settings.SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]) instead of repeating it, so a
    generated client has one `Region` type, not one per operation; and a game named in the
    path takes the pattern of a game reference, as the bodies and query strings do."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    named: dict[tuple[Any, ...], str] = {}
    for name, choices in spectacular_settings.ENUM_NAME_OVERRIDES.items():
        values = [value for value, _ in choices_of(deep_import_string(choices)) if value not in ("", None)]
        named[tuple(values)] = name
    for path in result.get("paths", {}).values():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if parameter["in"] == "path" and parameter["name"] == "game_id":
                    schema.update({"pattern": GAME_REF, "maxLength": 64})
                name = named.get(tuple(schema.get("enum", ())))
                if name is None:
                    continue
                components.setdefault(name, {"enum": schema["enum"], "type": schema.get("type", "string")})
                parameter["schema"] = {"$ref": f"#/components/schemas/{name}"}
    return result


def choices_of(choices: Any) -> list[tuple[Any, Any]]:
    """(value, label) pairs of Django choices, a TextChoices class or a plain list of values."""
    if inspect.isclass(choices) and issubclass(choices, Choices):
        choices = choices.choices
    return [choice if isinstance(choice, (list, tuple)) else (choice, choice) for choice in choices]
