"""Server-rendered board pages: a game's board (all-time or a season, any region), the
global board, and the list of seasons."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from leaderboards import selectors
from leaderboards.boards import Board
from leaderboards.models import Season
from tracker.auth import Caller
from tracker.models import Game
from tracker.regions import Region

TOP = 100


def _region(request: HttpRequest) -> str:
    region = request.GET.get("region", "")
    return region if region in Region.values else ""


def _caller(request: HttpRequest) -> Caller:
    return Caller(player=request.user) if request.user.is_authenticated else Caller()


def _page_number(request: HttpRequest) -> int:
    """The page of the board asked for (`?page=2`: ranks 101-200); anything but a positive
    whole number names no page: 404."""
    raw = request.GET.get("page", "1")
    if not raw.isdigit() or int(raw) < 1:
        raise Http404("No such page.")
    return int(raw)


def _pages(request: HttpRequest, number: int, page: selectors.Page) -> dict[str, Any]:
    """Links to the pages before and after, keeping the region, season and who filters. A
    page past the end of a board is a 404, except the first (an empty board)."""
    if number > 1 and not page.rankings:
        raise Http404("No such page.")

    def link(to: int) -> str:
        query = request.GET.copy()
        query["page"] = str(to)
        return f"?{query.urlencode()}"

    return {
        "first_place": (number - 1) * TOP + 1,
        "last_place": (number - 1) * TOP + len(page.rankings),
        "previous_page": link(number - 1) if number > 1 else None,
        "next_page": link(number + 1) if number * TOP < page.total else None,
    }


def _my_standing(request: HttpRequest, board: Board) -> selectors.PlayerStanding | None:
    return selectors.standing(board, request.user.pk) if request.user.is_authenticated else None


def game_board(request: HttpRequest, slug: str) -> HttpResponse:
    game = get_object_or_404(Game, slug=slug)
    region = _region(request)
    caller = _caller(request)
    season = None
    if request.GET.get("season"):
        try:
            season = get_object_or_404(Season, game=game, pk=uuid.UUID(request.GET["season"]))
        except ValueError:
            raise Http404("No such season.") from None
    friends_only = request.GET.get("friends") == "1" and request.user.is_authenticated
    number = _page_number(request)
    offset = (number - 1) * TOP
    if friends_only:
        board = Board.game(game.pk, region)
        page = selectors.friends_page(request.user, board, game.pk)
        mine = selectors.standing_within(page, request.user.pk)
    elif season is not None and season.closed_at is not None:
        page = selectors.archived_page(caller, season, region=region, offset=offset, limit=TOP)
        mine = selectors.archived_standing(season, request.user.pk, region) if request.user.is_authenticated else None
    else:
        board = Board.of_season(season, region) if season else Board.game(game.pk, region)
        page = selectors.page(caller, board, offset=offset, limit=TOP, game_id=game.pk)
        mine = _my_standing(request, board)
    return render(
        request,
        "leaderboards/board.html",
        _context(
            request,
            page,
            mine,
            region,
            game=game,
            season=season,
            friends_only=friends_only,
            seasons=list(game.seasons.all()[:30]),
            # Live rows reorder the top of a board: later pages stay as loaded.
            stream=_stream(game, season, region, friends_only) if number == 1 else None,
            **({} if friends_only else _pages(request, number, page)),
        ),
    )


def global_board(request: HttpRequest) -> HttpResponse:
    region = _region(request)
    board = Board.everywhere(region)
    number = _page_number(request)
    page = selectors.page(_caller(request), board, offset=(number - 1) * TOP, limit=TOP)
    stream = _query("/ws/leaderboards/global/", region) if number == 1 else None
    context = _context(
        request, page, _my_standing(request, board), region, stream=stream, **_pages(request, number, page)
    )
    return render(request, "leaderboards/board.html", context)


def _query(path: str, region: str) -> str:
    return f"{path}?region={region}" if region else path


def _stream(game: Game, season: Season | None, region: str, friends_only: bool) -> str | None:
    """The socket a board page listens on for live rows (none for fixed boards)."""
    if friends_only or (season is not None and season.closed_at is not None):
        return None
    if season is not None:
        return _query(f"/ws/seasons/{season.pk}/", season.board_region(region))
    return _query(f"/ws/leaderboards/{game.pk}/", region)


def _context(
    request: HttpRequest,
    page: selectors.Page,
    mine: selectors.PlayerStanding | None,
    region: str,
    **extra: Any,
) -> dict[str, Any]:
    me = str(request.user.pk) if request.user.is_authenticated else None
    return {
        "rankings": page.rankings,
        "total": page.total,
        "mine": mine,
        "me": me,
        "mine_on_page": any(row["player_id"] == me for row in page.rankings),
        "region": region,
        "regions": Region.choices,
        "now": timezone.now(),
        **extra,
    }


def season_list(request: HttpRequest) -> HttpResponse:
    seasons = Season.objects.select_related("game").order_by("-starts_at")[:200]
    return render(request, "leaderboards/seasons.html", {"seasons": seasons})
