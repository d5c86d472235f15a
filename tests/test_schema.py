"""The OpenAPI schema documents every /api/v1/ endpoint, and the docs page serves it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.drainage import GENERATOR_STATS

from config.urls import API_ALIASES
from tests.conftest import Api

SCHEMA_URL = "/api/schema/"


def v1_paths() -> set[str]:
    """Every /api/v1/ route in the URLconf, spelled as OpenAPI spells paths."""

    def walk(patterns: list[Any], prefix: str) -> set[str]:
        found: set[str] = set()
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                found |= walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                found.add("/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route))
        return found

    # Each route also answers with its trailing slash flipped; the schema lists one of the two.
    return {
        path
        for path in walk(get_resolver().url_patterns, "")
        if path.startswith("/api/v1/") and path not in API_ALIASES
    }


def test_the_urlconf_has_the_contract_endpoints() -> None:
    # Guards v1_paths() itself: if it found nothing, the schema test below would prove nothing.
    assert {
        "/api/v1/achievements/unlock",
        "/api/v1/achievements/unlock/batch",
        "/api/v1/achievements/progress",
        "/api/v1/players/",
        "/api/v1/players/{player_id}/achievements",
        "/api/v1/games/{game_id}/achievements",
        "/api/v1/auth/token/",
        "/api/v1/auth/token/refresh/",
    } <= v1_paths()


def test_the_schema_is_an_openapi_3_document_with_every_v1_path(api: Api, db: Any) -> None:
    response = api.anonymous().get(SCHEMA_URL, {"format": "json"})

    assert response.status_code == 200, response.content
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Questboard API"
    assert v1_paths() - set(schema["paths"]) == set()


def test_every_route_also_answers_with_its_trailing_slash_flipped(api: Api, db: Any) -> None:
    assert api.anonymous().get("/api/v1/games").status_code == 200
    assert api.anonymous().get("/api/v1/leaderboards/global/").status_code == 200
    body = {"username": "nova", "email": "nova@example.com", "password": "a long passphrase 42", "region": "eu"}
    assert api.anonymous().post("/api/v1/players", body, format="json").status_code == 201


def test_the_schema_is_served_as_json_for_the_openapi_media_type(api: Api, db: Any) -> None:
    response = api.anonymous().get(SCHEMA_URL, HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    assert "/api/v1/achievements/unlock" in response.json()["paths"]


def test_the_schema_documents_the_unlock_request_and_both_success_statuses(api: Api, db: Any) -> None:
    schema = api.anonymous().get(SCHEMA_URL, {"format": "json"}).json()

    unlock = schema["paths"]["/api/v1/achievements/unlock"]["post"]
    assert {"200", "201"} <= set(unlock["responses"])
    assert "requestBody" in unlock


def test_the_docs_page_is_html(api: Api, db: Any) -> None:
    response = api.anonymous().get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "swagger" in page.lower()
    # Its setup is a script file of its own (the Content-Security-Policy allows no inline
    # script), which points Swagger UI at the schema.
    setup = api.anonymous().get("/api/docs/?script=")
    assert setup["Content-Type"].startswith("application/javascript")
    assert SCHEMA_URL in setup.content.decode()


def test_the_schema_generates_without_warnings_and_validates(db: Any, tmp_path: Path, capsys: Any) -> None:
    target = tmp_path / "schema.yml"
    GENERATOR_STATS.reset()  # warnings are remembered process-wide; count only this run's

    try:
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    finally:
        warnings = capsys.readouterr().err

    assert "Warning" not in warnings, warnings
    assert yaml.safe_load(target.read_text())["openapi"].startswith("3.")


def schema_of(api: Api) -> dict[str, Any]:
    return api.anonymous().get(SCHEMA_URL, {"format": "json"}).json()


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in schema["paths"].items() for method, op in ops.items()]


def test_operations_that_need_credentials_do_not_claim_anonymous_access(api: Api, db: Any) -> None:
    paths = schema_of(api)["paths"]

    security = {
        "report a session": paths["/api/v1/sessions"]["post"]["security"],
        "unlock": paths["/api/v1/achievements/unlock"]["post"]["security"],
        "who am I": paths["/api/v1/players/me"]["get"]["security"],
        "my friends": paths["/api/v1/friends"]["get"]["security"],
        "replace a manifest": paths["/api/v1/games/{game_id}/achievements"]["put"]["security"],
    }

    assert security == {
        "report a session": [{"GameApiKey": []}, {"jwtAuth": []}],
        "unlock": [{"GameApiKey": []}, {"jwtAuth": []}],
        "who am I": [{"jwtAuth": []}],
        "my friends": [{"jwtAuth": []}],
        "replace a manifest": [{"GameApiKey": []}],
    }


def test_public_reads_list_anonymous_access_and_every_scheme(api: Api, db: Any) -> None:
    paths = schema_of(api)["paths"]

    for path in ("/api/v1/leaderboards/global", "/api/v1/players/{player_id}/statistics", "/api/v1/games/"):
        assert paths[path]["get"]["security"] == [{"GameApiKey": []}, {"jwtAuth": []}, {}], path
    # A game's achievement set is public to read, its manifest a game key's to write.
    assert {} in paths["/api/v1/games/{game_id}/achievements"]["get"]["security"]


def test_every_operation_documents_its_errors_in_the_one_error_shape(api: Api, db: Any) -> None:
    schema = schema_of(api)
    envelope = schema["components"]["schemas"]["ErrorOutput"]
    assert envelope["required"] == ["error"]

    for method, path, operation in operations(schema):
        errors = {code: body for code, body in operation["responses"].items() if code.startswith("4")}
        assert "429" in errors, (method, path)
        for code, body in errors.items():
            content = body["content"]["application/json"]["schema"]
            assert content == {"$ref": "#/components/schemas/ErrorOutput"}, (method, path, code)
        if {} not in operation.get("security", [{}]):
            assert {"401", "403"} <= set(errors), (method, path)
        if "requestBody" in operation:
            assert {"400", "413"} <= set(errors), (method, path)
        if "{" in path:
            assert "404" in errors, (method, path)


def test_the_operations_that_can_conflict_document_409(api: Api, db: Any) -> None:
    paths = schema_of(api)["paths"]

    for path, method in [
        ("/api/v1/sessions", "post"),
        ("/api/v1/friends/requests", "post"),
        ("/api/v1/players/", "post"),
        ("/api/v1/games/{game_id}/achievements", "put"),
        ("/api/v1/seasons/{season_id}/around/{player_id}", "get"),
    ]:
        assert "409" in paths[path][method]["responses"], (method, path)


def test_bodies_that_refuse_unknown_fields_say_so_and_required_text_is_not_blank(api: Api, db: Any) -> None:
    schema = schema_of(api)
    components = schema["components"]["schemas"]

    def bodies_of(path: str, method: str) -> list[dict[str, Any]]:
        """The body's schema, or each of its shapes when it takes one of several."""
        ref = schema["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        body = components[ref.rsplit("/", 1)[1]]
        return [components[shape["$ref"].rsplit("/", 1)[1]] for shape in body.get("oneOf", [])] or [body]

    for path, method in [
        ("/api/v1/achievements/unlock", "post"),
        ("/api/v1/achievements/unlock/batch", "post"),
        ("/api/v1/sessions", "post"),
        ("/api/v1/players/me", "patch"),
        ("/api/v1/players/", "post"),
    ]:
        for body in bodies_of(path, method):
            assert body["additionalProperties"] is False, (method, path)
    [batch] = bodies_of("/api/v1/achievements/unlock/batch", "post")
    assert batch["properties"]["unlocks"]["minItems"] == 1
    by_id, by_api_name = bodies_of("/api/v1/achievements/unlock", "post")
    assert by_api_name["properties"]["achievement"]["minLength"] == 1
    # Output shapes are not closed: a field added later must not break a client.
    assert "additionalProperties" not in components["MeOutput"]


def test_players_me_is_typed(api: Api, db: Any) -> None:
    schema = schema_of(api)
    me = schema["paths"]["/api/v1/players/me"]
    output = schema["components"]["schemas"]["MeOutput"]

    assert set(me) == {"get", "patch"}
    assert set(output["properties"]) == {"id", "username", "region", "privacy"}
    patch = me["patch"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][patch]["properties"]) == {"region", "privacy", "email"}


