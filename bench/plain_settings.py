"""A plain Django REST framework app beside the real one: no middleware, no database, one
do-nothing APIView (bench/plain_urls.py). Served by the same gunicorn command and workers
as the app's own `/bench/noop`, the two ceilings' ratio is what the app's middleware stack
and settings cost a request."""

from __future__ import annotations

import os

SECRET_KEY = os.environ.get("SECRET_KEY", "questboard-bench-plain")
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "bench.plain_urls"
INSTALLED_APPS = ["rest_framework"]
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    # No django.contrib.auth: an unauthenticated request has no user at all.
    "UNAUTHENTICATED_USER": None,
}
