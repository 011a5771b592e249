"""The cost of one reconcile as the cluster grows: it must follow the changed node, not the cluster.

A steady cluster of N nodes x 8 GPUs: every GPU serves a ready requester through a launcher,
and each launcher also holds a sleeper. One node gets a new requester; we time the reconcile
of that node — gather (the simulator builds the node's snapshot) and decide (``plan_node``) —
for clusters of about 100 to 10,000 Pods. The per-node work is the same at every size.

Run from the repository root: ``.venv/bin/python -m bench.plan_cost``; it writes
``bench/results/plan_cost-<date>.json``.
"""

import argparse
import statistics
import time

import simpy

from bench.common import baseline, record
from fma.adapters.sim.cluster import SimCluster
from fma.adapters.sim.state import (
    SimInstance,
    SimNode,
    SimProvider,
    SimRequester,
    SimState,
)
from fma.adapters.sim.trace import Trace
from fma.api.constants import LABEL_DUAL, LABEL_INSTANCE, LABEL_SLEEPING
from fma.api.latency import GB, GIB, Latency
from fma.core.dualpods import plan_node
from fma.core.identity import instance_id
from fma.core.model import (
    ActuationPath,
    Gpu,
    InstanceState,
    IscSpec,
    LauncherConfigSpec,
    ProviderKind,
    ServerSpec,
)
from fma.core.policy import Policy

GPUS_PER_NODE = 8
PODS_PER_NODE = 2 * GPUS_PER_NODE + 1  # requesters, launchers, and one new requester
REPEATS = 200


def model(k: int) -> ServerSpec:
    return ServerSpec(model=f"m{k}", port=8000 + k, weights_bytes=8 * GIB, engine_init_s=20)


def build(nodes: int) -> SimState:
    state = SimState()
    state.launcher_configs["lc"] = LauncherConfigSpec("lc", 4, "t")
    for k in range(3):
        state.iscs[f"isc{k}"] = IscSpec(f"isc{k}", model(k), "lc")
    for n in range(nodes):
        name = f"node-{n}"
        gpus = tuple(Gpu(f"GPU-{name}-{i}", i, 80 * GIB) for i in range(GPUS_PER_NODE))
        node = SimNode(
            name,
            "pool",
            gpus,
            1024 * GIB,
            25 * GB,
            25 * GB,
            5 * GB,
            gpu_holder={g.uuid: None for g in gpus},
        )
        state.nodes[name] = node
        for i, gpu in enumerate(gpus):
            uid = f"{name}-r{i}"
            served, sleeping = model(0), model(1)
            node.gpu_holder[gpu.uuid] = uid
            requester = SimRequester(
                uid,
                uid,
                "isc0",
                served,
                0.0,
                0,
                node=name,
                gpu_uuids=(gpu.uuid,),
                isc_name="isc0",
                started_s=0.0,
                ready=True,
                actuated=True,
            )
            state.add_requester(requester)
            launcher = SimProvider(
                f"{name}-l{i}",
                name,
                ProviderKind.LAUNCHER,
                0.0,
                launcher_config="lc",
                template_hash="t",
            )
            awake_id = instance_id(served, (gpu.uuid,))
            launcher.instances[awake_id] = SimInstance(
                awake_id, served, (gpu.uuid,), InstanceState.AWAKE, 0.0, 0.0, "isc0"
            )
            asleep_id = instance_id(sleeping, (gpu.uuid,))
            launcher.instances[asleep_id] = SimInstance(
                asleep_id, sleeping, (gpu.uuid,), InstanceState.SLEEPING, 0.0, 0.0, "isc1"
            )
            launcher.bound_requester_uid = uid
            launcher.bound_instance_id = awake_id
            launcher.path = ActuationPath.WARM
            steady(requester, launcher, awake_id)
            state.add_provider(launcher)
    # the change: one more requester on node-0 (its GPUs are all taken, so it only waits)
    state.add_requester(
        SimRequester(
            "new",
            "new",
            "isc2",
            model(2),
            1.0,
            0,
            node="node-0",
            gpu_uuids=("GPU-node-0-0",),
            isc_name="isc2",
            started_s=1.0,
        )
    )
    return state


def steady(requester: SimRequester, launcher: SimProvider, instance: str) -> None:
    """What the controller keeps on a served pair, so that it has nothing to write: the
    requester's finalizer and labels, the launcher's ``sleeping`` label and routing."""
    for name in ("finalizer", "labels"):
        if not hasattr(requester, name):
            return  # an older world without them
    requester.finalizer = True
    requester.labels = {LABEL_DUAL: launcher.name, LABEL_INSTANCE: instance}
    launcher.labels = {LABEL_SLEEPING: "false"}


def time_once(fn: object) -> float:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - started


def measure(nodes: int) -> dict[str, float]:
    state = build(nodes)
    cluster = SimCluster(simpy.Environment(), state, Trace(), Latency())
    policy = Policy()
    gather = [time_once(lambda: cluster.state.snapshot("node-0")) for _ in range(REPEATS)]
    snapshot = cluster.state.snapshot("node-0")
    decide = [
        time_once(lambda: plan_node(snapshot, now_s=2.0, policy=policy)) for _ in range(REPEATS)
    ]
    pods = len(state.requesters) + len(state.providers)
    return {
        "nodes": nodes,
        "pods": pods,
        "gather_us": round(statistics.median(gather) * 1e6, 1),
        "decide_us": round(statistics.median(decide) * 1e6, 1),
        "reconcile_us": round((statistics.median(gather) + statistics.median(decide)) * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--baseline", metavar="REF", help="also run this benchmark as it was at commit REF"
    )
    args = parser.parse_args()
    rows = [measure(n) for n in (6, 60, 600)]
    for row in rows:
        print(f"{row['pods']:>6} pods  gather {row['gather_us']:>8} us", end="  ")
        print(f"decide {row['decide_us']:>8} us")
    growth = rows[-1]["reconcile_us"] / rows[0]["reconcile_us"]
    results = {
        "what": "one reconcile of the changed node (gather + decide), median of "
        f"{REPEATS}; {GPUS_PER_NODE} GPUs, {PODS_PER_NODE} Pods per node",
        "rows": rows,
        "reconcile_growth_100x_pods": round(growth, 2),
    }
    if args.baseline:
        before = baseline(args.baseline, ["-m", "bench.plan_cost"], "plan_cost")
        results["baseline"] = {
            "commit": before["commit"],
            "rows": before["rows"],
            "reconcile_growth_100x_pods": before["reconcile_growth_100x_pods"],
        }
        for now, then in zip(rows, before["rows"], strict=True):
            print(f"{now['pods']:>6} pods  reconcile {now['reconcile_us']} us", end="  ")
            print(f"(baseline {then['reconcile_us']} us)")
    path = record("plan_cost", results)
    pods_growth = rows[-1]["pods"] / rows[0]["pods"]
    print(f"reconcile cost grows x{growth:.2f} for x{pods_growth:.0f} pods; wrote {path}")


if __name__ == "__main__":
    main()
