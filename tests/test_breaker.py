"""The Redis breaker (infra/breaker.py) on its own: what opens it, what it refuses, how one
background ping closes it, and that each change is logged once. tests/test_faults_redis.py
shows it against a real silent Redis."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infra.breaker import Breaker, Open

OPEN_SECONDS = 0.5


class Redis:
    """A stand-in Redis: answers, or times out, as told; counts what it was asked."""

    def __init__(self) -> None:
        self.silent = False
        self.asked = 0
        self.pinged = 0
        self.ping_started = threading.Event()
        self.ping_may_finish = threading.Event()
        self.ping_may_finish.set()

    def command(self) -> str:
        self.asked += 1
        if self.silent:
            raise RedisTimeoutError("Timeout reading from socket")
        return "OK"

    def ping(self) -> bool:
        self.pinged += 1
        self.ping_started.set()
        self.ping_may_finish.wait(5)
        if self.silent:
            raise RedisTimeoutError("Timeout reading from socket")
        return True


@pytest.fixture
def redis() -> Redis:
    return Redis()


@pytest.fixture
def guard(redis: Redis) -> Breaker:
    return Breaker("Redis at test:6379/0", open_seconds=OPEN_SECONDS, ping=redis.ping)


def eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_timeout_opens_it_and_then_calls_are_refused_without_asking_redis(redis: Redis, guard: Breaker) -> None:
    redis.silent = True
    with pytest.raises(RedisTimeoutError):
        guard.call(redis.command)

    for _ in range(100):
        with pytest.raises(Open):
            guard.call(redis.command)
    assert guard.is_open
    assert redis.asked == 1


def test_a_timeout_django_redis_wrapped_opens_it_too(guard: Breaker) -> None:
    def cache_get() -> None:
        try:
            raise RedisTimeoutError("Timeout reading from socket")
        except RedisTimeoutError as error:
            raise ConnectionInterrupted(connection=None) from error

    with pytest.raises(ConnectionInterrupted):
        guard.call(cache_get)
    assert guard.is_open


def test_an_error_redis_answered_with_leaves_it_closed(guard: Breaker) -> None:
    def failing_script() -> None:
        raise ResponseError("ERR Error running script")

    for _ in range(3):
        with pytest.raises(ResponseError):
            guard.call(failing_script)
    assert not guard.is_open


def test_after_the_open_period_one_background_ping_closes_it_and_no_caller_waits_for_it(
    redis: Redis, guard: Breaker
) -> None:
    redis.silent = True
    with pytest.raises(RedisTimeoutError):
        guard.call(redis.command)
    redis.silent = False
    time.sleep(OPEN_SECONDS)
    redis.ping_may_finish.clear()  # the ping hangs until told, as on a slow Redis

    refused: list[float] = []

    def caller() -> None:
        started = time.monotonic()
        with pytest.raises(Open):
            guard.call(redis.command)
        refused.append(time.monotonic() - started)

    callers = [threading.Thread(target=caller) for _ in range(20)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()
    assert redis.ping_started.wait(5)
    assert len(refused) == 20 and max(refused) < 1  # refused at once, the ping still hanging
    redis.ping_may_finish.set()

    eventually(lambda: not guard.is_open)
    assert guard.call(redis.command) == "OK"
    assert redis.pinged == 1
    assert redis.asked == 2  # the call that opened it, and the one after it closed


def test_a_ping_that_times_out_keeps_it_open_and_the_next_ping_waits_another_period(
    redis: Redis, guard: Breaker
) -> None:
    redis.silent = True
    with pytest.raises(RedisTimeoutError):
        guard.call(redis.command)
    time.sleep(OPEN_SECONDS)
    with pytest.raises(Open):
        guard.call(redis.command)  # starts a ping, which times out
    eventually(lambda: redis.pinged == 1)

    with pytest.raises(Open):
        guard.call(redis.command)  # within the new period: no second ping
    time.sleep(OPEN_SECONDS / 4)
    assert redis.pinged == 1
    time.sleep(OPEN_SECONDS)
    with pytest.raises(Open):
        guard.call(redis.command)
    eventually(lambda: redis.pinged == 2)
    assert guard.is_open
    assert redis.asked == 1


def test_opening_and_closing_are_each_logged_once(
    redis: Redis, guard: Breaker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="questboard.breaker")
    redis.silent = True
    for _ in range(50):
        with pytest.raises((RedisTimeoutError, Open)):
            guard.call(redis.command)
    redis.silent = False
    time.sleep(OPEN_SECONDS)
    with pytest.raises(Open):
        guard.call(redis.command)
    eventually(lambda: len(caplog.records) == 2)  # the ping logs it, in its own thread

    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            "Redis at test:6379/0 did not answer (Timeout reading from socket): "
            f"this process leaves it alone for {OPEN_SECONDS:g} s, then pings it",
        ),
        ("INFO", "Redis at test:6379/0 answers again: this process asks it again"),
    ]
    assert not any(r.exc_info for r in caplog.records)
