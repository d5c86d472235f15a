"""The achievement endpoints: thin views that parse, authorise, call a service, serialise."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from achievements import selectors, services
from achievements.models import Achievement, AchievementType, Award, Rarity
from achievements.selectors import achievement_data
from infra.errors import DomainError, Forbidden, Invalid, NotFound
from stats.selectors import viewed_player
from tracker.auth import (
    Caller,
    check_may_manage_game,
    check_may_report,
    game_in_view,
    require_caller,
)
from tracker.permissions import CallerRequired, GameKeyRequiredToWrite
from tracker.selectors import get_game, get_player
from tracker.serializers import (
    BoundedDateTimeField,
    GameRefField,
    PageInput,
    StrictSerializer,
    parsed_body,
    parsed_query,
)

# The largest progress value and target (PostgreSQL's integer holds 2**31 - 1).
MAX_PROGRESS = 2_000_000_000

TYPE_HELP = (
    "What the achievement means for finishing the game (docs/awards.md): every progression one and, "
    "when the game has any, one win condition beat it; missable ones can be missed for good. Null: none."
)


class AchievementOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    game_id = serializers.UUIDField()
    api_name = serializers.CharField(allow_null=True)
    name = serializers.CharField()
    description = serializers.CharField()
    icon = serializers.CharField(help_text="Image URL; empty when the game gave none.")
    points = serializers.IntegerField()
    hidden = serializers.BooleanField()
    client_unlockable = serializers.BooleanField()
    progress_target = serializers.IntegerField(allow_null=True)
    type = serializers.ChoiceField(choices=AchievementType.choices, allow_null=True, help_text=TYPE_HELP)
    unlock_percentage = serializers.FloatField()
    rarity = serializers.ChoiceField(choices=Rarity.choices)


class AchievementRefInput(StrictSerializer):
    """Names an achievement by id, or (game keys) by its api_name: exactly one of the two."""

    shapes = {"ById": ("achievement_id",), "ByApiName": ("achievement",)}
    shape_error = ("achievement_id", "Give exactly one of achievement_id or achievement (its api_name).")

    player_id = serializers.UUIDField()
    achievement_id = serializers.UUIDField(required=False)
    achievement = serializers.CharField(required=False, max_length=64, help_text="The achievement's api_name.")


class UnlockInput(AchievementRefInput):
    timestamp = BoundedDateTimeField(required=False)

    def validate_timestamp(self, value: datetime) -> datetime:
        if value > timezone.now() + settings.UNLOCK_MAX_CLOCK_SKEW:
            raise serializers.ValidationError("Timestamp is in the future.")
        return value


_BY_NAME = frozenset({"player_id", "achievement"})
_BY_ID = frozenset({"player_id", "achievement_id"})
# The serializer's own bound, so the fast path cannot drift from it.
_NAME_MAX = AchievementRefInput._declared_fields["achievement"].max_length


def plain_unlock(item: Any) -> dict[str, Any] | None:
    """What `UnlockInput` would make of an unlock that names a player and an achievement
    and nothing else, in the plainest form (no timestamp, a name already trimmed); None
    for anything else, which the serializer then validates and words the errors of.

    The unlock endpoints are the hot path: a batch ran `UnlockInput` a hundred times, the
    largest part of its Python. This answers only where the serializer's answer is
    certain, with the same values (UUIDs parsed as its UUIDField parses them)."""
    if type(item) is not dict:
        return None
    keys = item.keys()
    player = item.get("player_id")
    if type(player) is not str:
        return None
    if keys == _BY_NAME:
        name = item["achievement"]
        # The CharField's rules: trimmed, not blank, no NUL (the parser refuses surrogates).
        if type(name) is not str or not 0 < len(name) <= _NAME_MAX or name != name.strip() or "\x00" in name:
            return None
        ref: tuple[str, Any] = ("achievement", name)
    elif keys == _BY_ID:
        if type(item["achievement_id"]) is not str:
            return None
        try:
            ref = ("achievement_id", uuid.UUID(hex=item["achievement_id"]))
        except ValueError:
            return None
    else:
        return None
    try:
        player_id = uuid.UUID(hex=player)
    except ValueError:
        return None
    return {"player_id": player_id, ref[0]: ref[1]}


def resolve_achievement(caller: Caller, data: dict[str, Any]) -> Achievement:
    if "achievement_id" in data:
        return selectors.get_achievement(achievement_id=data["achievement_id"])
    if caller.game_key is None:
        # The body is well formed; who sends it may not use it: a 403, as for an achievement
        # only the game's server may unlock.
        raise Forbidden(
            "Only a game API key may name an achievement by api_name; send achievement_id.",
            fields={"achievement": ["Use achievement_id with a player token."]},
        )
    return selectors.get_achievement(api_name=data["achievement"], game=caller.game)


RANK_UNAVAILABLE_HELP = (
    "Only when true: the unlock is recorded, but its rank could not be read right after "
    "(new_rank is then null); read it later from the game's leaderboard."
)


class UnlockOutputSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    achievement = AchievementOutputSerializer()
    new_rank = serializers.IntegerField(
        allow_null=True, help_text="The player's rank on the game's board; null when not ranked there."
    )
    already_unlocked = serializers.BooleanField()
    unlocked_at = serializers.DateTimeField()
    rank_unavailable = serializers.BooleanField(required=False, help_text=RANK_UNAVAILABLE_HELP)


class UnlockApi(APIView):
    permission_classes = [CallerRequired]

    @extend_schema(
        request=UnlockInput,
        responses={201: UnlockOutputSerializer, 200: UnlockOutputSerializer},
        summary="Unlock an achievement (idempotent)",
        operation_id="unlock_achievement",
        description="201 when newly unlocked; 200 with already_unlocked=true when it was already.",
        tags=["achievements"],
    )
    def post(self, request: Request) -> Response:
        caller = Caller.of(request)
        require_caller(caller)
        data = plain_unlock(request.data) or parsed_body(UnlockInput, request)
        achievement = resolve_achievement(caller, data)
        check_may_report(caller, data["player_id"], achievement.game_id, achievement.client_unlockable)
        [outcome] = services.unlock_achievements(
            [services.UnlockRequest(data["player_id"], achievement, data.get("timestamp"))],
            source=caller.source,
            game_key=caller.game_key,
            rank=True,
        )
        if outcome is None:
            raise NotFound(f"Unknown player '{data['player_id']}'.")
        body = {
            "success": True,
            "achievement": achievement_data(achievement),
            "new_rank": outcome.new_rank,
            "already_unlocked": not outcome.created,
            "unlocked_at": outcome.unlocked_at.isoformat(),
        }
        if outcome.rank_unavailable:
            body["rank_unavailable"] = True
        return Response(body, status=status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK)


@extend_schema_field(UnlockInput)
class UnlockItemField(serializers.JSONField):
    """A batch item: shaped like a single unlock, but validated on its own, so that a bad
    item fails alone (its result says why) instead of failing the batch."""

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        # A null item is a bad item like a string or a number: the view judges it alone.
        # (Not `allow_null`, which would tell the schema that null is a valid item.)
        if data is None:
            return True, None
        return super().validate_empty_values(data)


class ItemErrorSerializer(serializers.Serializer):
    """A failed batch item's error: the one error shape's inner object, less the status
    (the item's own `status` carries it)."""

    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Each invalid field of the item (or `non_field_errors`) and what is wrong with it.",
    )


class BatchResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.IntegerField()
    player_id = serializers.CharField(allow_null=True)
    achievement_id = serializers.CharField(allow_null=True)
    already_unlocked = serializers.BooleanField(required=False, help_text="Only on success.")
    unlocked_at = serializers.DateTimeField(required=False, help_text="Only on success.")
    error = ItemErrorSerializer(required=False, help_text="Only on failure: why this item failed.")


class BatchUnlockApi(APIView):
    permission_classes = [CallerRequired]

    class InputSerializer(StrictSerializer):
        # max_length is the schema's maxItems too: a client learns the bound from it.
        unlocks = serializers.ListField(
            child=UnlockItemField(),
            allow_empty=False,
            max_length=settings.BATCH_MAX_ITEMS,
            error_messages={"max_length": f"At most {settings.BATCH_MAX_ITEMS} items per batch."},
        )

    class OutputSerializer(serializers.Serializer):
        results = BatchResultSerializer(many=True)
        created = serializers.IntegerField()
        already_unlocked = serializers.IntegerField()
        failed = serializers.IntegerField()

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer},
        summary="Unlock many achievements at once (offline catch-up)",
        operation_id="unlock_achievements_batch",
        description=(
            "Up to 100 items, each shaped like a single unlock. Each item gets its own result "
            "with the status it would have had alone; bad items do not stop the good ones."
        ),
        tags=["achievements"],
    )
    def post(self, request: Request) -> Response:
        caller = Caller.of(request)
        require_caller(caller)
        items = self._plain_items(request.data)
        if items is None:
            items = parsed_body(self.InputSerializer, request)["unlocks"]

        # One serializer validates every item that is not plain (a new one per item would
        # copy its fields each time).
        one = UnlockInput()
        parsed: list[dict[str, Any] | DomainError] = []
        for item in items:
            plain = plain_unlock(item)
            if plain is not None:
                parsed.append(plain)
                continue
            try:
                parsed.append(one.run_validation(item))
            except serializers.ValidationError as error:
                # By field, as for a whole body; a null item's error names no field.
                parsed.append(Invalid("Invalid item.", fields=serializers.as_serializer_error(error)))
        valid = [p for p in parsed if isinstance(p, dict)]
        refs = [p.get("achievement_id") or p.get("achievement") for p in valid]
        achievements = selectors.achievements_by_ref(refs, game=caller.game)

        requests: list[tuple[int, services.UnlockRequest]] = []
        results: list[dict[str, Any]] = [{} for _ in items]
        for index, entry in enumerate(parsed):
            try:
                if isinstance(entry, DomainError):
                    raise entry
                requests.append((index, self._request_for(caller, entry, achievements)))
            except DomainError as error:
                results[index] = _item_error(index, items[index], error)

        outcomes = services.unlock_achievements(
            [r for _, r in requests], source=caller.source, game_key=caller.game_key
        )
        created = already = 0
        for (index, request_), outcome in zip(requests, outcomes, strict=True):
            if outcome is None:
                results[index] = _item_error(index, items[index], NotFound(f"Unknown player '{request_.player_id}'."))
                continue
            created += outcome.created
            already += not outcome.created
            results[index] = {
                "index": index,
                "status": 201 if outcome.created else 200,
                "player_id": str(outcome.player_id),
                "achievement_id": str(outcome.achievement.pk),
                "already_unlocked": not outcome.created,
                "unlocked_at": outcome.unlocked_at.isoformat(),
            }
        return Response(
            {
                "results": results,
                "created": created,
                "already_unlocked": already,
                "failed": len(items) - created - already,
            }
        )

    @staticmethod
    def _plain_items(data: Any) -> list[Any] | None:
        """The items of a body that is exactly ``{"unlocks": [1 to BATCH_MAX_ITEMS items]}``,
        as `InputSerializer` gives them (each item is parsed JSON, null included, so its
        JSONField takes it as is); None for anything else, which the serializer then judges."""
        if type(data) is not dict or data.keys() != {"unlocks"}:
            return None
        items = data["unlocks"]
        if type(items) is not list or not 0 < len(items) <= settings.BATCH_MAX_ITEMS:
            return None
        return items

    @staticmethod
    def _request_for(
        caller: Caller, entry: dict[str, Any], achievements: dict[Any, Achievement]
    ) -> services.UnlockRequest:
        if "achievement" in entry and caller.game_key is None:
            raise Forbidden("Only a game API key may name an achievement by api_name; send achievement_id.")
        ref = entry.get("achievement_id") or entry.get("achievement")
        achievement = achievements.get(ref)
        if achievement is None:
            raise NotFound(f"Unknown achievement '{ref}'.")
        check_may_report(caller, entry["player_id"], achievement.game_id, achievement.client_unlockable)
        return services.UnlockRequest(entry["player_id"], achievement, entry.get("timestamp"))


