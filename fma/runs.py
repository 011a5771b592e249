"""One simulation run, as every command needs it: the summary, and a small digest for sweeps.

``fma sim run`` keeps the whole trace of its one run; ``compare`` and ``plan`` run many and keep
only a :class:`Digest` of each (the summary, the latencies for CDFs, and time series averaged
over fixed buckets), which is small enough to send back from another process or a Dask worker.
:func:`simulate` is a plain top-level function of a :class:`Task`, so it can be pickled.
"""

import time
from typing import Any

from fma.adapters.sim.runner import ProgressFn, RunResult, run_scenario
from fma.api.scenario import Scenario
from fma.bench.digest import Digest, Task
from fma.bench.summary import PATHS, summarize
from fma.bench.timeline import gpu_states, waiting_requesters

SERIES_BUCKETS = 96
"""Time averages per series in a digest: enough for a readable plot, small to ship."""


def gpus_by_node(scenario: Scenario) -> dict[str, int]:
    """Node name -> GPU count, named as the simulator names nodes (``<pool>-<k>``)."""
    return {
        f"{pool.name}-{k}": pool.gpus_per_node
        for pool in scenario.cluster.node_pools
        for k in range(pool.count)
    }


def summarize_run(result: RunResult, wall_s: float) -> dict[str, Any]:
    """The summary JSON of a finished run (the stable keys of ``fma sim run``)."""
    scenario = result.scenario
    return summarize(
        result.trace.events,
        scenario=scenario.name,
        seed=result.seed,
        sim_time_s=scenario.duration,
        wall_s=wall_s,
        gpu_count=result.gpu_count,
        unserved=len(result.unserved),
        slo=scenario.slo.model_dump(),
    )


def simulate(task: Task) -> Digest:
    """Run ``task`` and digest it. Pure in effect: no files, no output."""
    started = time.perf_counter()
    result = run_scenario(task.scenario, task.seed)
    wall_s = time.perf_counter() - started
    return digest(task.label, result, wall_s)


def digest(label: str, result: RunResult, wall_s: float) -> Digest:
    summary = summarize_run(result, wall_s)
    summary.pop("wall_s")
    events = result.trace.events
    end_s = result.scenario.duration
    gpus = gpu_states(events, result.gpu_count, end_s, gpus_by_node(result.scenario))
    series = {
        "gpus": gpus.bucket_means(end_s, SERIES_BUCKETS),
        "waiting": waiting_requesters(events, end_s).bucket_means(end_s, SERIES_BUCKETS),
    }
    latencies: dict[str, list[float]] = {p: [] for p in PATHS}
    for e in events:
        if e["kind"] == "actuation":
            latencies[e["path"]].append(e["latency_s"])
    return Digest(label, result.seed, summary, latencies, series, round(wall_s, 3))


def run_one(
    scenario: Scenario, seed: int | None, progress: ProgressFn | None = None
) -> tuple[RunResult, float]:
    """Run a scenario in this process, timing it (for ``fma sim run``)."""
    started = time.perf_counter()
    result = run_scenario(scenario, seed, progress=progress)
    return result, time.perf_counter() - started
