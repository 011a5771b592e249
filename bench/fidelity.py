"""The simulator against the operator: one scripted scenario run both ways, side by side.

**Live.** The test control plane (one KWOK node with 8 fake GPUs, the pod runner running the
project's processes at their Pod IPs) runs ``fma operator run --trace FILE`` with launchers of
the stub engine (start 0.5 s, sleep and wake 0.2 s: the harness's knobs), a population of one
launcher per node, and two InferenceServerConfigs. Two ReplicaSets of requesters pinned to
the node are scaled up and down on a fixed schedule (:data:`SCHEDULE`), which makes hot, warm
and cold-with-launcher actuations.

**Simulated.** The same scenario (:func:`scenario`): the same node, launcher set-up and
schedule (as ``trace`` demands), the stub's latencies, the harness's probe periods, the
operator's engine probe pace and the pod runner's GPU choice (lowest index), with the
platform's latencies fitted to the live trace by ``fma sim calibrate``
(:mod:`fma.bench.calibrate`).

The live run is made twice (``--runs``): the simulator is calibrated on the first and compared
with both, so the second is a comparison the calibration never saw. Recorded in
``bench/results/fidelity-<date>.json``: per world, actuations by path, hit rates and actuation
latency p50/p99, and the differences against the targets (p50 within 5 %, p99 within 15 %, hit
rates within 2 points).

    flock /tmp/fma-heavy.lock .venv/bin/python bench/fidelity.py          # live twice, simulated
    .venv/bin/python bench/fidelity.py --live-trace A --live-trace B       # recorded runs
"""

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import record
from fma.adapters.k8s.pace import PaceSettings
from fma.adapters.sim.runner import run_scenario
from fma.api.scenario import Scenario
from fma.bench.calibrate import calibrate, calibrated_scenario, read_trace
from fma.bench.summary import percentile

NODE = "gpu-node-0"
MODELS = {"m1": 8005, "m2": 8006}
"""ISC name (and model) -> its port."""
STUB_START_S = 0.5
STUB_MOVE_S = 0.2
LEAD_S = 30.0
"""Seconds from the operator's start to the schedule's: the population's launchers get
Ready meanwhile, in both worlds."""
CYCLE_S = 15.0
CYCLES = 24
SETTLE_S = 20.0

SCHEDULE: list[tuple[float, dict[str, int]]] = [
    (k * CYCLE_S, {"m1": 1 if k % 2 == 0 else 0, "m2": 1 if k % 4 in (1, 2) else 0})
    for k in range(CYCLES)
] + [(CYCLES * CYCLE_S, {"m1": 0, "m2": 0})]
"""Replicas wanted per model, from the schedule's start: m1 comes and goes every cycle (its
sleeper woken each time), m2 every other pair of cycles, now beside m1 (another GPU, another
launcher), now alone (the GPU m1 slept on)."""

ENGINE_PROBE_S = PaceSettings().eager_interval_s
"""How often the operator asks a new engine whether it serves during its first seconds (its
eager phase, longer than any stub start): the simulated engine probe asks at this pace."""

LOAD_FILE = "load.json"
"""Beside a live run's trace: the machine's 1-minute load average before and after it."""

TARGETS = {"p50_rel": 0.05, "p99_rel": 0.15, "rate_points": 0.02}


