"""Simulator speed: simulated events per wall second, and a 24-hour, 1,000-node day.

Runs ``SCENARIO_24H`` (1,000 nodes x 8 GPUs, 24 h, over 100,000 actuations, the launcher path)
once on one core, and reports:

- ``simpy_events_per_s``: discrete events the SimPy kernel processed per wall second (timeouts,
  process steps, callbacks: every scheduled event);
- ``trace_events_per_s``: records written to ``events.jsonl`` per wall second;
- ``wall_s``: wall time of the simulation (the summary and checkers are timed separately).

Targets (the project's goals for this benchmark): at least 200,000 events/s and at most 60 s for
the day.
``--profile`` also writes a cProfile of the run (top functions by own time) next to the result.

    .venv/bin/python bench/sim_speed.py [--nodes N] [--hours H] [--profile]
"""

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path
from typing import Any

import simpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, baseline, record
from fma.adapters.sim import runner
from fma.api.scenario import Scenario
from fma.bench.invariants import check_all


def scenario_24h(nodes: int = 1000, hours: float = 24.0) -> Scenario:
    """Fifty models (a Zipf mix of 16 GiB and 2-GPU 64 GiB ones) on nodes x 8 H100s."""
    scale = nodes / 1000.0
    return Scenario.model_validate(
        {
            "name": f"sim-speed-{nodes}x8-{hours:g}h",
            "seed": 1,
            "duration": hours * 3600.0,
            "cluster": {
                "node_pools": [
                    {
                        "name": "h100",
                        "count": nodes,
                        "gpus_per_node": 8,
                        "gpu_memory_gib": 80,
                        "host_memory_gib": 1024,
                        "h2d_gbps": 25,
                        "d2h_gbps": 25,
                        "disk_gbps": 5,
                    }
                ]
            },
            "models": [
                {"name": "small", "copies": 40, "weights_gib": 16, "engine_init_s": 20},
                {"name": "big", "copies": 10, "weights_gib": 64, "gpus": 2, "engine_init_s": 45},
            ],
            "policy": {"actuation": "fma", "eviction": "lru"},
            "launchers": {"max_instances": 4, "per_node": 1},
            "demand": [
                {
                    "models": ["small-*"],
                    "zipf_s": 1.0,
                    "rate_per_h": 3600 * scale,
                    "hold": "20m",
                },
                {"models": ["big-*"], "zipf_s": 1.0, "rate_per_h": 900 * scale, "hold": "30m"},
            ],
        }
    )


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that remembers itself, so its event counter can be read after."""

    last: "CountingEnvironment | None" = None

    def __init__(self, initial_time: float = 0) -> None:
        super().__init__(initial_time)
        CountingEnvironment.last = self

    def scheduled(self) -> int:
        """Events scheduled so far (SimPy numbers every event it schedules)."""
        return next(self._eid)


def run_once(scenario: Scenario, *, profile: bool) -> tuple[dict[str, Any], str | None]:
    runner.simpy.Environment = CountingEnvironment  # type: ignore[misc]
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    result = runner.run_scenario(scenario)
    if profiler is not None:
        profiler.disable()
    wall_s = time.perf_counter() - started
    env = CountingEnvironment.last
    assert env is not None
    simpy_events = env.scheduled()
    events = result.trace.events
    checked = time.perf_counter()
    violations = check_all(events)
    check_s = time.perf_counter() - checked
    actuations = sum(1 for e in events if e["kind"] == "actuation")
    figures = {
        "scenario": scenario.name,
        "nodes": scenario.cluster.node_pools[0].count,
        "gpus": result.gpu_count,
        "sim_hours": scenario.duration / 3600.0,
        "wall_s": round(wall_s, 2),
        "simpy_events": simpy_events,
        "simpy_events_per_s": round(simpy_events / wall_s),
        "trace_events": len(events),
        "trace_events_per_s": round(len(events) / wall_s),
        "actuations": actuations,
        "reconciles": result.reconciles,
        "speed_up_x": round(scenario.duration / wall_s),
        "check_all_s": round(check_s, 2),
        "invariant_violations": len(violations),
    }
    text = None
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(40)
        text = out.getvalue()
    return figures, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--profile", action="store_true", help="also write a cProfile")
    parser.add_argument("--no-record", action="store_true", help="print only")
    parser.add_argument(
        "--baseline", metavar="REF", help="also run this benchmark as it was at commit REF"
    )
    args = parser.parse_args()
    scenario = scenario_24h(args.nodes, args.hours)
    figures, profile = run_once(scenario, profile=args.profile)
    figures["targets"] = {
        "simpy_events_per_s_min": 200_000,
        "wall_s_max_for_24h_1000_nodes": 60,
        "actuations_min": 100_000,
    }
    print(figures)
    if args.baseline:
        argv = ["bench/sim_speed.py", "--nodes", str(args.nodes), "--hours", str(args.hours)]
        before = baseline(args.baseline, argv, "sim_speed")
        keep = ("wall_s", "simpy_events_per_s", "actuations", "reconciles", "check_all_s")
        figures["baseline"] = {"commit": before["commit"], **{k: before[k] for k in keep}}
        print(f"baseline {before['commit']}: {figures['baseline']}")
    if args.no_record:
        if profile:
            print(profile)
        return
    name = "sim_speed" + ("-profiled" if args.profile else "")
    path = record(name, figures)
    print(f"wrote {path}")
    if profile:
        prof_path = RESULTS / f"{path.stem}.prof.txt"
        prof_path.write_text(profile)
        print(f"wrote {prof_path}")


if __name__ == "__main__":
    main()
