from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.db import models
from django.http import HttpRequest
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from tracker.auth import admin_games
from tracker.models import Friendship, Game, GameKey, GameMember, Player
from tracker.services import player_deactivate, player_password_set


class ReadOnlyAdmin(admin.ModelAdmin):
    """For records that change only through the services (unlocks, results, the logs)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


def _scoped_choices(model: type[models.Model], games: models.QuerySet[Game]) -> models.QuerySet | None:
    """The rows of `model` a form may offer someone who sees only `games`; None when rows
    of `model` belong to no game."""
    if model is Game:
        return games
    if any(field.name == "game" and field.related_model is Game for field in model._meta.get_fields()):
        return model._default_manager.filter(game__in=games)
    return None


class StudioScopedAdmin:
    """The admin of rows that belong to a game (the game itself, its keys, achievements,
    unlocks, seasons...). A staff user `tracker.auth.admin_games` scopes, a game developer,
    sees in lists, change pages, filters and form choices only their own games' rows;
    superusers and community managers see every game's. Put it first among the bases."""

    # The lookup from a row of this admin's model to its game.
    game_path = "game"

    def studio_scope(self, request: HttpRequest) -> models.QuerySet[Game] | None:
        if not hasattr(request, "studio_games"):
            request.studio_games = admin_games(request.user)  # type: ignore[attr-defined]
        return request.studio_games  # type: ignore[attr-defined]

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        queryset = super().get_queryset(request)  # type: ignore[misc]
        games = self.studio_scope(request)
        return queryset if games is None else queryset.filter(**{f"{self.game_path}__in": games})

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        self._scope_choices(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        self._scope_choices(db_field, request, kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]

    def _scope_choices(self, db_field: Any, request: HttpRequest, kwargs: dict[str, Any]) -> None:
        games = self.studio_scope(request)
        if games is not None and "queryset" not in kwargs:
            choices = _scoped_choices(db_field.related_model, games)
            if choices is not None:
                kwargs["queryset"] = choices

    def get_list_filter(self, request: HttpRequest) -> Any:
        """Filters by a related row (game, season) offer only the rows the list holds."""
        filters = super().get_list_filter(request)  # type: ignore[misc]
        if self.studio_scope(request) is None:
            return filters
        model = self.model  # type: ignore[attr-defined]
        return [
            (name, admin.RelatedOnlyFieldListFilter)
            if isinstance(name, str) and "__" not in name and model._meta.get_field(name).is_relation
            else name
            for name in filters
        ]


class PlayerPasswordForm(AdminPasswordChangeForm):
    """The admin's "set password" form, through the service that ends every session."""

    def save(self, commit: bool = True) -> Player:
        usable = self.cleaned_data["set_usable_password"]
        player_password_set(player=self.user, password=self.cleaned_data["password1"] if usable else None)
        return self.user


@admin.register(Player)
class PlayerAdmin(UserAdmin):
    list_display = ("username", "region", "privacy", "is_staff", "created", "last_login")
    list_filter = ("region", "privacy", "is_staff", "is_active")
    search_fields = ("username",)
    ordering = ("username",)
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Profile", {"fields": ("email", "region", "privacy")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )

    change_password_form = PlayerPasswordForm

    def get_fieldsets(self, request: HttpRequest, obj: Player | None = None) -> Any:
        """A player's email is personal data: superusers see it; community managers, who
        moderate by name, do not."""
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f != "email"]}) for name, options in fieldsets
        ]

    def save_model(self, request: HttpRequest, obj: Player, form: Any, change: bool) -> None:
        obj.set_email(obj.email or "")
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            # Saved above with the rest of the form; the service ends what the flag alone
            # cannot: the session generation, and the player's open sockets.
            player_deactivate(player=obj)


class GameMemberInline(admin.TabularInline):
    """The game's studio: the accounts that read its analytics and see it in the admin.
    Superusers alone see and change it."""

    model = GameMember
    extra = 0
    autocomplete_fields = ("player",)
    readonly_fields = ("added",)
    verbose_name = "studio member"

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_superuser


@admin.register(Game)
class GameAdmin(StudioScopedAdmin, admin.ModelAdmin):
    game_path = "pk"
    list_display = ("name", "slug", "achievement_count", "total_points", "created")
    search_fields = ("name", "slug")
    readonly_fields = ("id", "achievement_count", "total_points", "created")
    inlines = [GameMemberInline]


# The library registers its own APIKey model, which nothing here uses (every key is a
# GameKey, tied to its game): one "API keys" entry, ours, so no key is made where none works.
if admin.site.is_registered(APIKey):
    admin.site.unregister(APIKey)


@admin.register(GameKey)
class GameKeyAdmin(StudioScopedAdmin, APIKeyModelAdmin):
    list_display = (*APIKeyModelAdmin.list_display, "game", "requests_per_minute")
    list_filter = (*APIKeyModelAdmin.list_filter, "game")


@admin.register(Friendship)
class FriendshipAdmin(admin.ModelAdmin):
    list_display = ("requester", "addressee", "status", "created", "accepted_at")
    list_filter = ("status",)
    raw_id_fields = ("requester", "addressee")
