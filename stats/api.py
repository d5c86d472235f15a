"""Play sessions: game servers and clients report playtime."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from infra.errors import Invalid
from stats.services import MAX_SESSION, record_play_session
from tracker.auth import Caller, check_may_report_play
from tracker.models import Source
from tracker.permissions import CallerRequired
from tracker.selectors import get_game, get_player
from tracker.serializers import BoundedDateTimeField, GameRefField, StrictSerializer, parsed_body


class SessionInput(StrictSerializer):
    player_id = serializers.UUIDField()
    game_id = GameRefField(required=False, help_text="The game's id or slug; optional with a game key (its game).")
    session_id = serializers.RegexField(r"^[A-Za-z0-9_.:-]{1,64}$", max_length=64)
    started_at = BoundedDateTimeField(
        required=False, help_text="Not in the future, nor before the game existed (was registered here)."
    )
    ended_at = BoundedDateTimeField(
        required=False,
        help_text="After `started_at` (400 if equal or earlier), at most 24 hours after; not in the future.",
    )
    duration_seconds = serializers.IntegerField(required=False, min_value=1, max_value=int(MAX_SESSION.total_seconds()))

    # Both ends, or the duration with one end or none (it then ends now): never all three.
    shapes = {
        "WithEnds": ("started_at", "ended_at"),
        "FromStart": ("started_at", "duration_seconds"),
        "ToEnd": ("ended_at", "duration_seconds"),
        "EndingNow": ("duration_seconds",),
    }
    shape_error = ("duration_seconds", "Give two of started_at, ended_at and duration_seconds (or a duration alone).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        now = timezone.now()
        latest = now + settings.UNLOCK_MAX_CLOCK_SKEW
        for name in ("started_at", "ended_at"):
            if name in attrs and attrs[name] > latest:
                raise serializers.ValidationError({name: ["Is in the future."]})
        attrs = super().validate(attrs)
        if "duration_seconds" in attrs:
            length = timedelta(seconds=attrs["duration_seconds"])
            if "started_at" in attrs:
                attrs["ended_at"] = attrs["started_at"] + length
            else:
                attrs["ended_at"] = attrs.get("ended_at", now)
                attrs["started_at"] = attrs["ended_at"] - length
            if attrs["ended_at"] > latest:
                raise serializers.ValidationError({"ended_at": ["Is in the future."]})
        if attrs["ended_at"] <= attrs["started_at"]:
            raise serializers.ValidationError({"ended_at": ["Must be after started_at."]})
        return attrs


class SessionOutput(serializers.Serializer):
    session_id = serializers.CharField()
    player_id = serializers.UUIDField()
    game_id = serializers.UUIDField()
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField()
    duration_seconds = serializers.IntegerField()
    source = serializers.ChoiceField(choices=Source.choices, help_text="Who reported it first.")
    already_recorded = serializers.BooleanField()


class PlaySessionApi(APIView):
    permission_classes = [CallerRequired]

    @extend_schema(
        request=SessionInput,
        responses={
            201: SessionOutput,
            200: SessionOutput,
            400: OpenApiResponse(
                description="Invalid input (`fields` names each invalid field): a session whose `ended_at` is not "
                "after its `started_at`, longer than 24 hours, ending in the future, or starting before its game "
                "existed."
            ),
            409: OpenApiResponse(description="The session overlaps another of the player's in this game."),
        },
        summary="Report a play session (idempotent by session_id)",
        operation_id="report_play_session",
        description=(
            "201 when recorded; 200 with already_recorded=true when this player already reported that "
            "session_id for the game. Sessions longer than 24 hours, ending at or before their start, in "
            "the future, or starting before the game existed are rejected (400); a session overlapping another "
            "of the player's in this game, 409."
        ),
        tags=["sessions"],
    )
    def post(self, request: Request) -> Response:
        caller = Caller.of(request)
        values = parsed_body(SessionInput, request)
        game = get_game(values["game_id"]) if "game_id" in values else caller.game
        if game is None:
            raise serializers.ValidationError({"game_id": ["Required with a player token."]})
        player = get_player(values["player_id"])
        check_may_report_play(caller, player, game)
        if values["started_at"] < game.created:
            # Reported sessions only: the demo's history is written by the service directly.
            raise Invalid(
                "A session cannot start before its game existed.",
                fields={"started_at": [f"Before the game was created ({game.created.isoformat()})."]},
            )
        outcome = record_play_session(
            player=player,
            game=game,
            session_id=values["session_id"],
            started_at=values["started_at"],
            ended_at=values["ended_at"],
            source=caller.source,
        )
        session = outcome.session
        body = {
            "session_id": session.session_id,
            "player_id": str(session.player_id),
            "game_id": str(session.game_id),
            "started_at": session.started_at.isoformat(),
            "ended_at": session.ended_at.isoformat(),
            "duration_seconds": session.duration_seconds,
            "source": session.source,
            "already_recorded": not outcome.created,
        }
        return Response(body, status=status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK)
