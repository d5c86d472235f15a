"""Settings for every server process of the benchmark: the app's own, plus one route.

The do-nothing endpoint (bench/urls.py) gives the run its ceiling: the same gunicorn
workers and middleware answering without any work, measured beside the real endpoints.
"""

from __future__ import annotations

import os

from tracker.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

# Its own Celery queue, so a bench worker never takes tasks published by a developer's
# server or a test run sharing the same RabbitMQ, and they never take the bench's.
CELERY_TASK_DEFAULT_QUEUE = os.getenv("BENCH_CELERY_QUEUE", "questboard-bench")
