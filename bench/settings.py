"""Settings for every server process of the benchmark: the app's own, plus one route.

The do-nothing endpoint (bench/urls.py) gives the run its ceiling: the same gunicorn
workers and middleware answering without any work, measured beside the real endpoints.
"""

from __future__ import annotations

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
