"""The studio's pages: its games, each game's analytics with charts, and CSV exports.

The same report, rule and range validation as the API (analytics/api.py): a page, its CSV
links and the JSON endpoint always show the same numbers to the same people.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from rest_framework.exceptions import ValidationError

from analytics import selectors, tables
from analytics.api import RangeQuery, report_data
from infra.errors import Forbidden
from tracker.auth import Caller, check_may_view_analytics, studio_games
from tracker.models import Game
from tracker.serializers import validated

# The range presets offered above the charts, in days ending today.
PRESETS = (7, 30, 90, 365)


@login_required
def studio(request: HttpRequest) -> HttpResponse:
    return render(request, "analytics/studio.html", {"games": studio_games(request.user).order_by("name")})


def _member_game(request: HttpRequest, slug: str) -> Game:
    game = get_object_or_404(Game, slug=slug)
    check_may_view_analytics(Caller(player=request.user), game)
    return game


def _range(request: HttpRequest) -> dict[str, Any]:
    """The validated range of the query string; a cleared date input means its default."""
    return validated(RangeQuery, {key: value for key, value in request.GET.items() if value})


def _forbidden(request: HttpRequest, slug: str) -> HttpResponse:
    return render(request, "analytics/forbidden.html", {"slug": slug}, status=403)


@login_required
def game_analytics(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        game = _member_game(request, slug)
    except Forbidden:
        return _forbidden(request, slug)
    today = selectors.today()
    context: dict[str, Any] = {
        "game": game,
        "presets": [(days, today - timedelta(days=days - 1), today) for days in PRESETS],
        "start": request.GET.get("start", ""),
        "end": request.GET.get("end", ""),
    }
    try:
        query = _range(request)
    except ValidationError as error:
        context["errors"] = [f"{field}: {' '.join(map(str, messages))}" for field, messages in error.detail.items()]
        return render(request, "analytics/game.html", context, status=400)
    report = selectors.game_report(game, start=query["start"], end=query["end"])
    context.update(
        start=report.start.isoformat(),
        end=report.end.isoformat(),
        report=report,
        charts={"report": report_data(report), "labels": tables.chart_labels(report)},
        tables={name: tables.table(report, name) for name in tables.TABLES},
        range_query=f"start={report.start.isoformat()}&end={report.end.isoformat()}",
    )
    return render(request, "analytics/game.html", context)


@login_required
def export_csv(request: HttpRequest, slug: str, table: str) -> HttpResponse:
    if table not in tables.TABLES:
        raise Http404(f"No table named {table!r}.")
    try:
        game = _member_game(request, slug)
    except Forbidden:
        return _forbidden(request, slug)
    try:
        query = _range(request)
    except ValidationError as error:
        message = "; ".join(f"{field}: {' '.join(map(str, m))}" for field, m in error.detail.items())
        return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
    report = selectors.game_report(game, start=query["start"], end=query["end"])
    response = HttpResponse(tables.csv_text(tables.table(report, table)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{tables.csv_filename(report, table)}"'
    return response
