"""The plan's search: smallest passing value, neighbours verified, non-monotone runs handled."""

from collections.abc import Callable

import pytest

from fma.plan.search import search


def oracle(
    passes: Callable[[int], bool],
) -> tuple[Callable[[list[int]], dict[int, bool]], list[list[int]]]:
    calls: list[list[int]] = []

    def evaluate(indices: list[int]) -> dict[int, bool]:
        calls.append(indices)
        return {i: passes(i) for i in indices}

    return evaluate, calls


@pytest.mark.parametrize("threshold", [0, 1, 5, 17, 31])
def test_bisect_finds_the_threshold_and_checks_both_neighbours(threshold: int) -> None:
    evaluate, calls = oracle(lambda i: i >= threshold)
    result = search(32, evaluate)
    assert result.chosen == threshold
    assert result.monotone
    for neighbour in (threshold - 1, threshold + 1):
        if 0 <= neighbour < 32:
            assert neighbour in result.passed
    assert len(result.passed) <= 9  # far fewer than 32 values
    assert all(len(set(c)) == len(c) for c in calls)


def test_bisect_skips_a_lone_pass_below_a_failure() -> None:
    # 15 passes by luck (bisection lands on it first), 16 fails, from 20 on everything passes.
    evaluate, _ = oracle(lambda i: i == 15 or i >= 20)
    result = search(32, evaluate)
    assert result.chosen == 20
    assert not result.monotone
    assert result.passed[15] is True and result.passed[16] is False
    assert result.passed[19] is False and result.passed[21] is True


def test_nothing_in_range_passes() -> None:
    evaluate, calls = oracle(lambda i: False)
    result = search(8, evaluate)
    assert result.chosen is None
    assert calls == [[0, 7]]


def test_grid_evaluates_everything_and_wants_a_stable_suffix() -> None:
    evaluate, calls = oracle(lambda i: i in (2, 5, 6, 7))
    result = search(8, evaluate, "grid")
    assert calls == [list(range(8))]
    assert result.chosen == 5
    assert not result.monotone


def test_same_answers_same_evaluations() -> None:
    first, calls_a = oracle(lambda i: i >= 9)
    second, calls_b = oracle(lambda i: i >= 9)
    search(20, first)
    search(20, second)
    assert calls_a == calls_b
