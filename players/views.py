"""The player's site: server-rendered pages over the same services and selectors as the API."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import get_conditional_response
from django.views.decorators.http import require_POST, require_safe

from achievements.models import Unlock
from achievements.selectors import game_awards, player_awards, reveal_for
from infra.errors import DomainError
from leaderboards import selectors as boards
from leaderboards.boards import Board
from players import feed, profilecard, selectors, services
from players.forms import ComparePickForm, FriendRequestForm, SettingsForm, SignupForm
from players.sharecard import CARD_MAX_AGE, card_png
from tracker.auth import EVERYONE, Caller, Visibility, visibility
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
    caller = caller_of(request)
    top = boards.page(caller, Board.everywhere(), limit=10)
    rare = selectors.latest_rare_unlocks()
    reveal = reveal_for(caller, [u.achievement for u in rare])
    return render(
        request,
        "players/home.html",
        {
            "games": Game.objects.all(),
            "top": top.rankings,
            "rare": [{"unlock": u, "masked": reveal.masks(u.achievement)} for u in rare],
        },
    )


def profile(request: HttpRequest, username: str) -> HttpResponse:
    try:
        player = visible_player(request, username)
    except PrivateProfile as private:
        return private_page(request, private.player)
    board = selectors.dashboard(player)
    totals = selectors.totals(player)
    rarest, recent = selectors.shown_unlocks(caller_of(request), player, selectors.rarest_unlocks(player), board.recent)
    return render(
        request,
        "players/profile.html",
        {
            "player": player,
            "board": board,
            "recent": recent,
            "totals": totals,
            "global_rank": boards.rank_on(Board.everywhere(), player.pk),
            "games": selectors.game_stats(player),
            "rarest": rarest,
            "trend": trend(player),
            "awards": player_awards(player),
            "is_me": request.user.is_authenticated and request.user.pk == player.pk,
            "card": profilecard.embed_of(request, player) if profilecard.has_card(player) else None,
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
            "rows": selectors.achievements_of(player, game, viewer=caller_of(request)),
            "stats": selectors.game_stats(player, game=game).first(),
            "standing": boards.standing(Board.game(game.pk), player.pk),
            "awards": player_awards(player, game=game),
        },
    )


def game_page(request: HttpRequest, slug: str) -> HttpResponse:
    game = get_object_or_404(Game, slug=slug)
    caller = caller_of(request)
    unlocked: dict[Any, Any] = {}
    if caller.player is not None:
        mine = Unlock.objects.filter(player=caller.player, game=game)
        unlocked = dict(mine.values_list("achievement_id", "unlocked_at"))
    listed = list(game.achievements.all())
    reveal = reveal_for(caller, listed, unlocked=unlocked)
    achievements = [{"achievement": a, "masked": reveal.masks(a), "unlocked_at": unlocked.get(a.pk)} for a in listed]
    top = boards.page(caller, Board.game(game.pk), limit=10, game_id=game.pk)
    return render(
        request,
        "players/game.html",
        {
            "game": game,
            "achievements": achievements,
            "top": top.rankings,
            "ranked": top.total,
            "awards": game_awards(caller, game),
        },
    )


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    player = request.user
    board = selectors.dashboard(player)
    [recent] = selectors.shown_unlocks(caller_of(request), player, board.recent)
    return render(
        request,
        "players/dashboard.html",
        {
            "player": player,
            "board": board,
            "recent": recent,
            "totals": selectors.totals(player),
            "global_rank": boards.rank_on(Board.everywhere(), player.pk),
            "games": selectors.game_stats(player),
            "trend": trend(player),
            "feed": feed.feed_page(player),
        },
    )


@login_required
def friends_feed(request: HttpRequest) -> HttpResponse:
    """The friends' feed a page at a time (`?cursor=` from the page before); its first page
    is what the dashboard's feed reloads when a live event says it changed."""
    try:
        cursor = feed.Cursor.decode(request.GET["cursor"]) if "cursor" in request.GET else None
    except feed.BadCursor as error:
        raise Http404("No such page of the feed.") from error
    return render(request, "players/feed.html", {"feed": feed.feed_page(request.user, cursor=cursor)})


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
    compared = selectors.comparison(a, b, game, viewer=caller_of(request))
    return render(request, "players/compare.html", {"game": game, "a": a, "b": b, **compared})