def scenario(latency: dict[str, float] | None = None) -> Scenario:
    """The simulated twin of the live run (before calibration: the default latencies)."""
    demands = [
        {
            "model": model,
            "pattern": "trace",
            "start": LEAD_S,
            "points": [[t, replicas[model]] for t, replicas in SCHEDULE],
        }
        for model in MODELS
    ]
    return Scenario.model_validate(
        {
            "name": "fidelity",
            "description": "The live fidelity run's twin: stub engines on the test cluster.",
            "duration": LEAD_S + CYCLES * CYCLE_S + SETTLE_S,
            "cluster": {
                "node_pools": [
                    {
                        "name": "gpu-node",
                        "count": 1,
                        "gpus_per_node": 8,
                        "gpu_allocation": "lowest-index",
                    }
                ]
            },
            "models": [
                {
                    "name": model,
                    "weights_gib": 0.001,
                    "engine_init_s": STUB_START_S,
                    "compile_s": 0,
                    "compile_cached_s": 0,
                    "port": port,
                }
                for model, port in MODELS.items()
            ],
            "latency": {
                "vllm_import_s": 0,
                "wake_overhead_s": STUB_MOVE_S,
                "sleep_overhead_s": STUB_MOVE_S,
                "readiness_probe_period_s": 1,
                "readiness_probe_delay_s": 0,
                "launcher_probe_period_s": 1,
                "launcher_probe_delay_s": 0,
                "engine_probe_min_s": ENGINE_PROBE_S,
                "engine_probe_max_s": ENGINE_PROBE_S,
                **(latency or {}),
            },
            "launchers": {"max_instances": 2, "per_node": 1, "host_memory_gib": 0},
            "policy": {"actuation": "fma"},
            "demand": demands,
        }
    )


# --- the two worlds ------------------------------------------------------------------------------


def run_live(out_dir: Path) -> Path:
    """Run the schedule against the operator on the test control plane; the trace's path."""
    from kubernetes import client

    from fma.testcluster import build, cluster
    from fma.testcluster.cluster import kubectl
    from tests.integration.operator.harness import World, copy_gpu_map, is_ready

    out_dir.mkdir(parents=True, exist_ok=True)
    bin_dir = build.ensure_binaries(report=lambda msg: print(f"[testcluster] {msg}"))
    state_dir = Path(tempfile.mkdtemp(prefix="fma-fidelity-"))
    c = cluster.up(
        bin_dir,
        state_dir=state_dir,
        node_count=1,
        gpus_per_node=8,
        namespace="fma-system",
        die_with_parent=True,
    )
    try:
        if c.pod_network is None:
            raise SystemExit("fidelity: the pod runner cannot run here (it needs root)")
        root = Path(__file__).resolve().parents[1]
        for crd in sorted((root / "crds").glob("*.yaml")):
            done = kubectl(c, "apply", "-f", str(crd))
            if done.returncode != 0:
                raise SystemExit(f"fidelity: applying {crd.name}: {done.stderr}")
        time.sleep(3)  # Established
        api = c.api_client()
        core = client.CoreV1Api(api)
        namespace = "fidelity"
        core.create_namespace({"metadata": {"name": namespace}})
        time.sleep(2)  # its default ServiceAccount
        copy_gpu_map(core, "fma-system", namespace)
        world = World(c, api, namespace, out_dir)
        world.launcher_config("lc1", max_instances=2)
        for model, port in MODELS.items():
            world.isc(model, port=port, model=model)
        world.population("lpp1", "lc1", 1)
        # The schedule's steps fall on the wall clock's whole seconds: a container's start
        # time, from which the operator measures an actuation, is kept to the second, so its
        # truncation (up to 1 s) is then about the same in every run.
        started = time.monotonic() + math.ceil(time.time()) - time.time()
        loaded_before = os.getloadavg()[0]
        process = world.operator(name="fidelity")
        world.wait(
            lambda: any(is_ready(p) for p in world.launchers(NODE)) or None,
            "the population's launcher to be Ready",
        )
        for model in MODELS:
            world.replicaset(f"rs-{model}", replicas=0, isc=model, node=NODE)
        for at_s, replicas in SCHEDULE:
            delay_s = started + LEAD_S + at_s - time.monotonic()
            if delay_s > 0:
                time.sleep(delay_s)
            for model, count in replicas.items():
                world.scale(f"rs-{model}", count)
        time.sleep(SETTLE_S)
        process.stop()
        shutil.copy(process.trace, out_dir / "operator-events.jsonl")
        load = [round(loaded_before, 2), round(os.getloadavg()[0], 2)]
        (out_dir / LOAD_FILE).write_text(json.dumps(load) + "\n")
        world.close()
        return out_dir / "operator-events.jsonl"
    finally:
        cluster.down(c, remove_state=True)
        shutil.rmtree(state_dir, ignore_errors=True)


