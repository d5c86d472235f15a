"""The plain DRF app's WSGI entry (config.wsgi also runs the app's start-up checks)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.plain_settings"

application = get_wsgi_application()
