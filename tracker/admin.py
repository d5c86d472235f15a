from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.http import HttpRequest
from rest_framework_api_key.admin import APIKeyModelAdmin

from tracker.models import Friendship, Game, GameKey, Player
from tracker.services import player_deactivate, player_password_set


class ReadOnlyAdmin(admin.ModelAdmin):
    """For records that change only through the services (unlocks, results, the logs)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


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


@admin.register(Game)
class GameAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "achievement_count", "total_points", "created")
    search_fields = ("name", "slug")
    readonly_fields = ("id", "achievement_count", "total_points", "created")


@admin.register(GameKey)
class GameKeyAdmin(APIKeyModelAdmin):
    list_display = (*APIKeyModelAdmin.list_display, "game", "requests_per_minute")
    list_filter = (*APIKeyModelAdmin.list_filter, "game")


@admin.register(Friendship)
class FriendshipAdmin(admin.ModelAdmin):
    list_display = ("requester", "addressee", "status", "created", "accepted_at")
    list_filter = ("status",)
    raw_id_fields = ("requester", "addressee")