def test_every_response_is_typed_down_to_its_leaves(api: Api, db: Any) -> None:
    schema = schema_of(api)
    components = schema["components"]["schemas"]
    # The error envelope's `fields` mirrors the input's shape (a list item's or a nested
    # field's errors nest under it), so it alone is a free-form object. A batch item is
    # flat: its `fields` is typed (test_a_batch_items_error_names_its_fields_as_lists_of_messages).
    free_form = {("ErrorOutputSerializerError", "fields")}

    def untyped(node: Any, where: str) -> list[str]:
        if not isinstance(node, dict) or "$ref" in node:
            return []
        found = []
        if node.get("type") == "object" and not node.get("properties") and "additionalProperties" not in node:
            found.append(where)
        if node.get("additionalProperties") in ({}, True):
            found.append(where)
        if node.get("type") == "array":
            found += untyped(node.get("items", {}), where + "[]")
        for name, child in node.get("properties", {}).items():
            found += untyped(child, f"{where}.{name}")
        for name in ("allOf", "oneOf", "anyOf"):
            for child in node.get(name, []):
                found += untyped(child, where)
        return found

    response_components = {
        ref.rsplit("/", 1)[1]
        for _, _, operation in operations(schema)
        for response in operation["responses"].values()
        for body in response.get("content", {}).values()
        for ref in [body["schema"].get("$ref", "")]
        if ref
    }
    # Follow references to the nested components too.
    seen: set[str] = set()
    pending = list(response_components)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        pending += re.findall(r"#/components/schemas/(\w+)", str(components[name]))
    assert {
        "BatchUnlockOutput",
        "GameAchievementsOutput",
        "FriendsOutput",
        "HistoryOutput",
        "StatisticsOutput",
        "PlayerAchievementsOutput",
        "DashboardOutput",
    } <= seen

    problems = [
        spot
        for name in sorted(seen)
        for spot in untyped(components[name], name)
        if tuple(spot.split(".", 1)) not in free_form
    ]
    assert problems == []


