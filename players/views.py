"""The player's site: server-rendered pages over the same services and selectors as the API."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from achievements.models import Unlock
from leaderboards import selectors as boards
from leaderboards.boards import Board
from players import selectors, services
from players.forms import FriendRequestForm, SettingsForm, SignupForm
from players.sharecard import render_card
from tracker.auth import Caller, Visibility, visibility
from tracker.errors import DomainError
from tracker.models import Game, Player
from tracker.services import player_register

TREND_DAYS = 90


def caller_of(request: HttpRequest) -> Caller:
    return Caller(player=request.user) if request.user.is_authenticated else Caller()


def visible_player(request: HttpRequest, username: str) -> Player:
    """The player named, or a 404 page; a private page answers 403 with an explanation."""
    player = get_object_or_404(Player, username__iexact=username, is_active=True)
    if visibility(caller_of(request), player) is Visibility.NONE:
        raise PrivateProfile(player)
    return player


class PrivateProfile(Exception):
    def __init__(self, player: Player) -> None:
        self.player = player


def private_page(request: HttpRequest, player: Player) -> HttpResponse:
    return render(request, "players/private.html", {"player": player}, status=403)


def trend(player: Player, game: Game | None = None) -> dict[str, list[Any]]:
    today = timezone.now().date()
    days = selectors.history(player, game=game, start=today - timezone.timedelta(days=TREND_DAYS - 1), end=today)
    return {
        "labels": [d["date"] for d in days],
        "points": [d["points"] for d in days],
        "unlocks": [d["unlocks"] for d in days],
        "playtime": [d["playtime_gained"] for d in days],
    }


# --- Pages --------------------------------------------------------------------------------


def home(request: HttpRequest) -> HttpResponse:
    top = boards.page(caller_of(request), Board.everywhere(), limit=10)
    return render(
        request,
        "players/home.html",
        {"games": Game.objects.all(), "top": top.rankings, "rare": selectors.latest_rare_unlocks()},
    )


def profile(request: HttpRequest, username: str) -> HttpResponse:
    try:
        player = visible_player(request, username)
    except PrivateProfile as private:
        return private_page(request, private.player)
    board = selectors.dashboard(player)
    totals = selectors.totals(player)
    return render(
        request,
        "players/profile.html",
        {
            "player": player,
            "board": board,
            "totals": totals,
            "global_rank": boards.rank_on(Board.everywhere(), player.pk),
            "games": selectors.game_stats(player),
            "rarest": selectors.rarest_unlocks(player),
            "trend": trend(player),
            "is_me": request.user.is_authenticated and request.user.pk == player.pk,
        },
    )


def player_game(request: HttpRequest, username: str, slug: str) -> HttpResponse:
    try:
        player = visible_player(request, username)
    except PrivateProfile as private:
        return private_page(request, private.player)
    game = get_object_or_404(Game, slug=slug)
    return render(
        request,
        "players/player_game.html",
        {
            "player": player,
            "game": game,
            "rows": selectors.achievements_of(player, game),
            "stats": selectors.game_stats(player, game=game).first(),
            "standing": boards.standing(Board.game(game.pk), player.pk),
        },
    )


def game_page(request: HttpRequest, slug: str) -> HttpResponse:
    game = get_object_or_404(Game, slug=slug)
    viewer = request.user if request.user.is_authenticated else None
    unlocked = set()
    if viewer is not None:
        unlocked = set(Unlock.objects.filter(player=viewer, game=game).values_list("achievement_id", flat=True))
    achievements = [{"achievement": a, "masked": a.hidden and a.pk not in unlocked} for a in game.achievements.all()]
    top = boards.page(caller_of(request), Board.game(game.pk), limit=10, game_id=game.pk)
    return render(
        request,
        "players/game.html",
        {"game": game, "achievements": achievements, "top": top.rankings, "ranked": top.total},
    )


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    player = request.user
    return render(
        request,
        "players/dashboard.html",
        {
            "player": player,
            "board": selectors.dashboard(player),
            "totals": selectors.totals(player),
            "global_rank": boards.rank_on(Board.everywhere(), player.pk),
            "games": selectors.game_stats(player),
            "trend": trend(player),
            "alerts": selectors.notifications(player),
        },
    )


@login_required
def friends(request: HttpRequest) -> HttpResponse:
    me = request.user
    form = FriendRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        other = Player.objects.filter(username__iexact=form.cleaned_data["username"], is_active=True).first()
        if other is None:
            form.add_error("username", "No player by that name.")
        else:
            try:
                services.friend_request(sender=me, receiver=other)
                messages.success(request, f"Friend request sent to {other.username}.")
                return redirect("friends-page")
            except DomainError as error:
                form.add_error("username", error.message)
    incoming, outgoing = selectors.pending_requests(me)
    return render(
        request,
        "players/friends.html",
        {
            "form": form,
            "friends": selectors.friends_of(me),
            "incoming": incoming,
            "outgoing": outgoing,
            "games": Game.objects.all(),
        },
    )


@login_required
@require_POST
def friend_answer(request: HttpRequest, request_id: int, answer: str) -> HttpResponse:
    try:
        if answer == "accept":
            services.friend_accept(player=request.user, friendship=request_id)
            messages.success(request, "Friend request accepted.")
        elif answer == "decline":
            services.friend_decline(player=request.user, friendship_id=request_id)
            messages.info(request, "Friend request declined.")
        else:
            raise Http404
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("friends-page")


@login_required
@require_POST
def friend_remove(request: HttpRequest, username: str) -> HttpResponse:
    other = get_object_or_404(Player, username__iexact=username)
    try:
        services.friend_remove(player=request.user, other=other)
        messages.info(request, f"{other.username} is no longer on your friends list.")
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("friends-page")


def compare(request: HttpRequest, slug: str, first: str, second: str) -> HttpResponse:
    game = get_object_or_404(Game, slug=slug)
    try:
        a, b = visible_player(request, first), visible_player(request, second)
    except PrivateProfile as private:
        return private_page(request, private.player)
    return render(request, "players/compare.html", {"game": game, "a": a, "b": b, **selectors.comparison(a, b, game)})


def compare_pick(request: HttpRequest) -> HttpResponse:
    """The friends page's compare form: redirect to the comparison it names."""
    slug, first, second = (request.GET.get(k, "") for k in ("game", "a", "b"))
    if not (slug and first and second):
        raise Http404("Pick a game and two players.")
    return redirect("compare-page", slug=slug, first=first, second=second)