def _item_error(index: int, item: Any, error: DomainError) -> dict[str, Any]:
    item = item if isinstance(item, dict) else {}
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.fields:
        body["fields"] = error.fields
    return {
        "index": index,
        "status": error.status,
        "player_id": _as_str(item.get("player_id")),
        "achievement_id": _as_str(item.get("achievement_id") or item.get("achievement")),
        "error": body,
    }


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class ProgressApi(APIView):
    permission_classes = [CallerRequired]

    class InputSerializer(AchievementRefInput):
        value = serializers.IntegerField(min_value=0, max_value=MAX_PROGRESS)

    class OutputSerializer(serializers.Serializer):
        success = serializers.BooleanField()
        achievement = AchievementOutputSerializer()
        value = serializers.IntegerField()
        target = serializers.IntegerField()
        unlocked = serializers.BooleanField()
        newly_unlocked = serializers.BooleanField()
        new_rank = serializers.IntegerField(allow_null=True)
        rank_unavailable = serializers.BooleanField(required=False, help_text=RANK_UNAVAILABLE_HELP)

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer},
        summary="Report progress toward an incremental achievement",
        operation_id="report_progress",
        description=(
            "`value` is the absolute progress. Progress never goes backwards: a lower value "
            "than the stored one is ignored. Reaching `progress_target` unlocks the achievement."
        ),
        tags=["achievements"],
    )
    def post(self, request: Request) -> Response:
        caller = Caller.of(request)
        require_caller(caller)
        data = parsed_body(self.InputSerializer, request)
        achievement = resolve_achievement(caller, data)
        player = get_player(data["player_id"])
        check_may_report(caller, player.pk, achievement.game_id, achievement.client_unlockable)
        outcome = services.record_progress(
            player=player,
            achievement=achievement,
            value=data["value"],
            source=caller.source,
            game_key=caller.game_key,
            rank=True,
        )
        unlock = outcome.unlock
        # The reporter is the player or their game's server; a player learns what a hidden
        # achievement is once they hold it, not while they work toward it.
        reveal = selectors.reveal_for(caller, [achievement], unlocked=[achievement.pk] if outcome.unlocked else [])
        body = {
            "success": True,
            "achievement": reveal.data(achievement),
            "value": outcome.value,
            "target": outcome.target,
            "unlocked": outcome.unlocked,
            "newly_unlocked": bool(unlock and unlock.created),
            "new_rank": outcome.new_rank,
        }
        if outcome.rank_unavailable:
            body["rank_unavailable"] = True
        return Response(body)