def test_a_batch_items_error_names_its_fields_as_lists_of_messages(api: Api, db: Any) -> None:
    components = schema_of(api)["components"]["schemas"]
    fields = components["ItemError"]["properties"]["fields"]

    assert fields["type"] == "object"
    assert fields["additionalProperties"] == {"type": "array", "items": {"type": "string"}}


def described(schema: dict[str, Any], operation: dict[str, Any], name: str) -> list[str]:
    """The descriptions of `name` in an operation: a query parameter's, or a body field's in
    every shape of the body."""
    found = [p.get("description", "") for p in operation.get("parameters", []) if p["name"] == name]
    components = schema["components"]["schemas"]
    pending = [operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})]
    while pending:
        node = pending.pop()
        if "$ref" in node:
            node = components[node["$ref"].rsplit("/", 1)[1]]
        pending += node.get("oneOf", [])
        if name in node.get("properties", {}):
            found.append(node["properties"][name].get("description", ""))
    return found


# Rules between fields, or against another game, that JSON Schema cannot express: each is
# said in words where a client reads it, on the field and on the 400 it leads to.
CROSS_FIELD_RULES = {
    "a table only with format=csv": ("get", "/api/v1/games/{game_id}/analytics", "table", "only with format=csv"),
    "an analytics range of at most 366 days": ("get", "/api/v1/games/{game_id}/analytics", "start", "366 days"),
    "a history range of at most 366 days": ("get", "/api/v1/players/{player_id}/history", "start", "366 days"),
    "a session ends after it starts": ("post", "/api/v1/sessions", "ended_at", "after `started_at`"),
    "a manifest names its own game": ("put", "/api/v1/games/{game_id}/achievements", "slug", "this game's own"),
}


@pytest.mark.parametrize(("method", "path", "name", "rule"), CROSS_FIELD_RULES.values(), ids=CROSS_FIELD_RULES)
def test_a_rule_between_fields_is_stated_on_the_field_and_its_400(
    api: Api, db: Any, method: str, path: str, name: str, rule: str
) -> None:
    schema = schema_of(api)
    operation = schema["paths"][path][method]

    descriptions = described(schema, operation, name)
    assert descriptions and all(rule.lower() in d.lower() for d in descriptions), descriptions
    words = {"table": "format=csv", "start": "366 days", "ended_at": "started_at", "slug": "slug"}[name]
    assert words in operation["responses"]["400"]["description"]


def test_logging_out_everywhere_says_a_refresh_beside_it_is_not_read(api: Api, db: Any) -> None:
    schema = schema_of(api)
    operation = schema["paths"]["/api/v1/auth/logout"]["post"]

    assert all("Not read with `all: true`" in d for d in described(schema, operation, "refresh"))
    assert "both" not in operation["responses"]["400"]["description"]


