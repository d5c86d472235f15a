"""Community managers' tools: seasons, their standings, moderation and index rebuilds."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from achievements.services import save_season
from leaderboards import selectors, services, sync, tasks
from leaderboards.boards import Board
from leaderboards.models import ModerationAction, Season, SeasonResult
from tracker.admin import GameAdmin, PlayerAdmin, ReadOnlyAdmin, StudioScopedAdmin
from tracker.auth import Caller
from tracker.models import Game, Player

MODERATE = "leaderboards.moderate"
# Community managers moderate by name: the admin lists every player's, private or not.
STAFF = Caller(staff=True)


def with_reason(
    name: str, title: str, apply: Callable[..., None], *, ask_players: bool = False
) -> Callable[[admin.ModelAdmin, HttpRequest, QuerySet], HttpResponse | None]:
    """An admin action that asks for a reason first (and, with `ask_players`, for
    usernames), then applies `apply(obj, actor, reason[, players])` to each selected object.
    Every moderation is recorded with who, when and why."""

    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        reason = request.POST.get("reason", "").strip()
        typed = request.POST.get("players", "")
        extra, error = [], ""
        if ask_players:
            names = set(typed.replace(",", " ").split())
            players = list(Player.objects.filter(username__in=names, is_active=True))
            unknown = sorted(names - {p.username for p in players})
            error = f"No active player named {', '.join(unknown)}." if unknown else ""
            extra = [players] if players else []
        if request.POST.get("confirm") == "yes" and reason and not error and (extra or not ask_players):
            for obj in queryset:
                apply(obj, request.user, reason, *extra)
            modeladmin.message_user(request, f"{title}: done for {queryset.count()}.", messages.SUCCESS)
            return None
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "queryset": queryset,
            "action": request.POST.get("action"),
            "opts": modeladmin.model._meta,
            "ask_players": ask_players,
            "players": typed,
            "error": error,
        }
        return TemplateResponse(request, "admin/moderation_reason.html", context)

    action.__name__ = name
    action.short_description = title  # type: ignore[attr-defined]
    action.allowed_permissions = ("moderate",)  # type: ignore[attr-defined]
    return action


class ModerationPermission:
    """Gate for actions marked allowed_permissions=("moderate",)."""

    def has_moderate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(MODERATE)


class SeasonForm(forms.ModelForm):
    """The achievement picker offers only the season's game's achievements, by name. A new
    season's game is the one posted with the form, or given in the add link
    (`add/?game=<id>`); before it has one the picker offers none, and says to save first
    (a season saved with none counts every achievement). `clean` refuses another game's,
    as `save_season` does."""

    NEW_SEASON_HELP = (
        "Choose the game and save (“Save and continue editing”): its achievements are offered "
        "here then. None chosen: every achievement of the game counts."
    )

    class Meta:
        model = Season
        fields = ["game", "name", "description", "starts_at", "ends_at", "region", "achievements"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields.get("achievements")
        if field is None:
            return
        game_id = self._game_id()
        # Only a game the user may pick (the game field is scoped to their studios).
        games = self.fields["game"].queryset if "game" in self.fields else Game.objects.all()
        if game_id is None or not games.filter(pk=game_id).exists():
            field.queryset = field.queryset.none()
            field.help_text = self.NEW_SEASON_HELP
        else:
            field.queryset = field.queryset.filter(game_id=game_id).order_by("position", "name")
        field.label_from_instance = lambda achievement: achievement.name

    def _game_id(self) -> uuid.UUID | None:
        """The season's game: the saved one, else the one posted, else the add link's."""
        if not self.instance._state.adding:
            return self.instance.game_id
        given = self.data.get(self.add_prefix("game")) if self.is_bound else self.initial.get("game")
        given = getattr(given, "pk", given)
        try:
            return uuid.UUID(str(given)) if given else None
        except ValueError:
            return None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        game, chosen = data.get("game"), data.get("achievements")
        if game is not None and chosen is not None and any(a.game_id != game.pk for a in chosen):
            self.add_error("achievements", "Choose only achievements of the season's game.")
        return data


@admin.register(Season)
class SeasonAdmin(StudioScopedAdmin, ModerationPermission, admin.ModelAdmin):
    form = SeasonForm
    list_display = ("name", "game", "region", "starts_at", "ends_at", "status_badge", "closed_at")
    list_filter = ("game", "region")
    search_fields = ("name",)
    filter_horizontal = ("achievements",)
    readonly_fields = ("closed_at", "live_standings")
    actions = ["close_now", "rebuild_board"]
    fieldsets = (
        (None, {"fields": ("game", "name", "description")}),
        ("Window", {"fields": ("starts_at", "ends_at", "region")}),
        ("What counts", {"fields": ("achievements",), "description": "Leave empty: every achievement counts."}),
        ("Standings", {"fields": ("closed_at", "live_standings")}),
    )

    @admin.display(description="status")
    def status_badge(self, season: Season) -> str:
        return season.status

    @admin.display(description="Standings (top 20)")
    def live_standings(self, season: Season) -> str:
        if season.pk is None:
            return "–"
        if season.closed_at:
            page = selectors.archived_page(STAFF, season, limit=20)
        else:
            page = selectors.page(STAFF, Board.season(season.pk), limit=20, game_id=season.game_id)
        link = reverse("game-board-page", args=[season.game.slug]) + f"?season={season.pk}"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((r["rank"], r["username"], r["points"]) for r in page.rankings),
        )
        return format_html(
            '<p>{} ranked · <a href="{}" target="_blank">open the live page</a></p>'
            "<table><tr><th>#</th><th>Player</th><th>Points</th></tr>{}</table>",
            page.total,
            link,
            rows,
        )

    def has_change_permission(self, request: HttpRequest, obj: Season | None = None) -> bool:
        # A closed season is archived for good: it opens read-only.
        return super().has_change_permission(request, obj) and (obj is None or obj.closed_at is None)

    def save_model(self, request: HttpRequest, obj: Season, form: Any, change: bool) -> None:
        """Nothing here: `save_related` saves the season and its chosen achievements at once,
        through the one season service, which also recounts what its window holds."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        data = form.cleaned_data
        save_season(
            season=form.instance,
            game=data["game"],
            name=data["name"],
            description=data["description"],
            starts_at=data["starts_at"],
            ends_at=data["ends_at"],
            region=data["region"],
            achievements=data["achievements"],
        )

    @admin.action(description="Close now and archive final standings", permissions=["change"])
    def close_now(self, request: HttpRequest, queryset: QuerySet[Season]) -> None:
        closed = sum(services.close_season(season=s, actor=request.user, now=timezone.now()) for s in queryset)
        self.message_user(request, f"Closed {closed} season(s).", messages.SUCCESS)

    @admin.action(description="Rebuild every leaderboard from the database", permissions=["moderate"])
    def rebuild_board(self, request: HttpRequest, queryset: QuerySet[Season]) -> None:
        tasks.rebuild_index.delay()
        services.record_moderation(kind=ModerationAction.Kind.REBUILD, actor=request.user, scope="all")
        self.message_user(request, "Rebuild requested.", messages.SUCCESS)


