"""infra/locks.py: named advisory locks, taken by one database session at a time.

Each test holds a lock from a second database session, as another process would."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from infra.locks import hold_if_free, lock_until_commit

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def other_process() -> Iterator[BaseDatabaseWrapper]:
    other = connections.create_connection("default")
    try:
        yield other
    finally:
        other.close()


def test_a_lock_held_elsewhere_is_not_taken_without_waiting(other_process: BaseDatabaseWrapper) -> None:
    with hold_if_free("job:1", connection=other_process) as theirs:
        assert theirs
        with hold_if_free("job:1") as mine:
            assert not mine
        with transaction.atomic():
            assert not lock_until_commit("job:1", wait=False)
        with hold_if_free("job:2") as another:
            assert another  # another name is another lock

    with hold_if_free("job:1") as mine:
        assert mine  # released when the holder's block ended


def test_a_transaction_lock_lasts_until_commit(other_process: BaseDatabaseWrapper) -> None:
    with transaction.atomic():
        assert lock_until_commit("session:1")
        with hold_if_free("session:1", connection=other_process) as theirs:
            assert not theirs

    with hold_if_free("session:1", connection=other_process) as theirs:
        assert theirs


def test_a_waiting_lock_is_taken_once_the_holder_lets_go(other_process: BaseDatabaseWrapper) -> None:
    with hold_if_free("rebuild:1", connection=other_process):
        pass
    with transaction.atomic():
        assert lock_until_commit("rebuild:1")
