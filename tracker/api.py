"""Core endpoints: player registration, logging out, and the list of games."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from infra.errors import Forbidden, Invalid
from infra.ratelimits import SignUpRateThrottle
from tracker.auth import Caller
from tracker.models import Game
from tracker.regions import Region
from tracker.serializers import StrictSerializer, parsed_body
from tracker.services import player_register, player_sessions_end, player_token_end


class PlayerRegisterApi(APIView):
    authentication_classes: list = []
    throttle_classes = [SignUpRateThrottle]

    class InputSerializer(StrictSerializer):
        username = serializers.RegexField(r"^[A-Za-z0-9_.-]{3,30}$", max_length=30)
        email = serializers.EmailField(max_length=254)
        password = serializers.CharField(min_length=8, max_length=128, write_only=True)
        region = serializers.ChoiceField(choices=Region.choices)

    class OutputSerializer(serializers.Serializer):
        id = serializers.UUIDField()
        username = serializers.CharField()
        region = serializers.CharField()

    @extend_schema(
        request=InputSerializer,
        responses={201: OutputSerializer, 409: OpenApiResponse(description="That username is taken.")},
        summary="Register a player",
        operation_id="register_player",
        tags=["players"],
    )
    def post(self, request: Request) -> Response:
        data = parsed_body(self.InputSerializer, request)
        player = player_register(**data)
        return Response(self.OutputSerializer(player).data, status=status.HTTP_201_CREATED)


class GameOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    slug = serializers.SlugField()
    name = serializers.CharField()
    description = serializers.CharField()
    achievement_count = serializers.IntegerField()
    total_points = serializers.IntegerField()


class GameListApi(APIView):
    class OutputSerializer(serializers.Serializer):
        games = GameOutputSerializer(many=True)

    @extend_schema(responses={200: OutputSerializer}, summary="List games", operation_id="list_games", tags=["games"])
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer({"games": Game.objects.all()}).data)


class LogoutApi(APIView):
    """Log one device out by its refresh token (`{"refresh": "..."}`: the token is
    credential enough), or every device signed in with tokens (`{"all": true}`, with the
    player's access token as Bearer; a `refresh` sent beside it is not read, since every
    token ends). Browser sessions are not touched. 204 either way, and again on a retry.
    See docs/api.md, "Logging out"."""

    class InputSerializer(StrictSerializer):
        refresh = serializers.CharField(
            required=False,
            max_length=4096,
            help_text=(
                "The refresh token of the device to log out: one this server issued to the caller (400 otherwise). "
                "Not read with `all: true`, which ends every token, this one included."
            ),
        )
        all = serializers.BooleanField(
            required=False,
            default=False,
            help_text="End every token of the player (needs the player's access token as Bearer).",
        )

    @extend_schema(
        request=InputSerializer,
        responses={
            204: OpenApiResponse(description="Logged out; repeating it is harmless."),
            400: OpenApiResponse(
                description="Neither `refresh` nor `all: true`, or (without `all`) a `refresh` that is not "
                "a refresh token this server issued."
            ),
            401: OpenApiResponse(description="No credentials, or `all` without a current access token."),
            403: OpenApiResponse(description="A game key, or another player's refresh token."),
        },
        summary="Log out one device, or every device",
        operation_id="log_out",
        tags=["auth"],
        auth=[{"jwtAuth": []}, {}],
    )
    def post(self, request: Request) -> Response:
        caller = Caller.of(request)  # a bad or revoked Bearer token is a 401 here
        if caller.game_key is not None:
            raise Forbidden("This endpoint is for players.")
        data = parsed_body(self.InputSerializer, request)
        if data["all"]:
            if caller.player is None:
                raise exceptions.NotAuthenticated("Send the player's access token to log out every device.")
            player_sessions_end(player=caller.player)
        elif data.get("refresh"):
            player_token_end(refresh=data["refresh"], player=caller.player)
        elif caller.player is None:
            raise exceptions.NotAuthenticated("Send the refresh token to end, or the player's access token.")
        else:
            raise Invalid('Send "refresh": the token to end, or "all": true.')
        return Response(status=status.HTTP_204_NO_CONTENT)
