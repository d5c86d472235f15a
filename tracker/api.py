"""Core endpoints: player registration and the list of games."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tracker.models import Game
from tracker.regions import Region
from tracker.serializers import StrictSerializer, parsed_body
from tracker.services import player_register


class PlayerRegisterApi(APIView):
    authentication_classes: list = []

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
        responses={201: OutputSerializer},
        summary="Register a player",
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

    @extend_schema(responses={200: OutputSerializer}, summary="List games", tags=["games"])
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer({"games": Game.objects.all()}).data)