class UnlockedAchievementSerializer(AchievementOutputSerializer):
    unlocked_at = serializers.DateTimeField()


class PlayerAchievementsApi(APIView):
    class InputSerializer(PageInput):
        game = GameRefField(required=False, help_text="Only this game (its id or slug).")

    class OutputSerializer(serializers.Serializer):
        achievements = UnlockedAchievementSerializer(many=True)
        total = serializers.IntegerField()
        limit = serializers.IntegerField()
        offset = serializers.IntegerField()

    @extend_schema(
        parameters=[InputSerializer],
        responses={200: OutputSerializer},
        summary="A player's unlocked achievements, newest first",
        operation_id="list_player_achievements",
        description=(
            "A hidden achievement is masked unless you unlocked it yourself or call with its "
            "game's API key: the player's own list shows it in full."
        ),
        tags=["players"],
    )
    def get(self, request: Request, player_id: uuid.UUID) -> Response:
        caller = Caller.of(request)
        player, seen = viewed_player(caller, player_id)
        query = parsed_query(self.InputSerializer, request)
        game = game_in_view(caller, seen, get_game(query["game"]) if "game" in query else None)
        unlocks = selectors.player_unlocks(player, game=game)
        limit, offset = query["limit"], query["offset"]
        page = list(unlocks[offset : offset + limit])
        reveal = selectors.reveal_unlocks(caller, player, page)
        return Response(
            {
                "achievements": [
                    {**reveal.data(u.achievement), "unlocked_at": u.unlocked_at.isoformat()} for u in page
                ],
                "total": unlocks.count(),
                "limit": limit,
                "offset": offset,
            }
        )


class ManifestInput(StrictSerializer):
    class AchievementInput(StrictSerializer):
        api_name = serializers.RegexField(r"^[A-Za-z0-9_.:-]{1,64}$", max_length=64)
        name = serializers.CharField(max_length=120)
        description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
        points = serializers.IntegerField(min_value=0, max_value=Achievement.MAX_POINTS)
        hidden = serializers.BooleanField(required=False)
        client_unlockable = serializers.BooleanField(required=False)
        # Progress reports go up to MAX_PROGRESS; a target beyond it could never be reached
        # (and beyond PostgreSQL's integer, could not be stored).
        progress_target = serializers.IntegerField(min_value=1, max_value=MAX_PROGRESS, required=False, allow_null=True)
        type = serializers.ChoiceField(
            choices=AchievementType.choices,
            required=False,
            allow_null=True,
            help_text=TYPE_HELP + " Left out: a new achievement has none, an existing one keeps its type.",
        )

    slug = serializers.SlugField(
        max_length=64,
        help_text="This game's own slug (the game in the path). Any other, another game's included, is refused (400).",
    )
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    achievements = AchievementInput(many=True, max_length=1000)

    def validate_achievements(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        names = [item["api_name"] for item in value]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise serializers.ValidationError(f"Duplicate api_name: {', '.join(duplicates)}.")
        return value


class GameAchievementSerializer(AchievementOutputSerializer):
    unlocked = serializers.BooleanField()
    unlocked_at = serializers.DateTimeField(allow_null=True)
    progress = serializers.IntegerField(allow_null=True)


class AchievementSetGameSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    slug = serializers.SlugField()
    name = serializers.CharField()


class AwardSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Award.Kind.choices)
    game = AchievementSetGameSerializer()
    awarded_at = serializers.DateTimeField(help_text="When the unlock that completed it was recorded.")


