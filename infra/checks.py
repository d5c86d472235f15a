"""Start-up checks for settings that each look fine alone but are unsafe together.

Django runs them before every management command; the WSGI and ASGI entry points run them
too (`log_warnings`), so a server started by hand says what is wrong in its first lines.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Warning, register, run_checks

TAG = "questboard"
logger = logging.getLogger("questboard.checks")


@register(TAG)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    database = settings.DATABASES["default"]
    if os.environ.get("QUESTBOARD_ASGI") and not database.get("OPTIONS", {}).get("pool"):
        problems.append(
            Warning(
                "An ASGI server without a database pool: every thread opens its own connection, "
                "and a burst exhausts PostgreSQL's max_connections.",
                hint="Leave DB_POOL_MAX_SIZE unset (10) or set it above 0 for ASGI servers.",
                id="questboard.W001",
            )
        )
    if not settings.DEBUG and not settings.HTTPS_ONLY and not getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        problems.append(
            Warning(
                "DEBUG is off but HTTPS_ONLY is off too: sign-in cookies travel over plain HTTP.",
                hint="Unset HTTPS_ONLY in production (TLS in front: set SECURE_PROXY_SSL_HEADER).",
                id="questboard.W002",
            )
        )
    if settings.DEBUG and not settings.EMBEDDED_DATABASE:
        problems.append(
            Warning(
                "DEBUG is on with a DATABASE_URL of your own: error pages show settings and source.",
                hint="DEBUG is for the embedded default on a laptop; leave it unset elsewhere.",
                id="questboard.W003",
            )
        )
    return problems


def log_warnings() -> None:
    """Log each start-up warning once, for servers that no management command starts."""
    for message in run_checks(tags=[TAG]):
        logger.warning("%s", message)
