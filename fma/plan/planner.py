"""``fma plan``: run a scenario at chosen values of one field, over seeds, against targets.

:func:`plan` is the whole procedure: it validates every value first (a bad one is an error
before anything runs), then lets :func:`fma.plan.search.search` pick which values to run, runs
all seeds of each batch through ``run`` (serial, a process pool or Dask: the result is the
same), and returns the plan JSON: the chosen value (key ``chosen``), whether the evaluated
values looked monotone, and one row per evaluated value with each target's value per seed.
"""

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from fma.api.scenario import Scenario
from fma.bench.digest import Digest, Task
from fma.bench.metrics import Target
from fma.plan.search import Strategy, search
from fma.plan.vary import Number, Vary, apply

Run = Callable[[list[Task]], list[Digest]]


def plan(
    scenario: Scenario,
    vary: Vary,
    targets: Sequence[Target],
    seeds: Sequence[int],
    run: Run,
    *,
    strategy: Strategy = "bisect",
    source: str = "scenario",
) -> dict[str, Any]:
    """Find the smallest value of ``vary`` meeting every target in every seed."""
    variants = [apply(scenario, vary, value, source) for value in vary.values]
    rows: dict[int, dict[str, Any]] = {}

    def evaluate(indices: list[int]) -> dict[int, bool]:
        tasks = [Task(variants[i], seed, str(i)) for i in indices for seed in seeds]
        digests = run(tasks)
        for i in indices:
            mine = [d for d in digests if d.label == str(i)]
            rows[i] = _row(vary.values[i], targets, mine)
        return {i: rows[i]["meets_all"] for i in indices}

    found = search(len(vary.values), evaluate, strategy)
    table = [rows[i] for i in sorted(rows)]
    return {
        "scenario": scenario.name,
        "vary": vary.path,
        "values": list(vary.values),
        "targets": [str(t) for t in targets],
        "seeds": list(seeds),
        "search": strategy,
        "chosen": None if found.chosen is None else vary.values[found.chosen],
        "monotone": found.monotone,
        "evaluated": len(table),
        "runs": len(table) * len(seeds),
        "table": table,
    }


def _row(value: Number, targets: Sequence[Target], digests: Sequence[Digest]) -> dict[str, Any]:
    """One value's outcome: per target, each seed's value, the mean, the worst, and if met."""
    detail: dict[str, Any] = {}
    seeds_meeting = 0
    for digest in digests:
        if all(t.met(digest.summary) for t in targets):
            seeds_meeting += 1
    for target in targets:
        values = [target.value(d.summary) for d in digests]
        detail[str(target)] = {
            "per_seed": values,
            "mean": round(statistics.fmean(values), 4),
            "worst": target.worst(values),
            "met": all(target.met(d.summary) for d in digests),
        }
    return {
        "value": value,
        "meets_all": seeds_meeting == len(digests),
        "seeds_meeting": seeds_meeting,
        "targets": detail,
    }