def run_load(trace: Path) -> list[float] | None:
    """The 1-minute load average before and after the live run that wrote ``trace``, if it
    was recorded beside it."""
    path = trace.parent / LOAD_FILE
    return json.loads(path.read_text()) if path.exists() else None


def _latencies(actuations: list[dict[str, Any]], path: str) -> list[float]:
    return [float(e["latency_s"]) for e in actuations if e["path"] == path]


def figures(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Actuations by path, hit rates and latency percentiles of one run's trace."""
    actuations = [e for e in events if e["kind"] == "actuation"]
    latencies = [float(e["latency_s"]) for e in actuations]
    total = len(actuations)
    paths = ("hot", "warm", "cold_launcher", "cold")
    counts = {p: sum(1 for e in actuations if e["path"] == p) for p in paths}
    return {
        "actuations": total,
        "by_path": counts,
        "rates": {p: round(counts[p] / total, 4) if total else 0.0 for p in paths},
        "p50_s": round(percentile(latencies, 50), 4),
        "p99_s": round(percentile(latencies, 99), 4),
        "p50_by_path_s": {
            p: round(
                percentile([float(e["latency_s"]) for e in actuations if e["path"] == p], 50), 4
            )
            for p in paths
            if counts[p]
        },
    }


def differences(live: dict[str, Any], sim: dict[str, Any]) -> dict[str, Any]:
    """Simulated against live, and whether each target is met."""

    def rel(key: str) -> float:
        return round((sim[key] - live[key]) / live[key], 4) if live[key] else 0.0

    points = {p: round(sim["rates"][p] - live["rates"][p], 4) for p in live["rates"]}
    return {
        "p50_rel": rel("p50_s"),
        "p99_rel": rel("p99_s"),
        "rate_points": points,
        "met": {
            "p50": abs(rel("p50_s")) <= TARGETS["p50_rel"],
            "p99": abs(rel("p99_s")) <= TARGETS["p99_rel"],
            "rates": all(abs(v) <= TARGETS["rate_points"] for v in points.values()),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--live-trace", type=Path, action="append", help="an operator trace of this schedule"
    )
    parser.add_argument("--runs", type=int, default=2, help="live runs (without --live-trace)")
    parser.add_argument("--out", type=Path, default=Path("out/fidelity"))
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    traces = args.live_trace or [
        run_live((args.out / f"run-{k}").resolve()) for k in range(args.runs)
    ]
    lives = [read_trace(path) for path in traces]
    base = scenario()
    fitted = calibrate(lives[:1], scenario=base)
    calibrated = calibrated_scenario(base, fitted)
    simulated = figures(run_scenario(calibrated).trace.events)
    uncalibrated = figures(run_scenario(base).trace.events)
    runs = []
    for k, events in enumerate(lives):
        live = figures(events)
        runs.append(
            {
                "trace": str(traces[k]),
                "calibrated_on_it": k == 0,
                "load_average_1m_before_after": run_load(traces[k]),
                "live": live,
                "difference": differences(live, simulated),
                "difference_uncalibrated": differences(live, uncalibrated),
            }
        )
    result = {
        "schedule": {"lead_s": LEAD_S, "cycle_s": CYCLE_S, "cycles": CYCLES},
        "targets": TARGETS,
        "simulated": simulated,
        "simulated_uncalibrated": uncalibrated,
        "runs": runs,
        "calibrated_latency": {
            k: fitted["latency"][k] for k in fitted["fitted"] if k in fitted["latency"]
        },
        "fitted": fitted["fitted"],
    }
    print(json.dumps(result, indent=2))
    if not args.no_record:
        path = record("fidelity", result)
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
