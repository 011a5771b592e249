"""Simulator speed: a simulated day on 1,000 nodes, against a bare SimPy loop; and the cost of an
actuation as sleepers pile up on the nodes.

Runs ``SCENARIO_24H`` (1,000 nodes x 8 GPUs, 24 h, over 100,000 actuations, the launcher path)
once on one core, and reports:

- ``wall_s``: wall time of the simulation (the summary and checkers are timed separately);
- ``actuations_per_s``: actuations simulated per wall second, beside ``bare_simpy``: the same
  number of SimPy events run by a bare loop (timeouts of 1,000 processes, nothing else) in the
  same process, and what share of the day's wall time that kernel work is;
- ``simpy_events_per_s``: discrete events the SimPy kernel processed per wall second (timeouts,
  process steps, callbacks: every scheduled event);
- ``trace_events_per_s``: records written to ``events.jsonl`` per wall second.

``--sleepers`` instead runs a small cluster under three model mixes, from few sleepers per node
to many, and records the wall time per actuation beside the time-averaged sleepers per node: an
actuation must not cost more when a node holds more sleepers.

Targets (the project's goals for this benchmark): the day in at most 30 s on one core, and never
slower than commit f779f38 measured in the same run (``--baseline f779f38``).
``--profile`` also writes a cProfile of the run (top functions by own time) next to the result.

    .venv/bin/python bench/sim_speed.py [--nodes N] [--hours H] [--profile] [--baseline REF]
    .venv/bin/python bench/sim_speed.py --sleepers
"""

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import simpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fma.adapters.sim import compiled

if "--compiled" in sys.argv:  # before any compiled module is imported
    compiled.build()
    compiled.enable()

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