@admin.register(SeasonResult)
class SeasonResultAdmin(StudioScopedAdmin, ReadOnlyAdmin):
    game_path = "season__game"
    list_display = ("season", "rank", "player", "points", "achievement_count", "region")
    list_filter = ("season",)
    list_select_related = ("season", "player")
    ordering = ("season", "position")


@admin.register(ModerationAction)
class ModerationActionAdmin(ReadOnlyAdmin):
    list_display = ("created", "kind", "actor", "player", "season", "reason")
    list_filter = ("kind",)
    list_select_related = ("actor", "player", "season")
    search_fields = ("player__username", "actor__username", "reason")
    ordering = ("-created",)
    date_hierarchy = "created"


# --- Moderation actions on players and games (registered in tracker.admin) ----------------

admin.site.unregister(Player)
admin.site.unregister(Game)


@admin.register(Player)
class ModeratedPlayerAdmin(ModerationPermission, PlayerAdmin):
    def save_model(self, request: HttpRequest, obj: Player, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and {"region", "is_active"} & set(form.changed_data):
            # Another region's boards, or none at all for a deactivated account.
            sync.reindex_player_after_commit(obj)

    list_display = (*PlayerAdmin.list_display, "boards_hidden")
    list_filter = (*PlayerAdmin.list_filter, "boards_hidden")
    actions = [
        with_reason(
            "hide_from_boards",
            "Hide from leaderboards",
            lambda player, actor, reason: services.hide_player(player=player, actor=actor, reason=reason),
        ),
        with_reason(
            "restore_to_boards",
            "Restore to leaderboards",
            lambda player, actor, reason: services.restore_player(player=player, actor=actor, reason=reason),
        ),
    ]


@admin.register(Game)
class BoardGameAdmin(ModerationPermission, GameAdmin):
    actions = ["rebuild_boards"]

    @admin.action(description="Rebuild this game's leaderboards from the database", permissions=["moderate"])
    def rebuild_boards(self, request: HttpRequest, queryset: QuerySet[Game]) -> None:
        for game in queryset:
            tasks.rebuild_index.delay(str(game.pk))
            services.record_moderation(kind=ModerationAction.Kind.REBUILD, actor=request.user, game=str(game.pk))
        self.message_user(request, f"Rebuild requested for {queryset.count()} game(s).", messages.SUCCESS)
