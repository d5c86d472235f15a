"""Board and season endpoints: thin views over leaderboards.selectors."""

from __future__ import annotations

import uuid
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from infra.errors import Conflict, NotFound
from leaderboards import selectors
from leaderboards.boards import Board
from leaderboards.models import Season
from stats.selectors import viewed_player
from tracker.auth import Caller, check_in_view, require_player
from tracker.models import Player
from tracker.permissions import PlayerRequired
from tracker.regions import Region
from tracker.selectors import get_game
from tracker.serializers import GameRefField, StrictSerializer, parsed_query


class BoardQuery(StrictSerializer):
    region = serializers.ChoiceField(choices=Region.choices, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=100, default=100)
    offset = serializers.IntegerField(min_value=0, max_value=10_000_000, default=0)


class StandingQuery(StrictSerializer):
    region = serializers.ChoiceField(choices=Region.choices, required=False)


class AroundQuery(StandingQuery):
    radius = serializers.IntegerField(min_value=1, max_value=50, default=5)


class RankingSerializer(serializers.Serializer):
    player_id = serializers.UUIDField(
        allow_null=True, help_text="Null when the player may not be named to you: the row is anonymous."
    )
    username = serializers.CharField(help_text='"Anonymous player" when the player may not be named to you.')
    points = serializers.IntegerField()
    rank = serializers.IntegerField()


class BoardOutput(serializers.Serializer):
    rankings = RankingSerializer(many=True)
    total = serializers.IntegerField(help_text="Ranked players on this board.")
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    region = serializers.CharField(allow_null=True)


class StandingOutput(serializers.Serializer):
    rank = serializers.IntegerField()
    points = serializers.IntegerField()
    percentile = serializers.FloatField(help_text="Share of ranked players with strictly fewer points.")
    total = serializers.IntegerField()


class AroundOutput(serializers.Serializer):
    rankings = RankingSerializer(many=True)
    total = serializers.IntegerField()


def board_response(caller: Caller, board: Board, query: dict[str, Any], game_id: Any = None) -> Response:
    page = selectors.page(caller, board, offset=query["offset"], limit=query["limit"], game_id=game_id)
    return Response(
        {
            "rankings": page.rankings,
            "total": page.total,
            "limit": query["limit"],
            "offset": query["offset"],
            "region": board.region or None,
        }
    )


def not_ranked(player_id: Any) -> NotFound:
    return NotFound(f"Player '{player_id}' has no points on this board, so is not ranked on it.")


def viewable(caller: Caller, player_id: uuid.UUID, game_id: Any) -> Player:
    """The player asked about, if this caller may see their standing on a board of
    `game_id` (None: the global board). A game key sees a non-public player's standing on
    its own game's boards only, and only one its game has recorded
    (`stats.selectors.viewed_player`)."""
    player, seen = viewed_player(caller, player_id)
    check_in_view(caller, seen, game_id)
    return player


def standing_response(caller: Caller, board: Board, player_id: uuid.UUID, game_id: Any = None) -> Response:
    player = viewable(caller, player_id, game_id)
    found = selectors.standing(board, player.pk)
    if found is None:
        raise not_ranked(player_id)
    return Response({"rank": found.rank, "points": found.points, "percentile": found.percentile, "total": found.total})


def around_response(caller: Caller, board: Board, player_id: uuid.UUID, radius: int, game_id: Any = None) -> Response:
    player = viewable(caller, player_id, game_id)
    page = selectors.around(caller, board, player.pk, radius=radius, game_id=game_id)
    if page is None:
        raise not_ranked(player_id)
    return Response({"rankings": page.rankings, "total": page.total})


TAGS = ["leaderboards"]


class GameBoardApi(APIView):
    @extend_schema(
        parameters=[BoardQuery],
        responses={200: BoardOutput},
        summary="A game's all-time board (top 100 by default), optionally for one region",
        operation_id="list_game_leaderboard",
        tags=TAGS,
    )
    def get(self, request: Request, game_id: str) -> Response:
        game = get_game(game_id)
        query = parsed_query(BoardQuery, request)
        return board_response(Caller.of(request), Board.game(game.pk, query.get("region", "")), query, game.pk)


