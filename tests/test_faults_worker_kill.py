"""A web worker killed mid-batch (`kill -9`, as the OOM killer or a lost host would): each
batch is one statement in one transaction, so it is stored whole or not at all, the totals
stay exact, and the game server's retry of an unanswered batch completes it."""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from django.db.models import Sum

from achievements.models import Achievement, Unlock
from stats.models import PlayerGameStats, PlayerTotals
from tests.servers import Server, answers_http, gunicorn, running, wait_for
from tracker.models import Game, Player

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 12
PLAYERS_PER_BATCH = 25  # × the game's 4 achievements: a batch of 100 pairs, the most allowed


def post_batch(server: Server, key: str, pairs: list[dict[str, str]]) -> int | None:
    """The batch's status, or None when the worker died before it answered."""
    request = urllib.request.Request(
        f"{server.http}/api/v1/achievements/unlock/batch",
        data=json.dumps({"unlocks": pairs}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Api-Key {key}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (ConnectionError, urllib.error.URLError, http.client.HTTPException):
        return None


def worker_of(server: Server) -> psutil.Process:
    [worker] = psutil.Process(server.process.pid).children()
    return worker


def replaced(server: Server, killed: int) -> bool:
    """The master runs a new worker in place of `killed`, and it answers."""
    children = {child.pid for child in psutil.Process(server.process.pid).children()}
    return bool(children) and killed not in children and answers_http(server)


def in_background(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call()))
    thread.start()
    return thread, result


def test_a_worker_killed_mid_batch_leaves_each_batch_whole_or_absent(game: Game, game_key: str, tmp_path: Path) -> None:
    achievements = list(Achievement.objects.filter(game=game))
    assert len(achievements) * PLAYERS_PER_BATCH == 100
    rounds = [
        Player.objects.bulk_create(Player(username=f"r{n}p{i}", region="eu") for i in range(PLAYERS_PER_BATCH))
        for n in range(ROUNDS)
    ]
    random.seed(19)
    unanswered = 0

    with running({"web": lambda port: gunicorn(port, workers=1)}, tmp_path) as [web]:
        for players in rounds:
            pairs = [{"player_id": str(p.pk), "achievement_id": str(a.pk)} for p in players for a in achievements]
            worker = worker_of(web)
            thread, answer = in_background(lambda pairs=pairs: post_batch(web, game_key, pairs))
            time.sleep(random.uniform(0.0, 0.06))  # before, during or after the statement
            os.kill(worker.pid, signal.SIGKILL)
            thread.join(timeout=30)
            [status] = answer
            stored = Unlock.objects.filter(player__in=players).count()
            assert stored in {0, 100}, f"a killed batch left {stored} of its 100 unlocks"
            if status is None:
                unanswered += 1
            else:
                assert (status, stored) == (200, 100)
            # The master starts a new worker; the game server sends the batch again.
            wait_for(lambda pid=worker.pid: replaced(web, pid), "a new worker answering", [web], seconds=30)
            assert post_batch(web, game_key, pairs) == 200
            assert Unlock.objects.filter(player__in=players).count() == 100

    assert unanswered > 0, "no kill landed before the answer: the test proved nothing"
    points = sum(a.points for a in achievements)
    everyone = [p for players in rounds for p in players]
    assert set(PlayerGameStats.objects.filter(player__in=everyone).values_list("points", flat=True)) == {points}
    assert set(PlayerTotals.objects.filter(player__in=everyone).values_list("points", flat=True)) == {points}
    assert (
        PlayerTotals.objects.filter(player__in=everyone).aggregate(Sum("achievement_count"))["achievement_count__sum"]
        == 100 * ROUNDS
    )