def _shared_unlock(request: HttpRequest, unlock_id: int) -> Unlock:
    unlock = get_object_or_404(Unlock.objects.select_related("player", "achievement", "game"), pk=unlock_id)
    if visibility(caller_of(request), unlock.player) is Visibility.NONE:
        raise Http404("No such shared achievement.")
    return unlock


def share(request: HttpRequest, unlock_id: int) -> HttpResponse:
    unlock = _shared_unlock(request, unlock_id)
    url = request.build_absolute_uri(reverse("share-page", args=[unlock.pk]))
    image = request.build_absolute_uri(reverse("share-card", args=[unlock.pk]))
    return render(request, "players/share.html", {"unlock": unlock, "share_url": url, "image_url": image})


def share_card(request: HttpRequest, unlock_id: int) -> HttpResponse:
    unlock = _shared_unlock(request, unlock_id)
    response = HttpResponse(render_card(unlock), content_type="image/png")
    response["Cache-Control"] = "public, max-age=3600"
    return response


# --- Accounts -----------------------------------------------------------------------------


def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            player = player_register(
                username=data["username"], email=data["email"], password=data["password1"], region=data["region"]
            )
        except DomainError as error:
            for field, problems in (error.fields or {"username": [error.message]}).items():
                form.add_error(field if field in form.fields else None, problems)
        else:
            login(request, player, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to Questboard, {player.username}!")
            return redirect("dashboard-page")
    return render(request, "registration/signup.html", {"form": form})


@login_required
def account_settings(request: HttpRequest) -> HttpResponse:
    me = request.user
    initial = {"region": me.region, "privacy": me.privacy, "email": me.email}
    form = SettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.player_update_settings(player=me, **form.cleaned_data)
        except DomainError as error:
            form.add_error("email", error.message)
        else:
            messages.success(request, "Settings saved.")
            return redirect("settings-page")
    return render(request, "players/settings.html", {"form": form})