class GameStandingApi(APIView):
    @extend_schema(
        parameters=[StandingQuery],
        responses={200: StandingOutput},
        summary="A player's rank",
        operation_id="get_game_standing",
        tags=TAGS,
    )
    def get(self, request: Request, game_id: str, player_id: uuid.UUID) -> Response:
        game = get_game(game_id)
        query = parsed_query(StandingQuery, request)
        return standing_response(Caller.of(request), Board.game(game.pk, query.get("region", "")), player_id, game.pk)


class GameAroundApi(APIView):
    @extend_schema(
        parameters=[AroundQuery],
        responses={200: AroundOutput},
        summary="The players just above and below a player",
        operation_id="list_game_around_player",
        tags=TAGS,
    )
    def get(self, request: Request, game_id: str, player_id: uuid.UUID) -> Response:
        game = get_game(game_id)
        query = parsed_query(AroundQuery, request)
        board = Board.game(game.pk, query.get("region", ""))
        return around_response(Caller.of(request), board, player_id, query["radius"], game.pk)


class GameFriendsBoardApi(APIView):
    permission_classes = [PlayerRequired]

    class Output(serializers.Serializer):
        rankings = RankingSerializer(many=True)
        total = serializers.IntegerField()

    @extend_schema(
        parameters=[StandingQuery],
        responses={200: Output},
        summary="A game's board among me and my friends (player token)",
        operation_id="list_game_friends_leaderboard",
        tags=TAGS,
    )
    def get(self, request: Request, game_id: str) -> Response:
        me = require_player(Caller.of(request))
        game = get_game(game_id)
        query = parsed_query(StandingQuery, request)
        page = selectors.friends_page(me, Board.game(game.pk, query.get("region", "")), game.pk)
        return Response({"rankings": page.rankings, "total": page.total})


class GlobalBoardApi(APIView):
    @extend_schema(
        parameters=[BoardQuery],
        responses={200: BoardOutput},
        summary="The cross-game board: total points over every game",
        operation_id="list_global_leaderboard",
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        query = parsed_query(BoardQuery, request)
        return board_response(Caller.of(request), Board.everywhere(query.get("region", "")), query)


class GlobalStandingApi(APIView):
    @extend_schema(
        parameters=[StandingQuery],
        responses={200: StandingOutput},
        summary="A player's global rank",
        operation_id="get_global_standing",
        tags=TAGS,
    )
    def get(self, request: Request, player_id: uuid.UUID) -> Response:
        query = parsed_query(StandingQuery, request)
        return standing_response(Caller.of(request), Board.everywhere(query.get("region", "")), player_id)


class GlobalAroundApi(APIView):
    @extend_schema(
        parameters=[AroundQuery],
        responses={200: AroundOutput},
        summary="Around a player, globally",
        operation_id="list_global_around_player",
        tags=TAGS,
    )
    def get(self, request: Request, player_id: uuid.UUID) -> Response:
        query = parsed_query(AroundQuery, request)
        board = Board.everywhere(query.get("region", ""))
        return around_response(Caller.of(request), board, player_id, query["radius"])


# --- Seasons ------------------------------------------------------------------------------


class SeasonSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    game_id = serializers.UUIDField()
    name = serializers.CharField()
    description = serializers.CharField()
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    region = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=Season.Status.choices)
    closed_at = serializers.DateTimeField(allow_null=True)
    achievement_ids = serializers.ListField(child=serializers.UUIDField(), help_text="Empty: all count.")


def season_data(season: Season, now: Any) -> dict[str, Any]:
    return {
        "id": str(season.pk),
        "game_id": str(season.game_id),
        "name": season.name,
        "description": season.description,
        "starts_at": season.starts_at.isoformat(),
        "ends_at": season.ends_at.isoformat(),
        "region": season.region or None,
        "status": season.status_at(now),
        "closed_at": season.closed_at.isoformat() if season.closed_at else None,
        "achievement_ids": [str(a.pk) for a in season.achievements.all()],
    }


