from __future__ import annotations

import re

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, include, path, re_path
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from achievements import api as achievements_api
from analytics import api as analytics_api
from analytics import views as analytics_views
from infra import health
from infra.errors import NO_SUCH_ENDPOINT, api_not_found, json_or_default, server_error
from infra.ratelimits import SignInRateThrottle, TokenRefreshRateThrottle
from leaderboards import api as boards_api
from leaderboards import views as board_views
from players import api as players_api
from players import forms as player_forms
from players import views as player_views
from stats import api as stats_api
from tracker import api as tracker_api


def slash_flipped(pattern: URLPattern) -> str:
    route = str(pattern.pattern)
    return route[:-1] if route.endswith("/") else route + "/"


def drop_aliases(endpoints: list[tuple], **kwargs: object) -> list[tuple]:
    """drf-spectacular preprocessing hook: leave the slash-flipped aliases out."""
    return [e for e in endpoints if e[0] not in API_ALIASES]


api_v1 = [
    path("auth/token/", TokenObtainPairView.as_view(throttle_classes=[SignInRateThrottle]), name="token"),
    path(
        "auth/token/refresh/",
        TokenRefreshView.as_view(throttle_classes=[TokenRefreshRateThrottle]),
        name="token-refresh",
    ),
    path("auth/logout", tracker_api.LogoutApi.as_view(), name="token-logout"),
    path("players/", tracker_api.PlayerRegisterApi.as_view(), name="player-register"),
    path("players/me", players_api.MeApi.as_view(), name="player-me"),
    path(
        "players/<uuid:player_id>/achievements",
        achievements_api.PlayerAchievementsApi.as_view(),
        name="player-achievements",
    ),
    path("players/<uuid:player_id>/statistics", players_api.StatisticsApi.as_view(), name="player-statistics"),
    path("players/<uuid:player_id>/dashboard", players_api.DashboardApi.as_view(), name="player-dashboard"),
    path("players/<uuid:player_id>/history", players_api.HistoryApi.as_view(), name="player-history"),
    path("players/<uuid:player_id>/awards", achievements_api.PlayerAwardsApi.as_view(), name="player-awards"),
    path("friends", players_api.FriendsApi.as_view(), name="friends"),
    path("friends/requests", players_api.FriendRequestApi.as_view(), name="friend-requests"),
    path("friends/requests/<int:request_id>/<str:answer>", players_api.FriendRequestAnswerApi.as_view()),
    path("friends/<uuid:player_id>", players_api.FriendApi.as_view(), name="friend"),
    path("feed", players_api.FeedApi.as_view(), name="feed"),
    path("sessions", stats_api.PlaySessionApi.as_view(), name="sessions"),
    path("games/", tracker_api.GameListApi.as_view(), name="games"),
    path("games/<str:game_id>/achievements", achievements_api.GameAchievementsApi.as_view(), name="game-achievements"),
    path("games/<str:game_id>/analytics", analytics_api.GameAnalyticsApi.as_view(), name="game-analytics"),
    path("achievements/unlock", achievements_api.UnlockApi.as_view(), name="unlock"),
    path("achievements/unlock/batch", achievements_api.BatchUnlockApi.as_view(), name="unlock-batch"),
    path("achievements/progress", achievements_api.ProgressApi.as_view(), name="progress"),
    path("leaderboards/global", boards_api.GlobalBoardApi.as_view(), name="board-global"),
    path("leaderboards/global/player/<uuid:player_id>", boards_api.GlobalStandingApi.as_view()),
    path("leaderboards/global/around/<uuid:player_id>", boards_api.GlobalAroundApi.as_view()),
    path("leaderboards/<str:game_id>", boards_api.GameBoardApi.as_view(), name="board-game"),
    path("leaderboards/<str:game_id>/friends", boards_api.GameFriendsBoardApi.as_view()),
    path("leaderboards/<str:game_id>/player/<uuid:player_id>", boards_api.GameStandingApi.as_view()),
    path("leaderboards/<str:game_id>/around/<uuid:player_id>", boards_api.GameAroundApi.as_view()),
    path("seasons", boards_api.SeasonListApi.as_view(), name="seasons"),
    path("seasons/<uuid:season_id>", boards_api.SeasonDetailApi.as_view(), name="season"),
    path("seasons/<uuid:season_id>/standings", boards_api.SeasonStandingsApi.as_view()),
    path("seasons/<uuid:season_id>/player/<uuid:player_id>", boards_api.SeasonStandingApi.as_view()),
    path("seasons/<uuid:season_id>/around/<uuid:player_id>", boards_api.SeasonAroundApi.as_view()),
]

# Every API route also answers with the trailing slash flipped: a POST redirected by
# APPEND_SLASH would lose its body. The schema lists only the canonical form.
API_ALIASES = {"/api/v1/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", slash_flipped(p)) for p in api_v1}
api_v1 += [path(slash_flipped(p), p.callback) for p in list(api_v1)]

urlpatterns = [
    # First: game servers' calls (the unlock) are most of the traffic, and no page's route
    # begins with "api/", so resolving them first changes no match.
    path("api/v1/", include(api_v1)),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("", player_views.home, name="home"),
    path("accounts/signup/", player_views.signup, name="signup-page"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(form_class=player_forms.PasswordChangeForm),
        name="password_change",
    ),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("settings/", player_views.account_settings, name="settings-page"),
    path("dashboard/", player_views.dashboard, name="dashboard-page"),
    path("dashboard/feed/", player_views.friends_feed, name="feed-page"),
    path("friends/", player_views.friends, name="friends-page"),
    path("friends/requests/<int:request_id>/<str:answer>/", player_views.friend_answer, name="friend-answer"),
    path("friends/<str:username>/remove/", player_views.friend_remove, name="friend-remove"),
    path("players/<str:username>/", player_views.profile, name="profile-page"),
    path("players/<str:username>/games/<slug:slug>/", player_views.player_game, name="player-game-page"),
    path("players/<str:username>/card.svg", player_views.profile_card, {"kind": "svg"}, name="profile-card-svg"),
    path("players/<str:username>/card.png", player_views.profile_card, {"kind": "png"}, name="profile-card-png"),
    path("games/<slug:slug>/", player_views.game_page, name="game-page"),
    path("compare/", player_views.compare_pick, name="compare-pick"),
    path("compare/<slug:slug>/<str:first>/<str:second>/", player_views.compare, name="compare-page"),
    path("share/<int:unlock_id>/", player_views.share, name="share-page"),
    path("share/<int:unlock_id>/card.png", player_views.share_card, name="share-card"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("leaderboards/", board_views.global_board, name="global-board-page"),
    path("studio/", analytics_views.studio, name="studio-page"),
    path("studio/<slug:slug>/", analytics_views.game_analytics, name="studio-game-page"),
    path("studio/<slug:slug>/export/<str:table>.csv", analytics_views.export_csv, name="studio-export"),
    path("seasons/", board_views.season_list, name="season-list-page"),
    path("games/<slug:slug>/leaderboard/", board_views.game_board, name="game-board-page"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    # Last: any other /api/ path is the JSON 404, with DEBUG on too.
    re_path(r"^api/", api_not_found),
]

handler404 = json_or_default(404, "not_found", NO_SUCH_ENDPOINT, defaults.page_not_found)
handler500 = server_error
