"""RabbitMQ unreachable, for real: the production processes (gunicorn, the outbox relay,
a Celery worker) against a broker address nothing listens on, then against the real one.
An unlock is accepted while the broker is gone, and the work that needs the broker (board
moves, rival alerts) waits in the outbox and is done, once, when it is back."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from kombu import Connection

from tests.conftest import achievement, make_player
from tests.servers import VENV_BIN, free_port, gunicorn, post_json, running, server_environment
from tracker.models import Friendship, Game, Notification, OutboxEvent

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.CELERY_BROKER_URL, reason="needs RabbitMQ (CELERY_BROKER_URL)"),
]

DEAD_BROKER = f"amqp://guest:guest@127.0.0.1:{free_port()}//"


@pytest.fixture
def queue() -> Iterator[str]:
    """A queue of this test's own on the real broker, deleted after."""
    name = f"questboard-test-{uuid.uuid4().hex[:12]}"
    yield name
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as connection:
        connection.default_channel.queue_delete(name)


def relay_once(broker: str, queue: str) -> subprocess.CompletedProcess[str]:
    env = {**server_environment(), "CELERY_BROKER_URL": broker, "CELERY_QUEUE": queue}
    command = [str(VENV_BIN / "python"), "manage.py", "relay_outbox", "--once"]
    return subprocess.run(command, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60)


def pending() -> list[str]:
    return list(OutboxEvent.objects.order_by("id").values_list("kind", flat=True))


def test_with_rabbitmq_unreachable_an_unlock_is_accepted_and_its_work_is_done_once_it_returns(
    game: Game, game_key: str, queue: str, tmp_path: Path
) -> None:
    """bob and alice pass each other three times while the broker is gone: once it is back,
    each pass is alerted once, with the points of its moment (alice leads by far by then)."""
    alice, bob = make_player("alice"), make_player("bob")
    Friendship.objects.create(requester=bob, addressee=alice, status=Friendship.Status.ACCEPTED)
    unlocks = [(bob, "FIRST_FLIGHT"), (alice, "KILL_100"), (bob, "ACE_PILOT"), (alice, "SECRET_ENDING")]

    with running({"web": gunicorn}, tmp_path, {"CELERY_BROKER_URL": DEAD_BROKER, "CELERY_QUEUE": queue}) as [web]:
        started = time.monotonic()
        answers = [
            post_json(
                f"{web.http}/api/v1/achievements/unlock",
                {"player_id": str(player.pk), "achievement_id": str(achievement(game, name).pk)},
                {"Authorization": f"Api-Key {game_key}"},
            )
            for player, name in unlocks  # bob 10, alice 15, bob 35, alice 65
        ]
        took = time.monotonic() - started
    assert [status for status, _ in answers] == [201] * 4
    assert took < 10  # the web process never waits for the broker
    assert pending() == ["unlocks"] * 4

    down = relay_once(DEAD_BROKER, queue)
    # Toasts and ranks need only Redis; the board moves need the broker, and wait.
    assert down.returncode == 0, down.stderr
    assert pending() == ["board_moves"]
    assert not Notification.objects.exists()

    up = relay_once(settings.CELERY_BROKER_URL, queue)
    assert up.returncode == 0, up.stderr
    assert pending() == []

    env = {**server_environment(), "CELERY_BROKER_URL": settings.CELERY_BROKER_URL, "CELERY_QUEUE": queue}
    worker_command = [
        str(VENV_BIN / "celery"),
        "-A",
        "config",
        "worker",
        "--pool",
        "solo",
        "--without-heartbeat",
        "--loglevel",
        "INFO",
    ]
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen(worker_command, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while Notification.objects.count() < 3 and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.2)
        time.sleep(1)  # anything sent twice would land now
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    alerts = sorted(
        (n.player_id == bob.pk, n.payload["rival_points"], n.payload["your_points"])
        for n in Notification.objects.filter(kind="rival")
    )
    # (to bob?, the rival's points, yours): alice passed bob at 15 and at 65, bob passed her at 35.
    assert alerts == [(False, 35, 15), (True, 15, 10), (True, 65, 35)], (tmp_path / "worker.log").read_text()
