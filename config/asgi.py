"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Safe by default: a bare `daphne config.asgi:application` or `uvicorn ...` gets a bounded
# pool (config/settings.py, "DB_POOL_MAX_SIZE"); DB_POOL_MAX_SIZE=0 turns it off, and the
# start-up check then warns.
os.environ.setdefault("DB_POOL_MAX_SIZE", "10")
os.environ["QUESTBOARD_ASGI"] = "1"
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from infra.checks import log_warnings  # noqa: E402
from infra.realtime import OriginCheckForCookies, socket_auth  # noqa: E402
from players import consumers  # noqa: E402

websocket_urls = [
    path("ws/me/", consumers.PlayerStreamConsumer.as_asgi()),
    path("ws/players/<uuid:player_id>/", consumers.PlayerStreamConsumer.as_asgi()),
    path("ws/leaderboards/global/", consumers.BoardStreamConsumer.as_asgi()),
    path("ws/leaderboards/<str:game_id>/", consumers.BoardStreamConsumer.as_asgi()),
    path("ws/seasons/<str:season_id>/", consumers.SeasonStreamConsumer.as_asgi()),
]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginCheckForCookies(socket_auth(URLRouter(websocket_urls))),
    }
)
log_warnings()
