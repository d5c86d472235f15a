"""Many processes, one truth: the production process set (Procfile) on shared PostgreSQL,
Redis and RabbitMQ — two gunicorn web processes, one Daphne, two Celery workers and two
outbox relays — takes unlocks spread over both web processes, some sent twice at once, and
every unlock is counted once, every board is right, every live event arrives once, and the
background work is shared by both workers with nothing done twice.

The processes are real subprocesses reading the test database pytest-django created (so
the test is transactional) on the test run's Redis and a broker queue of the test's own.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db.models import Count, Sum
from rest_framework_simplejwt.tokens import RefreshToken
from websockets.asyncio import client as websockets_client

from achievements.models import Unlock
from achievements.services import import_manifest
from leaderboards import index, ranking, sync
from leaderboards.boards import Board
from stats.models import PlayerGameStats, PlayerTotals
from tests.conftest import make_player
from tests.helpers import UNLOCK_URL, give, manifest
from tests.servers import (
    Background,
    Server,
    celery,
    daphne,
    delete_queue,
    gunicorn,
    post_json,
    relay_outbox,
    running,
    wait_for,
)
from tracker.models import Friendship, Game, Notification, OutboxEvent, Player
from tracker.services import game_key_create

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not settings.CELERY_BROKER_URL, reason="needs RabbitMQ (CELERY_BROKER_URL): a worker beside the servers"
    ),
]

PLAYERS = 40
ACHIEVEMENTS = 5  # 10 points each; every player unlocks 4 of them
RIVALS = 10  # players 0-9 each pass a friend who holds 10 points
WAIT_SECONDS = 60.0
STARTUP_SECONDS = 60.0  # seven processes importing Django at once on a small machine
SUCCEEDED = re.compile(r"Task (?P<task>[\w.]+)\[(?P<id>[\w-]+)\] succeeded")


class Listener:
    """WebSockets of `/ws/me/` held on a Daphne for some players, in a thread of their own,
    recording every frame each receives."""

    def __init__(self, ws_url: str, players: list[Player]) -> None:
        self.url = ws_url
        self.tokens = {str(p.pk): str(RefreshToken.for_user(p).access_token) for p in players}
        self.frames: dict[str, list[dict[str, Any]]] = {player_id: [] for player_id in self.tokens}
        self.subscribed = threading.Event()
        self.failed: list[BaseException] = []
        self.loop = asyncio.new_event_loop()
        self.stopping: asyncio.Event | None = None
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.listen(),), daemon=True)

    async def listen(self) -> None:
        self.stopping = asyncio.Event()
        try:
            connections = [
                await websockets_client.connect(f"{self.url}/ws/me/?token={token}", origin=self.url)
                for token in self.tokens.values()
            ]
            for connection in connections:
                assert json.loads(await asyncio.wait_for(connection.recv(), 10))["type"] == "subscribed"
            self.subscribed.set()
            readers = [
                asyncio.create_task(self.read(player_id, connection))
                for player_id, connection in zip(self.tokens, connections, strict=True)
            ]
            await self.stopping.wait()
            for reader in readers:
                reader.cancel()
            for connection in connections:
                await connection.close()
        except BaseException as error:
            self.failed.append(error)
            self.subscribed.set()

    async def read(self, player_id: str, connection: Any) -> None:
        async for raw in connection:
            self.frames[player_id].append(json.loads(raw))

    def of_type(self, player_id: str, event: str) -> list[dict[str, Any]]:
        return [frame["data"] for frame in self.frames[player_id] if frame["type"] == event]

    def __enter__(self) -> Listener:
        self.thread.start()
        assert self.subscribed.wait(20) and not self.failed, f"sockets did not open: {self.failed}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.stopping is not None:
            self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(10)


@pytest.fixture
def queue() -> Iterator[str]:
    """A Celery queue of this test's own, deleted after."""
    name = f"many-processes-{uuid.uuid4().hex[:8]}"
    yield name
    delete_queue(name)