class PlayerAwardsApi(APIView):
    class InputSerializer(StrictSerializer):
        game = GameRefField(required=False, help_text="Only this game (its id or slug).")

    class OutputSerializer(serializers.Serializer):
        results = AwardSerializer(many=True)

    @extend_schema(
        parameters=[InputSerializer],
        responses={200: OutputSerializer},
        summary="The games a player has beaten and mastered, newest first",
        operation_id="list_player_awards",
        description=(
            "Beaten: every progression achievement and, when the game has any, a win condition held. "
            "Mastered: every achievement of the set held (kept when the set grows later). Privacy as for "
            "the player's statistics; a game key sees a non-public player's awards in its own game only."
        ),
        tags=["players"],
    )
    def get(self, request: Request, player_id: uuid.UUID) -> Response:
        caller = Caller.of(request)
        player, seen = viewed_player(caller, player_id)
        query = parsed_query(self.InputSerializer, request)
        game = game_in_view(caller, seen, get_game(query["game"]) if "game" in query else None)
        return Response({"results": [selectors.award_data(a) for a in selectors.player_awards(player, game=game)]})


class GameAchievementsApi(APIView):
    permission_classes = [GameKeyRequiredToWrite]

    class OutputSerializer(serializers.Serializer):
        game = AchievementSetGameSerializer()
        achievements = GameAchievementSerializer(many=True)

    @extend_schema(
        responses={200: OutputSerializer},
        summary="A game's achievement set with global unlock % and rarity",
        operation_id="list_game_achievements",
        description=(
            "A hidden achievement's name, description, icon and api_name are shown only to a "
            "player who has unlocked it and to the game's own API key; others see it masked."
        ),
        tags=["games"],
    )
    def get(self, request: Request, game_id: str) -> Response:
        caller = Caller.of(request)
        game = get_game(game_id)
        rows = selectors.game_achievements_for(game, caller.player)
        reveal = selectors.reveal_for(
            caller,
            [row["achievement"] for row in rows],
            unlocked=[row["achievement"].pk for row in rows if row["unlocked_at"] is not None],
        )
        return Response(
            {
                "game": {"id": str(game.pk), "slug": game.slug, "name": game.name},
                "achievements": [
                    {
                        **reveal.data(row["achievement"]),
                        "unlocked": row["unlocked_at"] is not None,
                        "unlocked_at": row["unlocked_at"].isoformat() if row["unlocked_at"] else None,
                        "progress": row["progress"],
                    }
                    for row in rows
                ],
            }
        )

    class ManifestOutput(serializers.Serializer):
        game_id = serializers.UUIDField()
        slug = serializers.SlugField()
        created = serializers.IntegerField()
        updated = serializers.IntegerField()
        achievement_count = serializers.IntegerField()

    @extend_schema(
        request=ManifestInput,
        responses={
            200: ManifestOutput,
            400: OpenApiResponse(
                description="Invalid manifest (`fields` names each invalid field), or a `slug` that is not "
                "this game's own."
            ),
            409: OpenApiResponse(description="The points of an achievement players have unlocked cannot change."),
        },
        summary="Replace-or-update the game's achievement set from a manifest",
        operation_id="import_game_manifest",
        description=(
            "Idempotent: achievements are matched by api_name and updated; none are duplicated "
            "or deleted. Only this game's API key may call it. The slug must be the game's own."
        ),
        tags=["games"],
    )
    def put(self, request: Request, game_id: str) -> Response:
        caller = Caller.of(request)
        game = get_game(game_id)
        check_may_manage_game(caller, game)
        data = parsed_body(ManifestInput, request)
        if data["slug"] != game.slug:
            raise Invalid("The manifest's slug is not this game's.", fields={"slug": [f"Expected '{game.slug}'."]})
        result = services.import_manifest(manifest=data)
        return Response(manifest_result(result))


def manifest_result(result: services.ImportResult) -> dict[str, Any]:
    return {
        "game_id": str(result.game.pk),
        "slug": result.game.slug,
        "created": result.created,
        "updated": result.updated,
        "achievement_count": result.game.achievement_count,
    }