def bare_simpy(events: int, processes: int = 1000) -> dict[str, float]:
    """``events`` timeouts of ``processes`` looping processes (the same number of SimPy events
    as the simulation's, at a comparable queue depth), timed in this process."""
    env = simpy.Environment()
    per_process = max(1, events // processes)

    def loop(delay_s: float) -> Generator[simpy.Event, None, None]:
        for _ in range(per_process):
            yield env.timeout(delay_s)

    for k in range(processes):
        env.process(loop(1.0 + k / processes))
    started = time.perf_counter()
    env.run()
    wall_s = time.perf_counter() - started
    ran = per_process * processes
    return {"events": ran, "wall_s": round(wall_s, 3), "events_per_s": round(ran / wall_s)}


def sleeper_scenario(models: int, hours: float = 6.0) -> Scenario:
    """20 nodes x 8 GPUs with ``models`` models of 4 GiB in a uniform mix and room for every
    sleeper (large launchers, no per-GPU budget): the more models, the more sleepers a node
    keeps."""
    return Scenario.model_validate(
        {
            "name": f"sim-speed-sleepers-{models}",
            "seed": 1,
            "duration": hours * 3600.0,
            "cluster": {"node_pools": [{"name": "n", "count": 20, "gpus_per_node": 8}]},
            "models": [{"name": "m", "copies": models, "weights_gib": 4}],
            "policy": {"actuation": "fma", "eviction": "lru", "sleeper_residue_gib": 1},
            "launchers": {"max_instances": 64, "per_node": 1},
            # about 5 replicas per node at a time: the nodes are busy, never overrun
            "demand": [{"models": ["m-*"], "zipf_s": 0, "rate_per_h": 30 * 20, "hold": "10m"}],
        }
    )


def sleepers_per_node(events: list[dict[str, Any]], nodes: int, end_s: float) -> float:
    """Time-averaged sleeping instances per node over a run."""
    sleeping = 0
    area = last = 0.0
    asleep: set[tuple[str, str]] = set()
    for e in events:
        kind = e["kind"]
        if not kind.startswith("instance_"):
            continue
        area += sleeping * (e["t"] - last)
        last = e["t"]
        key = (e["provider"], e["instance"])
        if kind == "instance_sleeping":
            asleep.add(key)
        elif key in asleep:
            asleep.discard(key)
        sleeping = len(asleep)
    area += sleeping * (end_s - last)
    return round(area / end_s / nodes, 2)


def sleeper_sweep() -> dict[str, Any]:
    rows = []
    for models in (2, 16, 128):
        scenario = sleeper_scenario(models)
        started = time.perf_counter()
        result = runner.run_scenario(scenario)
        wall_s = time.perf_counter() - started
        events = result.trace.events
        actuations = sum(1 for e in events if e["kind"] == "actuation")
        rows.append(
            {
                "models": models,
                "sleepers_per_node": sleepers_per_node(events, 20, scenario.duration),
                "actuations": actuations,
                "reconciles": result.reconciles,
                "wall_s": round(wall_s, 2),
                "wall_ms_per_actuation": round(1000 * wall_s / max(1, actuations), 3),
                "reconciles_per_actuation": round(result.reconciles / max(1, actuations), 2),
            }
        )
        print(rows[-1])
    return {"sweep": rows}


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
    bare = bare_simpy(simpy_events)
    figures = {
        "scenario": scenario.name,
        "nodes": scenario.cluster.node_pools[0].count,
        "gpus": result.gpu_count,
        "sim_hours": scenario.duration / 3600.0,
        "wall_s": round(wall_s, 2),
        "actuations_per_s": round(
            sum(1 for e in result.trace.events if e["kind"] == "actuation") / wall_s, 1
        ),
        "bare_simpy": {**bare, "share_of_wall": round(bare["wall_s"] / wall_s, 3)},
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


def load_before_after(before: float) -> list[float]:
    """The machine's 1-minute load average when the run began and now: other work on the
    machine slows the run down."""
    return [round(before, 2), round(os.getloadavg()[0], 2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--profile", action="store_true", help="also write a cProfile")
    parser.add_argument("--no-record", action="store_true", help="print only")
    parser.add_argument(
        "--baseline", metavar="REF", help="also run this benchmark as it was at commit REF"
    )
    parser.add_argument(
        "--sleepers", action="store_true", help="the cost per actuation as sleepers pile up"
    )
    parser.add_argument(
        "--compiled",
        action="store_true",
        help="with the simulator compiled by mypyc (fma.adapters.sim.compiled)",
    )
    args = parser.parse_args()
    loaded_before = os.getloadavg()[0]
    if args.sleepers:
        sweep = sleeper_sweep()
        sweep["load_average_1m_before_after"] = load_before_after(loaded_before)
        if not args.no_record:
            print(f"wrote {record('sim_speed-sleepers', sweep)}")
        return
    scenario = scenario_24h(args.nodes, args.hours)
    figures, profile = run_once(scenario, profile=args.profile)
    figures["compiled"] = args.compiled
    figures["targets"] = {
        "wall_s_max_for_24h_1000_nodes": 30,
        "not_slower_than": "f779f38",
        "actuations_min": 100_000,
    }
    print(figures)
    if args.baseline:
        argv = ["bench/sim_speed.py", "--nodes", str(args.nodes), "--hours", str(args.hours)]
        before = baseline(args.baseline, argv, "sim_speed")
        keep = (
            "wall_s",
            "simpy_events_per_s",
            "actuations",
            "reconciles",
            "check_all_s",
            "trace_events",
        )
        figures["baseline"] = {"commit": before["commit"], **{k: before[k] for k in keep}}
        print(f"baseline {before['commit']}: {figures['baseline']}")
    figures["load_average_1m_before_after"] = load_before_after(loaded_before)
    if args.no_record:
        if profile:
            print(profile)
        return
    name = (
        "sim_speed" + ("-compiled" if args.compiled else "") + ("-profiled" if args.profile else "")
    )
    path = record(name, figures)
    print(f"wrote {path}")
    if profile:
        prof_path = RESULTS / f"{path.stem}.prof.txt"
        prof_path.write_text(profile)
        print(f"wrote {prof_path}")


if __name__ == "__main__":
    main()
