from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("questboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
@worker_process_init.connect
def keep_a_broadcast_loop(**kwargs: Any) -> None:
    """Each worker process broadcasts through one event loop and one Redis connection of
    its own, not a new loop (and connection) per broadcast (`infra.realtime.use_own_loop`).
    worker_init covers the solo pool; each prefork child starts its own at process init."""
    from infra import realtime

    realtime.use_own_loop()


@task_postrun.connect
def close_old_connections(sender: Any = None, **kwargs: Any) -> None:
    """Keep database connections across tasks, as a web process keeps them across requests:
    Celery's Django fixup closes them after every task unless CELERY_DB_REUSE_MAX is set
    (config/settings.py), and reconnecting cost more than many tasks. A connection that
    broke or outlived CONN_MAX_AGE is still closed here, as Django does after a request.
    Not after a task run eagerly: its caller's transaction may still be open."""
    from django.db import close_old_connections as close

    if not getattr(getattr(sender, "request", None), "is_eager", False):
        close()