def compare_pick(request: HttpRequest) -> HttpResponse:
    """The friends page's compare form: redirect to the comparison it names. A slug or name
    that no game or player could have (a slash, say) names no comparison: 404."""
    form = ComparePickForm(request.GET)
    if not form.is_valid():
        raise Http404("Pick a game and two players.")
    pick = form.cleaned_data
    return redirect("compare-page", slug=pick["game"], first=pick["a"], second=pick["b"])


def _shared_unlock(request: HttpRequest, unlock_id: int) -> tuple[Unlock, bool]:
    """The shared unlock, and whether its achievement is masked for this viewer. A share
    link of a player the viewer may not see is a 404; one of a hidden achievement the
    viewer may not see is shown masked (it is still the player's unlock to share)."""
    unlock = get_object_or_404(Unlock.objects.select_related("player", "achievement", "game"), pk=unlock_id)
    caller = caller_of(request)
    if visibility(caller, unlock.player) is Visibility.NONE:
        raise Http404("No such shared achievement.")
    [[shown]] = selectors.shown_unlocks(caller, unlock.player, [unlock])
    return unlock, shown["masked"]


def share(request: HttpRequest, unlock_id: int) -> HttpResponse:
    unlock, masked = _shared_unlock(request, unlock_id)
    url = request.build_absolute_uri(reverse("share-page", args=[unlock.pk]))
    image = request.build_absolute_uri(reverse("share-card", args=[unlock.pk]))
    context = {"unlock": unlock, "masked": masked, "share_url": url, "image_url": image}
    return render(request, "players/share.html", context)


def share_card(request: HttpRequest, unlock_id: int) -> HttpResponse:
    unlock, masked = _shared_unlock(request, unlock_id)
    response = HttpResponse(card_png(unlock, masked=masked), content_type="image/png")
    # Shared caches may keep only a card that every viewer gets alike: a public player's
    # unlock of an achievement that is not hidden.
    anyone = reveal_for(EVERYONE, [unlock.achievement])
    same_for_all = visibility(EVERYONE, unlock.player) is Visibility.ALL and not anyone.masks(unlock.achievement)
    response["Cache-Control"] = f"{'public' if same_for_all else 'private'}, max-age={CARD_MAX_AGE}"
    return response


@require_safe
def profile_card(request: HttpRequest, username: str, kind: str) -> HttpResponse:
    """A player's embeddable card, `kind` "svg" or "png" (docs/pages.md, "The profile
    card"). The same for whoever asks, so it is cached publicly; a matching If-None-Match
    is answered 304 from the ETag alone, and only a miss draws."""
    theme = request.GET.get("theme", profilecard.DEFAULT_THEME)
    if theme not in profilecard.THEMES:
        # A typo in a pasted URL is better found at once than shown silently as the default.
        return HttpResponseBadRequest("theme must be light or dark.", content_type="text/plain; charset=utf-8")
    player = profilecard.card_player(username)
    if player is None:
        raise Http404("No such player.")
    facts = profilecard.facts_of(player)
    etag = facts.etag(theme=theme, kind=kind)
    # A 304 when If-None-Match names this ETag (a 412 for a failed If-Match), else None.
    response = get_conditional_response(request, etag=etag)
    if response is not None and response.status_code != 304:
        return response
    if response is None:
        body = profilecard.svg(facts, theme) if kind == "svg" else profilecard.png(facts, theme)
        response = HttpResponse(body, content_type=profilecard.CONTENT_TYPES[kind])
    response["ETag"] = etag
    response["Cache-Control"] = f"public, max-age={profilecard.CARD_MAX_AGE}"
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
    context = {"form": form, "card": profilecard.embed_of(request, me), "card_shown": profilecard.has_card(me)}
    return render(request, "players/settings.html", context)