def get_season(season_id: uuid.UUID) -> Season:
    """The season, alone: board reads need none of its achievements (`season_data` loads
    them, at the same one query a prefetch would cost)."""
    season = Season.objects.filter(pk=season_id).first()
    if season is None:
        raise NotFound(f"Unknown season '{season_id}'.")
    return season


class SeasonListApi(APIView):
    class Query(StrictSerializer):
        game = GameRefField(required=False)
        status = serializers.ChoiceField(choices=Season.Status.choices, required=False)

    class Output(serializers.Serializer):
        seasons = SeasonSerializer(many=True)

    @extend_schema(
        parameters=[Query],
        responses={200: Output},
        summary="Seasons and events",
        tags=["seasons"],
        operation_id="list_seasons",
    )
    def get(self, request: Request) -> Response:
        query = parsed_query(self.Query, request)
        seasons = Season.objects.prefetch_related("achievements").order_by("-starts_at")
        if "game" in query:
            seasons = seasons.filter(game=get_game(query["game"]))
        now = timezone.now()
        data = [season_data(s, now) for s in seasons[:500]]
        if "status" in query:
            data = [s for s in data if s["status"] == query["status"]]
        return Response({"seasons": data})


class SeasonDetailApi(APIView):
    @extend_schema(responses={200: SeasonSerializer}, summary="One season", operation_id="get_season", tags=["seasons"])
    def get(self, request: Request, season_id: uuid.UUID) -> Response:
        return Response(season_data(get_season(season_id), timezone.now()))


class SeasonStandingsApi(APIView):
    class Output(BoardOutput):
        status = serializers.ChoiceField(choices=Season.Status.choices)
        final = serializers.BooleanField(help_text="True once closed: archived final standings.")

    @extend_schema(
        parameters=[BoardQuery],
        responses={200: Output},
        summary="Live standings of a running season, or the archived final standings of a closed one",
        operation_id="list_season_standings",
        tags=["seasons"],
    )
    def get(self, request: Request, season_id: uuid.UUID) -> Response:
        season = get_season(season_id)
        query = parsed_query(BoardQuery, request)
        caller = Caller.of(request)
        region = query.get("region", "")
        if season.closed_at is not None:
            page = selectors.archived_page(caller, season, region=region, offset=query["offset"], limit=query["limit"])
        else:
            page = selectors.page(
                caller,
                Board.of_season(season, region),
                offset=query["offset"],
                limit=query["limit"],
                game_id=season.game_id,
            )
        return Response(
            {
                "rankings": page.rankings,
                "total": page.total,
                "limit": query["limit"],
                "offset": query["offset"],
                "region": region or None,
                "status": season.status,
                "final": season.closed_at is not None,
            }
        )


class SeasonStandingApi(APIView):
    @extend_schema(
        parameters=[StandingQuery],
        responses={200: StandingOutput},
        summary="A player's place in a season",
        operation_id="get_season_standing",
        tags=["seasons"],
    )
    def get(self, request: Request, season_id: uuid.UUID, player_id: uuid.UUID) -> Response:
        season = get_season(season_id)
        query = parsed_query(StandingQuery, request)
        if season.closed_at is None:
            board = Board.of_season(season, query.get("region", ""))
            return standing_response(Caller.of(request), board, player_id, season.game_id)
        player = viewable(Caller.of(request), player_id, season.game_id)
        found = selectors.archived_standing(season, player.pk, query.get("region", ""))
        if found is None:
            raise not_ranked(player_id)
        return Response(
            {"rank": found.rank, "points": found.points, "percentile": found.percentile, "total": found.total}
        )


class SeasonAroundApi(APIView):
    @extend_schema(
        parameters=[AroundQuery],
        responses={200: AroundOutput, 409: OpenApiResponse(description="The season is closed.")},
        summary="Around a player in a season",
        operation_id="list_season_around_player",
        tags=["seasons"],
    )
    def get(self, request: Request, season_id: uuid.UUID, player_id: uuid.UUID) -> Response:
        season = get_season(season_id)
        if season.closed_at is not None:
            raise Conflict("This season is closed; read its final standings instead.")
        query = parsed_query(AroundQuery, request)
        board = Board.of_season(season, query.get("region", ""))
        return around_response(Caller.of(request), board, player_id, query["radius"], season.game_id)
