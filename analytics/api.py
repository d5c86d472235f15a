"""A game's analytics over the API: the report as JSON, or one of its tables as CSV."""

from __future__ import annotations

from datetime import date
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from achievements.models import Rarity
from analytics import selectors, tables
from infra.tokens import PlayerJWTAuthentication
from tracker.auth import Caller, GameKeyAuthentication, check_may_view_analytics, require_caller
from tracker.permissions import CallerRequired
from tracker.selectors import get_game
from tracker.serializers import BoundedDateField, ErrorOutputSerializer, StrictSerializer, parsed_query


class RangeQuery(StrictSerializer):
    """The date range of a report, for the API and the pages alike."""

    start = BoundedDateField(
        required=False,
        help_text=f"First UTC day (YYYY-MM-DD). Default: {selectors.DEFAULT_RANGE_DAYS - 1} days before `end`. "
        f"Not after `end`, and at most {selectors.MAX_RANGE_DAYS} days through it (400 otherwise).",
    )
    end = BoundedDateField(required=False, help_text="Last UTC day, included. Default: today (UTC).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["start"], attrs["end"] = selectors.default_range(start=attrs.get("start"), end=attrs.get("end"))
        start: date = attrs["start"]
        end: date = attrs["end"]
        if start > end:
            raise serializers.ValidationError({"start": ["Must not be after end."]})
        if (end - start).days + 1 > selectors.MAX_RANGE_DAYS:
            raise serializers.ValidationError({"start": [f"A range covers at most {selectors.MAX_RANGE_DAYS} days."]})
        return attrs


class CsvRenderer(BaseRenderer):
    """One table of a report (analytics.tables.Table) as CSV."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        assert isinstance(data, tables.Table), "anything else is JSON (GameAnalyticsApi.finalize_response)"
        return tables.csv_text(data).encode("utf-8")


# --- Output ---------------------------------------------------------------------------------


class GameRefSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="pk")
    slug = serializers.CharField()
    name = serializers.CharField()


class SummarySerializer(serializers.Serializer):
    players = serializers.IntegerField(help_text="Everyone ever active in the game, as of `end`.")
    new_players = serializers.IntegerField(help_text="Players whose first active day lies in the range.")
    average_daily_active = serializers.FloatField(help_text="Mean DAU over the range's days.")
    monthly_active_players = serializers.IntegerField(help_text="MAU on `end`.")
    unlocks = serializers.IntegerField()
    playtime_seconds = serializers.IntegerField()


class DaySerializer(serializers.Serializer):
    date = serializers.DateField()
    active_players = serializers.IntegerField(help_text="DAU: players with a play session or an unlock that day.")
    weekly_active_players = serializers.IntegerField(help_text="WAU: active in the 7 days ending that day.")
    monthly_active_players = serializers.IntegerField(help_text="MAU: active in the 30 days ending that day.")
    stickiness = serializers.FloatField(allow_null=True, help_text="DAU / MAU in percent; null without MAU.")
    new_players = serializers.IntegerField(help_text="Active that day for the first time.")
    returning_players = serializers.IntegerField(help_text="Active that day, and on an earlier day.")
    unlocks = serializers.IntegerField()
    playtime_seconds = serializers.IntegerField(help_text="The part of play sessions on that day.")


class CohortSerializer(serializers.Serializer):
    date = serializers.DateField(help_text="The cohort's first active day.")
    size = serializers.IntegerField()
    day1 = serializers.IntegerField(allow_null=True, help_text="Active again 1 day after; null until observable.")
    day7 = serializers.IntegerField(allow_null=True)
    day30 = serializers.IntegerField(allow_null=True)
    day1_percent = serializers.FloatField(allow_null=True)
    day7_percent = serializers.FloatField(allow_null=True)
    day30_percent = serializers.FloatField(allow_null=True)


class AchievementStatsSerializer(serializers.Serializer):
    achievement_id = serializers.UUIDField()
    api_name = serializers.CharField()
    name = serializers.CharField()
    hidden = serializers.BooleanField()
    points = serializers.IntegerField()
    unlocks = serializers.IntegerField(help_text="Unlocks during the range.")
    holders = serializers.IntegerField(help_text="Players holding it at the end of `end`.")
    unlock_percent = serializers.FloatField(help_text="Global unlock percentage at the end of `end`.")
    rarity = serializers.ChoiceField(
        choices=Rarity.choices, help_text="The rarity tier of `unlock_percent` (docs/rarity.md)."
    )
    start_percent = serializers.FloatField(help_text="The percentage when the range began (end of the day before).")
    drift = serializers.FloatField(help_text="unlock_percent - start_percent, in percentage points.")
    series = serializers.ListField(
        child=serializers.FloatField(), help_text="The percentage at the end of each day of the range."
    )


class BucketSerializer(serializers.Serializer):
    upto_seconds = serializers.IntegerField(allow_null=True, help_text="Upper bound; null for the open last bucket.")
    count = serializers.IntegerField()


class TimeToUnlockSerializer(serializers.Serializer):
    achievement_id = serializers.UUIDField()
    api_name = serializers.CharField()
    name = serializers.CharField()
    samples = serializers.IntegerField()
    p10_seconds = serializers.IntegerField(allow_null=True)
    median_seconds = serializers.IntegerField(allow_null=True)
    p90_seconds = serializers.IntegerField(allow_null=True)
    histogram = BucketSerializer(many=True)


class FunnelStepSerializer(serializers.Serializer):
    achievement_id = serializers.UUIDField(allow_null=True, help_text="Null: the players holding no achievement.")
    api_name = serializers.CharField(allow_blank=True)
    name = serializers.CharField()
    reached = serializers.IntegerField()
    reached_percent = serializers.FloatField(allow_null=True)
    stopped_here = serializers.IntegerField()
    stopped_percent = serializers.FloatField(allow_null=True)


class FunnelSerializer(serializers.Serializer):
    players = serializers.IntegerField()
    steps = FunnelStepSerializer(many=True)


class CompletionBucketSerializer(serializers.Serializer):
    from_percent = serializers.FloatField()
    to_percent = serializers.FloatField()
    players = serializers.IntegerField()
    share_percent = serializers.FloatField(allow_null=True)


class PlaytimeBucketSerializer(serializers.Serializer):
    upto_seconds = serializers.IntegerField(allow_null=True, help_text="Upper bound; null for the open last bucket.")
    players = serializers.IntegerField()
    share_percent = serializers.FloatField(allow_null=True)


class ReportSerializer(serializers.Serializer):
    game = GameRefSerializer()
    start = serializers.DateField()
    end = serializers.DateField()
    as_of = serializers.DateField(
        allow_null=True, help_text="The last UTC day aggregated; distributions are as of this day."
    )
    summary = SummarySerializer()
    days = DaySerializer(many=True)
    cohorts = CohortSerializer(many=True, help_text="Cohorts whose first day lies in the range.")
    achievements = AchievementStatsSerializer(many=True)
    time_to_unlock = TimeToUnlockSerializer(many=True)
    funnel = FunnelSerializer()
    completion = CompletionBucketSerializer(many=True)
    playtime = PlaytimeBucketSerializer(many=True)


def report_data(report: selectors.Report) -> dict[str, Any]:
    """The report as the API answers it (and the page hands to its charts)."""
    return ReportSerializer(report).data


# --- The endpoint -------------------------------------------------------------------------


ERROR = OpenApiResponse(ErrorOutputSerializer)
# The answer's formats, and the report's tables one may export as CSV.
FORMATS = ["json", "csv"]
TABLE_NAMES = list(tables.TABLES)


class GameAnalyticsApi(APIView):
    # A signed-in developer may also follow the page's link to the JSON with their session.
    authentication_classes = [GameKeyAuthentication, PlayerJWTAuthentication, SessionAuthentication]
    permission_classes = [CallerRequired]
    renderer_classes = [JSONRenderer, CsvRenderer]

    class Query(RangeQuery):
        format = serializers.ChoiceField(
            choices=FORMATS,
            required=False,
            help_text="csv: one table, named by `table` (required then; 400 without). Default: json.",
        )
        table = serializers.ChoiceField(
            choices=TABLE_NAMES,
            required=False,
            help_text="The table to export: only with format=csv (400 without it).",
        )

    @extend_schema(
        parameters=[Query],
        responses={
            (200, "application/json"): ReportSerializer,
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="One table (`table`), with a header row; the same numbers as the JSON and the page.",
                examples=[
                    OpenApiExample(
                        "daily",
                        value="date,active_players,weekly_active_players,monthly_active_players,"
                        "stickiness_percent,new_players,returning_players,unlocks,playtime_seconds\r\n"
                        "2026-11-30,12,40,95,12.63,3,9,17,25200\r\n",
                    )
                ],
            ),
            (400, "application/json"): OpenApiResponse(
                ErrorOutputSerializer,
                description="Invalid query (`fields` names the parameter): `table` without format=csv, format=csv "
                f"without `table`, `start` after `end`, or a range of more than {selectors.MAX_RANGE_DAYS} days.",
            ),
            (401, "application/json"): ERROR,
            (403, "application/json"): ERROR,
            (404, "application/json"): ERROR,
            (429, "application/json"): ERROR,
        },
        summary="A game's analytics over a date range",
        operation_id="get_game_analytics",
        description=(
            "Players (DAU/WAU/MAU, stickiness, new and returning), retention by cohort, unlocks per day, "
            "per-achievement unlock percentage, rarity and drift, time to unlock, the progression funnel, "
            "completion and playtime distributions: from the daily aggregates (docs/analytics.md). For the "
            "game's studio members (player token or session) and the game's own API key; anyone else gets 403. "
            "`format=csv&table=...` exports one table as CSV. Errors are always JSON."
        ),
        tags=["analytics"],
    )
    def get(self, request: Request, game_id: str) -> Response:
        caller = Caller.of(request)
        require_caller(caller)
        game = get_game(game_id)
        check_may_view_analytics(caller, game)
        query = parsed_query(self.Query, request)
        as_csv = request.accepted_renderer.format == "csv"
        if as_csv != ("table" in query):
            message = "Required with format=csv." if as_csv else "Only with format=csv."
            raise ValidationError({"table": [message]})
        report = selectors.game_report(game, start=query["start"], end=query["end"])
        if as_csv:
            filename = tables.csv_filename(report, query["table"])
            return Response(
                tables.table(report, query["table"]),
                headers={"Content-Disposition": f'attachment; filename="{filename}"'},
            )
        return Response(report_data(report))

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        if not force and request.query_params.get("format") not in (None, "json", "csv"):
            # DRF would answer 404 for a format it has no renderer for: it is bad input.
            raise ValidationError({"format": ["Must be json or csv."]})
        return super().perform_content_negotiation(request, force)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        # Only a table is CSV: errors (in the one error shape, infra/errors.py) and
        # anything else are JSON, whatever was asked for.
        if isinstance(response, Response) and not isinstance(response.data, tables.Table):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