def test_unlocks_spread_over_every_process_count_once_rank_right_and_are_announced_once(
    rank_index: Any, tmp_path: Path, queue: str
) -> None:
    game = import_manifest(manifest=manifest("swarm", ACHIEVEMENTS)).game
    key = game_key_create(game=game)
    achievements = list(game.achievements.order_by("api_name"))
    players = [make_player(f"player{i:02d}", region="eu" if i % 2 else "na") for i in range(PLAYERS)]
    rivals = [make_player(f"rival{i:02d}", region="eu") for i in range(RIVALS)]
    for riser, rival in zip(players, rivals, strict=False):
        Friendship.objects.create(requester=riser, addressee=rival, status=Friendship.Status.ACCEPTED)
        give(rival, achievements[0])  # 10 points: passed by the riser's second unlock
    sync.rebuild(rank_index)

    # Each player unlocks 4 of the 5 achievements; every fourth of those is sent twice.
    wanted = [(p, a) for i, p in enumerate(players) for j, a in enumerate(achievements) if (i + j) % ACHIEVEMENTS != 0]
    requests = wanted + wanted[::4]
    watched = players[:RIVALS] + rivals

    environment = {"CELERY_BROKER_URL": settings.CELERY_BROKER_URL, "CELERY_QUEUE": queue}
    worker_options = ("-l", "info", "-c", "1", "--without-gossip", "--without-mingle", "--without-heartbeat")
    with running(
        {"web-a": gunicorn, "web-b": gunicorn, "ws": daphne},
        tmp_path,
        environment,
        background={
            "worker-a": Background(celery("worker", *worker_options, "-n", f"a-{queue}@%h"), ready=" ready."),
            "worker-b": Background(celery("worker", *worker_options, "-n", f"b-{queue}@%h"), ready=" ready."),
            "relay-a": Background(relay_outbox()),
            "relay-b": Background(relay_outbox()),
        },
        startup_seconds=STARTUP_SECONDS,
    ) as started:
        web_a, web_b, ws, worker_a, worker_b, *_ = started
        headers = {"Authorization": f"Api-Key {key}"}

        def send(numbered: tuple[int, tuple[Player, Any]]) -> tuple[tuple[str, str], int, dict[str, Any]]:
            n, (player, achievement) = numbered
            web = (web_a, web_b)[n % 2]
            body = {"player_id": str(player.pk), "achievement_id": str(achievement.pk)}
            status, answer = post_json(f"{web.http}{UNLOCK_URL}", body, headers)
            return (str(player.pk), str(achievement.pk)), status, answer

        with Listener(ws.ws, watched) as listener, ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(send, enumerate(requests)))

            def announced() -> bool:
                return all(
                    len(listener.of_type(str(p.pk), "achievement.unlocked")) >= 4 for p in players[:RIVALS]
                ) and all(listener.of_type(str(r.pk), "rival.passed") for r in rivals)

            wait_for(announced, "the live events did not all arrive", started, seconds=WAIT_SECONDS)
            wait_for(
                lambda: not OutboxEvent.objects.exists(), "the outbox was not relayed", started, seconds=WAIT_SECONDS
            )
            time.sleep(1.0)  # a frame relayed or a task run twice would arrive by now
        web_boards = {
            web.name: [
                get_json(f"{web.http}/api/v1/leaderboards/{game.pk}"),
                get_json(f"{web.http}/api/v1/leaderboards/{game.pk}?region=eu"),
                get_json(f"{web.http}/api/v1/leaderboards/global"),
            ]
            for web in (web_a, web_b)
        }
        worker_runs = {worker.name: succeeded(worker) for worker in (worker_a, worker_b)}
        rarity_refreshes = sum(
            worker.log.read_text().count("achievements.tasks.refresh_rarity[") for worker in (worker_a, worker_b)
        )

    # Every unlock counted once, however many processes and duplicates.
    statuses = Counter(status for _, status, _ in answers)
    assert statuses == {201: len(wanted), 200: len(requests) - len(wanted)}, statuses
    created = [pair for pair, status, _ in answers if status == 201]
    assert sorted(created) == sorted((str(p.pk), str(a.pk)) for p, a in wanted)
    assert Unlock.objects.filter(game=game, player__in=players).count() == len(wanted)
    assert_counters_equal_the_unlocks(game)

    # Every board, read through either web process, is the SQL order with the ranking rules.
    for web, (game_board, eu_board, global_board) in web_boards.items():
        for answer, board in (
            (game_board, Board.game(game.pk)),
            (eu_board, Board.game(game.pk, "eu")),
            (global_board, Board.everywhere()),
        ):
            assert answer["rankings"] == expected_rankings(board), (web, board.key)
            assert answer["total"] == board.rows().count(), (web, board.key)

    # Every live event once: each unlock's toast, each rival alert, recorded once.
    for player in players[:RIVALS]:
        toasts = [event["achievement"]["id"] for event in listener.of_type(str(player.pk), "achievement.unlocked")]
        assert sorted(toasts) == sorted(str(a.pk) for p, a in wanted if p == player), player.username
    for riser, rival in zip(players, rivals, strict=False):
        alerts = [event["rival_id"] for event in listener.of_type(str(rival.pk), "rival.passed")]
        assert alerts == [str(riser.pk)], rival.username
        assert Notification.objects.filter(player=rival, kind=Notification.Kind.RIVAL).count() == 1
    assert Notification.objects.filter(player__in=players).count() == 0

    # Background work shared by both workers, each task run by one of them, once.
    for name, runs in worker_runs.items():
        assert runs, f"{name} ran no task"
    every_run = [task_id for runs in worker_runs.values() for task_id, _ in runs]
    assert len(every_run) == len(set(every_run)), "a task ran twice"
    tasks = Counter(task for runs in worker_runs.values() for _, task in runs)
    assert tasks["leaderboards.tasks.announce_board_moves"] >= 2
    # However many relays and workers saw the game's unlocks, one rarity refresh was
    # scheduled (debounced for a minute: received by one worker, not yet run).
    assert rarity_refreshes == 1


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def succeeded(worker: Server) -> list[tuple[str, str]]:
    """(task id, task name) of every task a worker ran to the end (its log, `-l info`)."""
    return [(m["id"], m["task"]) for m in SUCCEEDED.finditer(worker.log.read_text(errors="replace"))]