def test_operation_ids_read_as_calls_in_a_generated_client(api: Api, db: Any) -> None:
    schema = schema_of(api)
    ids = {(method, path): op["operationId"] for method, path, op in operations(schema)}

    assert ids[("post", "/api/v1/achievements/unlock")] == "unlock_achievement"
    assert ids[("post", "/api/v1/achievements/unlock/batch")] == "unlock_achievements_batch"
    assert ids[("get", "/api/v1/players/me")] == "get_me"
    assert ids[("get", "/api/v1/leaderboards/{game_id}")] == "list_game_leaderboard"
    assert ids[("post", "/api/v1/auth/token/")] == "obtain_token"
    assert len(set(ids.values())) == len(ids), "two operations share an id"
    verbs = {"get", "list", "unlock", "report", "import", "register", "send", "answer", "remove", "update"}
    verbs |= {"obtain", "refresh", "log"}
    odd = sorted(i for i in ids.values() if not re.fullmatch(r"[a-z]+(_[a-z]+)+", i) or i.split("_")[0] not in verbs)
    assert odd == [], "not a verb_object name (or the path-derived default)"


def test_every_operation_is_tagged_with_its_area(api: Api, db: Any) -> None:
    tags = {path: op["tags"] for _, path, op in operations(schema_of(api))}

    assert tags["/api/v1/auth/token/"] == ["auth"]
    assert tags["/api/v1/achievements/unlock"] == ["achievements"]
    assert not [path for path, names in tags.items() if names in ([], ["v1"])]


def test_each_choice_set_is_one_named_component_used_everywhere(api: Api, db: Any) -> None:
    schema = schema_of(api)
    components = schema["components"]["schemas"]

    assert components["Region"]["enum"] == ["na", "sa", "eu", "asia", "oce", "af", "me"]
    assert components["Privacy"]["enum"] == ["public", "friends", "private"]
    assert components["Rarity"]["enum"] == ["common", "uncommon", "rare", "epic", "legendary"]
    assert {"SeasonStatus", "FriendshipStatus"} <= set(components)
    # Nowhere else is a choice set spelled out: parameters and properties refer to these.
    inline: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if "enum" in node and node["enum"] != [""]:
                inline.append(where)
            for key, child in node.items():
                walk(child, f"{where}.{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, f"{where}[{index}]")

    walk(schema["paths"], "paths")
    for name, component in components.items():
        walk({key: value for key, value in component.items() if key != "enum"}, name)
    assert inline == [], "a choice set spelled out in place"
    region = next(
        p for p in schema["paths"]["/api/v1/leaderboards/global"]["get"]["parameters"] if p["name"] == "region"
    )
    assert region["schema"] == {"$ref": "#/components/schemas/Region"}


def test_bodies_that_take_exactly_one_of_two_fields_are_one_of_two_shapes(api: Api, db: Any) -> None:
    components = schema_of(api)["components"]["schemas"]

    def shapes(name: str) -> dict[str, dict[str, Any]]:
        refs = [shape["$ref"].rsplit("/", 1)[1] for shape in components[name]["oneOf"]]
        return {ref: components[ref] for ref in refs}

    unlock = shapes("UnlockInputRequest")
    assert {name: (sorted(shape["properties"]), sorted(shape["required"])) for name, shape in unlock.items()} == {
        "UnlockInputByIdRequest": (["achievement_id", "player_id", "timestamp"], ["achievement_id", "player_id"]),
        "UnlockInputByApiNameRequest": (["achievement", "player_id", "timestamp"], ["achievement", "player_id"]),
    }
    # The batch's items are unlocks, shapes and all; progress and friend requests likewise.
    batch = components["BatchUnlockInputRequest"]["properties"]["unlocks"]["items"]
    assert batch == {"$ref": "#/components/schemas/UnlockInputRequest"}
    assert set(shapes("ProgressInputRequest")) == {"ProgressInputByIdRequest", "ProgressInputByApiNameRequest"}
    assert set(shapes("FriendRequestInputRequest")) == {
        "FriendRequestInputByUsernameRequest",
        "FriendRequestInputByPlayerIdRequest",
    }
    # A session gives both ends, or a duration with one end or none.
    times = {"started_at", "ended_at", "duration_seconds"}
    session = [
        (set(shape["required"]) & times, set(shape["properties"]) & times)
        for shape in shapes("SessionInputRequest").values()
    ]
    assert all(required == given for required, given in session), "a shape with an optional time"
    assert sorted(sorted(required) for required, _ in session) == [
        ["duration_seconds"],
        ["duration_seconds", "ended_at"],
        ["duration_seconds", "started_at"],
        ["ended_at", "started_at"],
    ]
