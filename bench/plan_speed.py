"""Wall time of a capacity plan, serial versus the local process pool.

The plan: diurnal-day with ``cluster.node_pools[0].count`` from 2 to 21 (20 values), every value
run (``grid``) with 5 seeds, against two targets: 100 simulated days. It runs twice, once in
this process and once on a process pool with one worker per core, and checks both give the
same plan JSON (the executor must change how fast, never what). A third run, ``bisect`` on the
pool, shows how many of those runs the default search needs for the same answer.

The machine may be shared: the result records the load average around each timing and a probe
of the parallelism actually available (a pure-Python busy loop, alone and on the same pool), so
a speed-up below the core count can be told apart from contention.

Run from the repository root: ``.venv/bin/python -m bench.plan_speed``; it writes
``bench/results/plan_speed-<date>.json``.
"""

import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import record
from fma.api.loading import load_scenario
from fma.bench.digest import Digest, Task
from fma.bench.metrics import parse_target
from fma.plan.planner import plan
from fma.plan.search import Strategy
from fma.plan.vary import parse_vary
from fma.sweep import default_workers, run_tasks

SCENARIO = Path("sim/scenarios/diurnal-day.yaml")
VARY = "cluster.node_pools[0].count=2..21"
TARGETS = ("p95_wait_s<=300", "hot_hit_rate>=0.5")
SEEDS = 5


PROBE_LOOPS = 15_000_000


def burn(n: int) -> int:
    """A pure-Python busy loop: the same kind of work as a simulation, without the simulation."""
    total = 0
    for i in range(n):
        total += i & 7
    return total


def available_parallelism(workers: int) -> float:
    """How many times faster ``workers`` busy loops finish on a pool than one after another."""
    started = time.perf_counter()
    for _ in range(workers):
        burn(PROBE_LOOPS)
    alone_s = time.perf_counter() - started
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        list(pool.map(burn, [1] * workers))  # start the workers before timing
        started = time.perf_counter()
        list(pool.map(burn, [PROBE_LOOPS] * workers))
        pooled_s = time.perf_counter() - started
    return round(alone_s / pooled_s, 2)


def timed_plan(
    workers: int, strategy: Strategy = "grid"
) -> tuple[dict[str, Any], dict[str, float]]:
    scenario = load_scenario(SCENARIO)
    seeds = list(range(scenario.seed, scenario.seed + SEEDS))

    def run(tasks: list[Task]) -> list[Digest]:
        return run_tasks(tasks, workers=workers)

    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    result = plan(
        scenario,
        parse_vary(VARY),
        [parse_target(t) for t in TARGETS],
        seeds,
        run,
        strategy=strategy,
        source=str(SCENARIO),
    )
    wall_s = time.perf_counter() - started
    return result, {
        "wall_s": round(wall_s, 1),
        "load_1min_before": round(load_before, 2),
        "load_1min_after": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    pool_workers = default_workers()
    probe = available_parallelism(pool_workers)
    print(f"busy-loop probe: x{probe} on {pool_workers} workers")
    serial, serial_time = timed_plan(1)
    print(f"serial: {serial['runs']} runs, {serial_time}")
    pooled, pool_time = timed_plan(pool_workers)
    print(f"pool of {pool_workers}: {pooled['runs']} runs, {pool_time}")
    serial_s, pool_s = serial_time["wall_s"], pool_time["wall_s"]
    bisected, bisect_time = timed_plan(pool_workers, "bisect")
    print(f"bisect on the pool: {bisected['runs']} runs, {bisect_time}")
    same = json.dumps(serial, sort_keys=True) == json.dumps(pooled, sort_keys=True)
    path = record(
        "plan_speed",
        {
            "what": f"fma plan {SCENARIO} --vary {VARY} "
            + " ".join(f"--target '{t}'" for t in TARGETS)
            + f" --seeds {SEEDS} --search grid",
            "runs": serial["runs"],
            "simulated_days": serial["runs"] * load_scenario(SCENARIO).duration / 86400,
            "serial_s": serial_s,
            "pool_s": pool_s,
            "serial": serial_time,
            "pool": pool_time,
            "pool_workers": pool_workers,
            "speedup": round(serial_s / pool_s, 2),
            "probe_speedup": probe,
            "same_result": same,
            "chosen": serial["chosen"],
            "monotone": serial["monotone"],
            "bisect": {
                "runs": bisected["runs"],
                "chosen": bisected["chosen"],
                "pool_s": bisect_time["wall_s"],
            },
        },
    )
    print(f"speed-up x{serial_s / pool_s:.2f}; same result: {same}; chosen {serial['chosen']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
