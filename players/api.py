"""A player's statistics, dashboard and history, the friends API and the friends' feed."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from achievements.api import AchievementOutputSerializer
from achievements.models import Award, Unlock
from achievements.selectors import Reveal, reveal_unlocks
from infra.errors import Invalid, NotFound
from infra.tokens import PlayerJWTAuthentication
from players import feed, selectors, services
from stats.selectors import viewed_player
from tracker.auth import Caller, GameKeyAuthentication, game_in_view, require_player
from tracker.models import Friendship, Game, Player, Privacy
from tracker.permissions import PlayerRequired
from tracker.regions import Region
from tracker.selectors import get_game, get_player
from tracker.serializers import BoundedDateField, GameRefField, StrictSerializer, parsed_body, parsed_query


def viewed(request: Request, player_id: uuid.UUID, game_ref: str | None) -> tuple[Player, Game | None]:
    """The player asked about, and the game to limit to, after the privacy check. A game
    key sees a non-public player only within its own game, and only one its game has
    recorded (`stats.selectors.viewed_player`)."""
    caller = Caller.of(request)
    player, seen = viewed_player(caller, player_id)
    return player, game_in_view(caller, seen, get_game(game_ref) if game_ref else None)


class GameQuery(StrictSerializer):
    game = GameRefField(required=False)


def unlock_data(unlock: Unlock, reveal: Reveal) -> dict[str, Any]:
    return {
        **reveal.data(unlock.achievement),
        "game_name": unlock.game.name,
        "unlocked_at": unlock.unlocked_at.isoformat(),
    }


class GameStatisticsSerializer(serializers.Serializer):
    game_id = serializers.UUIDField()
    game_slug = serializers.CharField()
    game_name = serializers.CharField()
    playtime = serializers.FloatField(help_text="Hours.")
    achievements = serializers.IntegerField()
    total_achievements = serializers.IntegerField()
    completion = serializers.FloatField(help_text="Percent of the game's achievements, hidden included.")
    points = serializers.IntegerField()
    weighted_score = serializers.FloatField()
    last_played = serializers.DateTimeField(allow_null=True)


class StatisticsApi(APIView):
    class Output(serializers.Serializer):
        games = GameStatisticsSerializer(many=True)

    @extend_schema(
        parameters=[GameQuery],
        responses={200: Output},
        summary="A player's statistics per game",
        operation_id="get_player_statistics",
        tags=["players"],
    )
    def get(self, request: Request, player_id: uuid.UUID) -> Response:
        query = parsed_query(GameQuery, request)
        player, game = viewed(request, player_id, query.get("game"))
        return Response({"games": selectors.statistics(player, game=game)})


class RecentUnlockSerializer(AchievementOutputSerializer):
    game_name = serializers.CharField()
    unlocked_at = serializers.DateTimeField()


class DashboardApi(APIView):
    class Output(serializers.Serializer):
        total_achievements = serializers.IntegerField()
        total_playtime = serializers.FloatField(help_text="Hours.")
        games_owned = serializers.IntegerField(help_text="Games with any recorded activity.")
        average_completion = serializers.FloatField()
        total_points = serializers.IntegerField()
        weighted_score = serializers.FloatField()
        recent_achievements = RecentUnlockSerializer(many=True)

    @extend_schema(
        responses={200: Output},
        summary="A player's dashboard totals",
        operation_id="get_player_dashboard",
        tags=["players"],
    )
    def get(self, request: Request, player_id: uuid.UUID) -> Response:
        player, game = viewed(request, player_id, None)
        board = selectors.dashboard(player, game=game)
        reveal = reveal_unlocks(Caller.of(request), player, board.recent)
        return Response(
            {
                "total_achievements": board.total_achievements,
                "total_playtime": board.total_playtime,
                "games_owned": board.games_owned,
                "average_completion": board.average_completion,
                "total_points": board.total_points,
                "weighted_score": board.weighted_score,
                "recent_achievements": [unlock_data(u, reveal) for u in board.recent],
            }
        )


class HistoryDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    points = serializers.IntegerField(help_text="Total at the end of the day.")
    achievements = serializers.IntegerField(help_text="Total at the end of the day.")
    playtime = serializers.FloatField(help_text="Hours, total at the end of the day.")
    points_gained = serializers.IntegerField()
    unlocks = serializers.IntegerField(help_text="Achievements unlocked that day.")
    playtime_gained = serializers.FloatField(help_text="Hours.")


class HistoryApi(APIView):
    class Query(GameQuery):
        start = BoundedDateField(
            required=False,
            help_text=f"Default: 29 days before `end`. Not after `end`, and at most {selectors.MAX_HISTORY_DAYS} "
            "days through it, both days included (400 otherwise).",
        )
        end = BoundedDateField(required=False, help_text="Default: today (UTC).")

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            attrs.setdefault("end", timezone.now().date())
            attrs.setdefault("start", attrs["end"] - timedelta(days=29))
            if attrs["start"] > attrs["end"]:
                raise serializers.ValidationError({"start": ["Must not be after end."]})
            if (attrs["end"] - attrs["start"]).days >= selectors.MAX_HISTORY_DAYS:
                raise serializers.ValidationError({"start": [f"At most {selectors.MAX_HISTORY_DAYS} days."]})
            return attrs

    class Output(serializers.Serializer):
        game_id = serializers.UUIDField(allow_null=True)
        days = HistoryDaySerializer(many=True)

    @extend_schema(
        parameters=[Query],
        responses={
            200: Output,
            400: OpenApiResponse(
                description=f"Invalid query (`fields` names the parameter): `start` after `end`, or a range of "
                f"more than {selectors.MAX_HISTORY_DAYS} days."
            ),
        },
        summary="A player's daily points, achievements and playtime over a date range",
        operation_id="get_player_history",
        description="Totals at the end of each UTC day and what the day added, from daily snapshots.",
        tags=["players"],
    )
    def get(self, request: Request, player_id: uuid.UUID) -> Response:
        query = parsed_query(self.Query, request)
        player, game = viewed(request, player_id, query.get("game"))
        days = selectors.history(player, game=game, start=query["start"], end=query["end"])
        return Response({"game_id": str(game.pk) if game else None, "days": days})


class MeApi(APIView):
    """The signed-in player: who they are, and their own settings."""

    permission_classes = [PlayerRequired]

    class Input(StrictSerializer):
        region = serializers.ChoiceField(choices=Region.choices, required=False)
        privacy = serializers.ChoiceField(choices=Privacy.choices, required=False)
        email = serializers.EmailField(max_length=254, required=False, help_text="Write-only: never shown back.")

    class Output(serializers.Serializer):
        id = serializers.UUIDField()
        username = serializers.CharField()
        region = serializers.ChoiceField(choices=Region.choices, allow_blank=True)
        privacy = serializers.ChoiceField(choices=Privacy.choices)

    @extend_schema(responses={200: Output}, summary="Who I am", operation_id="get_me", tags=["players"])
    def get(self, request: Request) -> Response:
        me = require_player(Caller.of(request))
        return Response(self.Output(me).data)

    @extend_schema(
        request=Input,
        responses={200: Output},
        summary="Change my region, privacy or email",
        description="Fields left out keep their value. A new region moves me between regional boards.",
        operation_id="update_me",
        tags=["players"],
    )
    def patch(self, request: Request) -> Response:
        me = require_player(Caller.of(request))
        data = parsed_body(self.Input, request)
        settings = {"region": me.region, "privacy": me.privacy, "email": me.email, **data}
        return Response(self.Output(services.player_update_settings(player=me, **settings)).data)


# --- Friends ------------------------------------------------------------------------------


def friend_data(player: Player) -> dict[str, Any]:
    return {"player_id": str(player.pk), "username": player.username}


def request_data(friendship: Friendship, other: Player) -> dict[str, Any]:
    return {"id": friendship.pk, **friend_data(other), "created": friendship.created.isoformat()}


class FriendSerializer(serializers.Serializer):
    player_id = serializers.UUIDField()
    username = serializers.CharField()


class FriendRequestSerializer(FriendSerializer):
    id = serializers.IntegerField(help_text="The request's id, to accept or decline it.")
    created = serializers.DateTimeField()


class FriendsApi(APIView):
    permission_classes = [PlayerRequired]

    class Output(serializers.Serializer):
        friends = FriendSerializer(many=True)
        incoming = FriendRequestSerializer(many=True, help_text="Requests sent to me.")
        outgoing = FriendRequestSerializer(many=True, help_text="Requests I sent.")

    @extend_schema(
        responses={200: Output},
        summary="My friends and pending requests",
        operation_id="list_friends",
        tags=["friends"],
    )
    def get(self, request: Request) -> Response:
        me = require_player(Caller.of(request))
        incoming, outgoing = selectors.pending_requests(me)
        return Response(
            {
                "friends": [friend_data(p) for p in selectors.friends_of(me)],
                "incoming": [request_data(f, f.requester) for f in incoming],
                "outgoing": [request_data(f, f.addressee) for f in outgoing],
            }
        )


class FriendRequestApi(APIView):
    permission_classes = [PlayerRequired]

    class Input(StrictSerializer):
        shapes = {"ByUsername": ("username",), "ByPlayerId": ("player_id",)}
        shape_error = ("username", "Give exactly one of username or player_id.")

        username = serializers.CharField(required=False, max_length=150)
        player_id = serializers.UUIDField(required=False)

    class Output(serializers.Serializer):
        id = serializers.IntegerField()
        player_id = serializers.UUIDField()
        username = serializers.CharField()
        status = serializers.ChoiceField(choices=Friendship.Status.choices)

    @extend_schema(
        request=Input,
        responses={201: Output, 409: OpenApiResponse(description="Already friends, or a request is pending.")},
        summary="Send a friend request (accepts theirs if they asked first)",
        operation_id="send_friend_request",
        tags=["friends"],
    )
    def post(self, request: Request) -> Response:
        me = require_player(Caller.of(request))
        data = parsed_body(self.Input, request)
        if "player_id" in data:
            other = get_player(data["player_id"])
        else:
            other = Player.objects.filter(username__iexact=data["username"], is_active=True).first()
            if other is None:
                raise NotFound(f"No player named '{data['username']}'.")
        friendship = services.friend_request(sender=me, receiver=other)
        return Response(
            {"id": friendship.pk, **friend_data(other), "status": friendship.status}, status=status.HTTP_201_CREATED
        )


# What the addressee of a friend request may answer.
ANSWERS = ["accept", "decline"]


class FriendRequestAnswerApi(APIView):
    permission_classes = [PlayerRequired]

    @extend_schema(
        request=None,
        responses={
            200: FriendRequestApi.Output,
            204: None,
            400: OpenApiResponse(description="The answer is neither accept nor decline."),
        },
        parameters=[OpenApiParameter("answer", str, OpenApiParameter.PATH, enum=ANSWERS)],
        summary="Accept or decline a friend request sent to me",
        operation_id="answer_friend_request",
        tags=["friends"],
    )
    def post(self, request: Request, request_id: int, answer: str) -> Response:
        me = require_player(Caller.of(request))
        if answer == "decline":
            services.friend_decline(player=me, friendship_id=request_id)
            return Response(status=status.HTTP_204_NO_CONTENT)
        if answer != "accept":
            raise Invalid("Answer with accept or decline.")
        friendship = services.friend_accept(player=me, friendship=request_id)
        return Response({"id": friendship.pk, **friend_data(friendship.requester), "status": friendship.status})


class FriendApi(APIView):
    permission_classes = [PlayerRequired]

    @extend_schema(
        responses={204: None},
        summary="Remove a friend (or withdraw a request)",
        operation_id="remove_friend",
        tags=["friends"],
    )
    def delete(self, request: Request, player_id: uuid.UUID) -> Response:
        me = require_player(Caller.of(request))
        services.friend_remove(player=me, other=get_player(player_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- The friends' feed --------------------------------------------------------------------


class FeedPlayerSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    username = serializers.CharField()


class FeedGameSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    slug = serializers.SlugField()
    name = serializers.CharField()


class FeedSeasonSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


class FeedItemBase(serializers.Serializer):
    """What every item of the feed has: its kind, when it happened, the friend, the game."""

    kind = serializers.ChoiceField(choices=feed.Kind.choices)
    at = serializers.DateTimeField()
    player = FeedPlayerSerializer(help_text="The friend it is about.")
    game = FeedGameSerializer()


class UnlockFeedItemSerializer(FeedItemBase):
    achievement = AchievementOutputSerializer(help_text="Masked when hidden and not unlocked by you.")


class AwardFeedItemSerializer(FeedItemBase):
    award = serializers.ChoiceField(choices=Award.Kind.choices, help_text="The game was beaten or mastered.")


class SeasonFinishFeedItemSerializer(FeedItemBase):
    season = FeedSeasonSerializer()
    rank = serializers.IntegerField(help_text=f"The final rank: at most {feed.TOP_FINISH}.")
    points = serializers.IntegerField(help_text="The friend's final points in the season.")


class PassedFeedItemSerializer(FeedItemBase):
    points = serializers.IntegerField(help_text="The friend's points in the game when they passed you.")
    your_points = serializers.IntegerField(help_text="Your points in the game then.")


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="FeedItem",
        serializers={
            feed.Kind.UNLOCK.value: UnlockFeedItemSerializer,
            feed.Kind.AWARD.value: AwardFeedItemSerializer,
            feed.Kind.SEASON_FINISH.value: SeasonFinishFeedItemSerializer,
            feed.Kind.PASSED.value: PassedFeedItemSerializer,
        },
        resource_type_field_name="kind",
    )
)
class FeedItemField(serializers.DictField):
    """One item: the serializer of its `kind` says its fields (the schema's discriminator)."""


class FeedApi(APIView):
    """The signed-in player's friends' feed (docs/feed.md)."""

    # A signed-in browser reads it with its session too (the dashboard's feed).
    authentication_classes = [GameKeyAuthentication, PlayerJWTAuthentication, SessionAuthentication]
    permission_classes = [PlayerRequired]

    class Query(StrictSerializer):
        limit = serializers.IntegerField(min_value=1, max_value=feed.MAX_LIMIT, default=feed.DEFAULT_LIMIT)
        cursor = serializers.CharField(
            required=False, max_length=500, help_text="`next` of the page before; absent for the first page."
        )

        def validate_cursor(self, value: str) -> feed.Cursor:
            try:
                return feed.Cursor.decode(value)
            except feed.BadCursor as error:
                raise serializers.ValidationError(str(error)) from error

    class Output(serializers.Serializer):
        results = serializers.ListField(child=FeedItemField(), help_text="Newest first.")
        next = serializers.CharField(allow_null=True, help_text="The cursor of the next page; null on the last.")

    @extend_schema(
        parameters=[Query],
        responses={
            200: Output,
            400: OpenApiResponse(description="`limit` outside 1-100, or a `cursor` this feed did not hand out."),
        },
        summary="My friends' activity, newest first",
        description="Unlocks, awards and top-ten season finishes of my friends who share their activity, and the "
        "times a friend passed me on a game's board. Pages follow `next`: items recorded meanwhile never "
        "repeat or hide items of later pages.",
        operation_id="list_feed",
        tags=["friends"],
    )
    def get(self, request: Request) -> Response:
        me = require_player(Caller.of(request))
        query = parsed_query(self.Query, request)
        page = feed.feed_page(me, limit=query["limit"], cursor=query.get("cursor"))
        # The items are built in the shape of their serializers (`players.feed._items`),
        # and answered as they are: running twenty nested serializers cost as much CPU as
        # the rest of the request (docs/feed.md, "Storage"). The generated-client and
        # schema fuzz tests hold the answers to the schema.
        return Response({"results": page.items, "next": page.next})
