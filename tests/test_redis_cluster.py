"""The same code on a real Redis Cluster (three primaries of the test's own): the rank index,
its one-script unlock write and reads, its rebuild and drift repair, and the rate-limit
counters. Their keys carry hash tags, so every multi-key script finds its keys on one node.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.utils import timezone
from redis.cluster import RedisCluster
from redis.crc import key_slot

from achievements.services import save_season
from infra.ratelimits import Bucket, Limiter
from leaderboards import index, selectors, sync
from leaderboards.boards import Board
from tests.cluster import redis_cluster
from tests.conftest import Api, achievement, make_player
from tracker.auth import EVERYONE
from tracker.models import Game

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    with redis_cluster(tmp_path_factory.mktemp("cluster")) as ports:
        yield ports


@pytest.fixture
def cluster_index(cluster: list[int], settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[index.RedisStore]:
    """The rank index on the cluster (RANK_INDEX_REDIS_URL), empty and built."""
    settings.RANK_INDEX_REDIS_URL = f"redis+cluster://127.0.0.1:{cluster[0]}"
    monkeypatch.setattr(index, "_store", None)
    store = index.redis_store()
    assert store is not None and isinstance(store.client, RedisCluster)
    store.client.flushall()
    sync.rebuild(store)
    yield store
    store.client.flushall()
    store.client.close()


def board_rows(response: Any) -> list[tuple[str, int, int]]:
    assert response.status_code == 200, response.content
    return [(row["username"], row["points"], row["rank"]) for row in response.json()["rankings"]]


def test_unlocks_rank_players_on_a_redis_cluster_as_on_one_redis(
    cluster_index: index.RedisStore, api: Api, game: Game, game_key: str
) -> None:
    now = timezone.now()
    season = save_season(game=game, name="Cup", starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1))
    alice, bob, chen = make_player("alice", region="eu"), make_player("bob", region="na"), make_player("chen")
    client = api.as_key(game_key)

    for player, api_name in [
        (alice, "ACE_PILOT"),
        (bob, "FIRST_FLIGHT"),
        (chen, "FIRST_FLIGHT"),
        (chen, "SECRET_ENDING"),
    ]:
        response = client.post(
            "/api/v1/achievements/unlock",
            {"player_id": str(player.pk), "achievement": api_name},
            format="json",
        )
        assert response.status_code == 201, response.content
    # The rank in the unlock's reply came from the cluster, in the unlock's one script.
    assert response.json()["new_rank"] == 1

    anyone = api.anonymous()
    assert board_rows(anyone.get(f"/api/v1/leaderboards/{game.pk}")) == [
        ("chen", 60, 1),
        ("alice", 25, 2),
        ("bob", 10, 3),
    ]
    assert board_rows(anyone.get(f"/api/v1/leaderboards/{game.pk}?region=eu")) == [("chen", 60, 1), ("alice", 25, 2)]
    assert board_rows(anyone.get(f"/api/v1/seasons/{season.pk}/standings")) == [
        ("chen", 60, 1),
        ("alice", 25, 2),
        ("bob", 10, 3),
    ]
    # ...and they were the cluster's answers, not SQL's.
    for board in (Board.game(game.pk), Board.game(game.pk, "eu"), Board.everywhere("na"), Board.season(season.pk)):
        assert selectors.page(EVERYONE, board).source == "redis"
        assert cluster_index.page(board, 0, 10) == index.SQL.page(board, 0, 10)


def test_every_rank_index_key_lives_in_one_slot(cluster_index: index.RedisStore, game: Game) -> None:
    now = timezone.now()
    season = save_season(game=game, name="Cup", starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1))
    for name in ("alice", "bob"):
        player = make_player(name, region="eu")
        sync.push_and_rank(
            [sync.Change(board, str(player.pk), 1) for board in (Board.game(game.pk), Board.season(season.pk))], []
        )

    keys = cluster_index.board_keys()

    assert len(keys) >= 3  # the READY key, the game's board, the season's board
    assert {key_slot(key.encode()) for key in keys} == {key_slot(index.READY_KEY.encode())}


def test_a_rebuild_and_the_drift_repair_run_on_a_redis_cluster(
    cluster_index: index.RedisStore, game: Game, other_game: Game
) -> None:
    alice, bob = make_player("alice", region="eu"), make_player("bob", region="na")
    from tests.helpers import give

    give(alice, achievement(game, "ACE_PILOT"))
    give(bob, achievement(other_game, "FIRST_ORE"))
    cluster_index.client.flushall()  # the cluster lost everything: reads fall back to SQL

    assert selectors.page(EVERYONE, Board.everywhere()).source == "sql"
    sync.run_sync(cluster_index)  # the next pass rebuilds every board

    for board in (Board.game(game.pk), Board.game(other_game.pk, "na"), Board.everywhere(), Board.everywhere("eu")):
        assert selectors.page(EVERYONE, board).source == "redis"
        assert cluster_index.page(board, 0, 10) == index.SQL.page(board, 0, 10)
    assert cluster_index.total(Board.everywhere()) == 2


def test_rate_limits_count_on_a_redis_cluster(cluster: list[int]) -> None:
    limiter = Limiter(f"redis+cluster://127.0.0.1:{cluster[0]}", timeout=1.0)
    bucket = Bucket("player", "cluster-test", "3/minute")

    verdicts = [limiter.charge([bucket]).allowed for _ in range(5)]

    assert verdicts == [True, True, True, False, False]
    # Counted on the cluster (not in this process's fallback memory): a second limiter,
    # as another process would have, sees the window full.
    assert not Limiter(f"redis+cluster://127.0.0.1:{cluster[0]}", timeout=1.0).charge([bucket]).allowed
    keys = [key for port in cluster for key in redis.Redis(port=port).keys("qb:rl:*")]
    assert keys and all(b"{" in key for key in keys)
