"""leaderboards.ranking: the one place the ranking rules live (score packing, ranks, percentiles)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from leaderboards import ranking
from leaderboards.ranking import EPOCH, MAX_POINTS, Entry, Ranked

# Reach times inside the span a score can tell apart: 2020 to the early 2150s.
LATEST = EPOCH + timedelta(seconds=ranking.TIME_SPAN - 1)
times = st.datetimes(
    min_value=EPOCH.replace(tzinfo=None), max_value=LATEST.replace(tzinfo=None), timezones=st.just(UTC)
)
points = st.integers(min_value=0, max_value=MAX_POINTS)


def ranks_of(points_in_board_order: list[int], *, offset: int = 0, limit: int | None = None) -> list[int]:
    """Ranks of the page [offset, offset + limit) of a board whose points are given in order."""
    page = points_in_board_order[offset : None if limit is None else offset + limit]
    ahead = sum(1 for p in points_in_board_order if page and p > page[0])
    entries = [Entry(f"p{offset + i}", p) for i, p in enumerate(page)]
    return [r.rank for r in ranking.assign_ranks(entries, offset=offset, ahead_of_first=ahead)]


# --- encode / decode_points -------------------------------------------------------------------


def test_more_points_score_higher_even_when_reached_at_the_very_last_moment() -> None:
    assert ranking.encode(11, LATEST) > ranking.encode(10, EPOCH)
    assert ranking.encode(1, LATEST) > ranking.encode(0, EPOCH)


@settings(max_examples=300)
@given(more=points, fewer=points, more_at=times, fewer_at=times)
def test_more_points_always_score_higher_whatever_the_times(
    more: int, fewer: int, more_at: datetime, fewer_at: datetime
) -> None:
    assume(more != fewer)
    more, fewer = max(more, fewer), min(more, fewer)

    assert ranking.encode(more, more_at) > ranking.encode(fewer, fewer_at)


def test_equal_points_reached_earlier_score_higher() -> None:
    at = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

    assert ranking.encode(40, at) > ranking.encode(40, at + timedelta(seconds=1))
    assert ranking.encode(40, at) > ranking.encode(40, at + timedelta(days=365))


@settings(max_examples=200)
@given(points=points, first=times, second=times)
def test_equal_points_order_by_the_second_they_were_reached(points: int, first: datetime, second: datetime) -> None:
    a, b = ranking.encode(points, first), ranking.encode(points, second)
    earlier, later = sorted([first, second])

    if int(earlier.timestamp()) == int(later.timestamp()):
        assert a == b
    else:
        assert ranking.encode(points, earlier) > ranking.encode(points, later)


def test_times_within_the_same_second_tie() -> None:
    at = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

    assert ranking.encode(40, at) == ranking.encode(40, at + timedelta(microseconds=999_999))


def test_times_before_the_epoch_count_as_the_epoch() -> None:
    assert ranking.encode(5, EPOCH - timedelta(days=30)) == ranking.encode(5, EPOCH)


@settings(max_examples=300)
@given(points=points, at=times)
def test_decode_points_round_trips_through_the_float_redis_returns(points: int, at: datetime) -> None:
    score = ranking.encode(points, at)

    assert float(score) == score  # exact as a double: Redis stores scores as doubles
    assert ranking.decode_points(score) == points
    assert ranking.decode_points(float(score)) == points
    assert ranking.lowest_score(points) <= score < ranking.lowest_score(points + 1)


def test_points_beyond_the_maximum_are_capped_rather_than_wrapping_into_another_order() -> None:
    capped = ranking.encode(MAX_POINTS + 1000, EPOCH)

    assert ranking.decode_points(capped) == MAX_POINTS
    assert capped >= ranking.encode(MAX_POINTS, LATEST)
    assert float(capped) == capped


# --- assign_ranks -----------------------------------------------------------------------------


def test_equal_points_share_a_rank_and_the_next_rank_skips() -> None:
    assert ranks_of([40, 30, 30, 20]) == [1, 2, 2, 4]
    assert ranks_of([40, 30, 30, 30, 20, 20, 10]) == [1, 2, 2, 2, 5, 5, 7]


def test_assign_ranks_keeps_ids_and_points() -> None:
    ranked = ranking.assign_ranks([Entry("a", 40), Entry("b", 30), Entry("c", 30)], offset=0, ahead_of_first=0)

    assert ranked == [Ranked("a", 40, 1), Ranked("b", 30, 2), Ranked("c", 30, 2)]


def test_everyone_tied_is_first() -> None:
    assert ranks_of([5, 5, 5]) == [1, 1, 1]


def test_a_page_that_starts_in_the_middle_of_a_tie_gives_the_tie_its_shared_rank() -> None:
    board = [50, 40, 40, 40, 10]
    page = [Entry("third", 40), Entry("fourth", 40), Entry("fifth", 10)]

    # Two players hold 40 above this page's first row, but only one player has more points.
    ranked = ranking.assign_ranks(page, offset=2, ahead_of_first=1)

    assert [r.rank for r in ranked] == [2, 2, 5]
    assert ranks_of(board, offset=2) == [2, 2, 5]


def test_a_page_that_starts_just_after_a_tie_ranks_by_position() -> None:
    assert ranks_of([50, 40, 40, 40, 10, 10], offset=4) == [5, 5]
    assert ranks_of([50, 40, 40, 40, 10, 9], offset=5) == [6]


def test_an_empty_page_has_no_ranks() -> None:
    assert ranking.assign_ranks([], offset=30, ahead_of_first=12) == []


@settings(max_examples=200)
@given(
    board=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=25).map(
        lambda ps: sorted(ps, reverse=True)
    ),
    data=st.data(),
)
def test_any_page_has_the_ranks_those_rows_have_on_the_whole_board(board: list[int], data: st.DataObject) -> None:
    offset = data.draw(st.integers(min_value=0, max_value=len(board) - 1))
    limit = data.draw(st.integers(min_value=1, max_value=len(board)))
    expected = [1 + sum(1 for other in board if other > p) for p in board]

    assert ranks_of(board) == expected
    assert ranks_of(board, offset=offset, limit=limit) == expected[offset : offset + limit]


# --- percentile -------------------------------------------------------------------------------


def test_the_top_player_of_four_is_ahead_of_75_percent() -> None:
    assert ranking.percentile(3, 4) == 75.0


def test_the_last_player_and_a_lone_player_are_ahead_of_nobody() -> None:
    assert ranking.percentile(0, 4) == 0.0
    assert ranking.percentile(0, 1) == 0.0


def test_an_empty_board_has_percentile_zero_rather_than_dividing_by_zero() -> None:
    assert ranking.percentile(0, 0) == 0.0


def test_percentile_is_rounded_to_two_decimals() -> None:
    assert ranking.percentile(1, 3) == 33.33
    assert ranking.percentile(2, 3) == 66.67