def expected_rankings(board: Board) -> list[dict[str, Any]]:
    """A board's first page as the API must give it: its rows in the SQL order, ranked by
    `leaderboards.ranking`."""
    rows = list(board.rows().order_by(*index.ORDER).values_list("player_id", "player__username", "points")[:100])
    ranked = ranking.assign_ranks(
        [ranking.Entry(str(player_id), points) for player_id, _, points in rows], offset=0, ahead_of_first=0
    )
    return [
        {"player_id": str(player_id), "username": username, "points": points, "rank": entry.rank}
        for (player_id, username, points), entry in zip(rows, ranked, strict=True)
    ]


def assert_counters_equal_the_unlocks(game: Game) -> None:
    """PlayerGameStats and PlayerTotals hold exactly the sums of the Unlock rows."""
    sums = {
        row["player"]: (row["points"], row["count"])
        for row in Unlock.objects.values("player").annotate(points=Sum("achievement__points"), count=Count("id"))
    }
    per_game = {
        player_id: (points, count)
        for player_id, points, count in PlayerGameStats.objects.filter(game=game).values_list(
            "player_id", "points", "achievement_count"
        )
    }
    totals = {
        player_id: (points, count)
        for player_id, points, count in PlayerTotals.objects.values_list("player_id", "points", "achievement_count")
    }
    assert per_game == sums
    assert totals == sums
