"""Finding the smallest passing value without assuming the answer is monotone.

A value *passes* when every target holds in every seed. Two ways to search ``n`` values
(indices ``0 .. n-1``, ascending):

- ``bisect``: evaluate both ends, then bisect between a failing and a passing index. The
  candidate is then checked against its neighbours: the value below must fail and the value
  above must pass. If the one above fails, the pass was a fluke of a non-monotone region, and
  the search continues above it. The result is the smallest value whose lower neighbour fails
  and whose upper neighbour passes (or that sits at an end of the range).
- ``grid``: evaluate every value; the result is the smallest value from which every larger
  value passes too.

``evaluate(indices)`` runs a batch (all seeds of several values) and returns pass/fail per index;
batches are the unit of parallelism. The search is pure given ``evaluate``: equal answers
give the same evaluations in the same order, whatever runs them.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Evaluate = Callable[[list[int]], dict[int, bool]]
Strategy = Literal["bisect", "grid"]


@dataclass
class SearchResult:
    chosen: int | None
    """Index of the chosen value, None when no value in the range qualifies."""
    passed: dict[int, bool] = field(default_factory=dict)
    """Every evaluated index and whether it passed."""
    rounds: int = 0

    @property
    def monotone(self) -> bool:
        """No evaluated value passes while a larger evaluated value fails."""
        seen_pass = False
        for index in sorted(self.passed):
            if self.passed[index]:
                seen_pass = True
            elif seen_pass:
                return False
        return True


def search(n: int, evaluate: Evaluate, strategy: Strategy = "bisect") -> SearchResult:
    """The smallest qualifying index of ``n`` values (see the module docstring)."""
    result = SearchResult(None)

    def ask(indices: list[int]) -> None:
        new = sorted({i for i in indices if 0 <= i < n} - result.passed.keys())
        if new:
            result.passed.update(evaluate(new))
            result.rounds += 1

    if n <= 0:
        return result
    if strategy == "grid":
        ask(list(range(n)))
        result.chosen = _stable_suffix_start(result.passed, n)
        return result
    ask([0, n - 1])
    if not result.passed[n - 1]:
        return result  # the largest value fails: nothing in range is known to be enough
    fail = -1 if result.passed[0] else 0
    pass_ = 0 if result.passed[0] else n - 1
    while True:
        while pass_ - fail > 1:
            middle = (fail + pass_) // 2
            ask([middle])
            if result.passed[middle]:
                pass_ = middle
            else:
                fail = middle
        ask([pass_ - 1, pass_ + 1])  # verify both neighbours
        above = pass_ + 1
        if above >= n or result.passed[above]:
            result.chosen = pass_
            return result
        # A pass with a failing value above it: continue between that failure and the next
        # known pass above it (the top of the range passes, so one exists).
        fail = above
        pass_ = min(i for i, ok in result.passed.items() if ok and i > above)


def _stable_suffix_start(passed: dict[int, bool], n: int) -> int | None:
    chosen = None
    for index in range(n - 1, -1, -1):
        if not passed[index]:
            break
        chosen = index
    return chosen
