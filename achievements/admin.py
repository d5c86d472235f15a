from __future__ import annotations

from django.contrib import admin

from achievements.models import Achievement, Progress, Unlock
from achievements.services import grant_achievement, revoke_unlock
from leaderboards.admin import ModerationPermission, with_reason
from tracker.admin import ReadOnlyAdmin, StudioScopedAdmin


def _grant(achievement: Achievement, actor: object, reason: str, players: list) -> None:
    grant_achievement(achievement=achievement, players=players, actor=actor, reason=reason)


@admin.register(Achievement)
class AchievementAdmin(StudioScopedAdmin, ModerationPermission, admin.ModelAdmin):
    actions = [with_reason("grant_to_players", "Grant to players", _grant, ask_players=True)]
    list_display = ("name", "api_name", "game", "points", "type", "hidden", "client_unlockable", "unlock_percentage")
    list_filter = ("game", "type", "hidden", "client_unlockable")
    search_fields = ("name", "api_name")
    # Types come from the manifest, whose import judges the awards again (achievements.awards).
    readonly_fields = ("type", "unlock_count", "unlock_percentage")


def _revoke(unlock: Unlock, actor: object, reason: str) -> None:
    revoke_unlock(unlock=unlock, actor=actor, reason=reason)


@admin.register(Unlock)
class UnlockAdmin(StudioScopedAdmin, ModerationPermission, ReadOnlyAdmin):
    actions = [with_reason("revoke_unlocks", "Revoke selected unlocks", _revoke)]
    list_display = ("player", "achievement", "game", "unlocked_at", "claimed_at", "source")
    list_filter = ("source", "game")
    search_fields = ("player__username", "achievement__api_name")
    list_select_related = ("player", "achievement", "game")
    date_hierarchy = "unlocked_at"


@admin.register(Progress)
class ProgressAdmin(StudioScopedAdmin, ReadOnlyAdmin):
    game_path = "achievement__game"
    list_display = ("player", "achievement", "value", "updated_at")
    list_select_related = ("player", "achievement")
