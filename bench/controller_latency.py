"""The latency the controller adds to an actuation, on the real control plane with the stub
engine.

Per actuation (a requester made ready), from three clocks on this machine:

- ``listening``: the requester's own log says when its SPI began to listen (``Uvicorn running
  on ...:8081``): from then on the controller could ask its GPUs and act;
- ``relay``: the operator's trace (its ``actuation`` record) says when it began the call that
  made the requester ready;
- ``engine``: what the engine itself took: for a hot actuation the ``/wake_up`` call's
  duration, for a warm one the stub's start-up delay (``--stub-start-s``; the fork and the
  engine's bind are counted as the controller's, so the figure is an upper bound).

``controller_added = relay - listening - engine``. The kubelet's readiness probe then adds up
to one probe period (recorded) before the Pod is Ready; that is the kubelet's, not counted.

Three phases, each on the same cluster and operator:

1. ``paths``: ``--sequential`` requesters on one node, one at a time (warm: each a new
   instance in a running launcher), all deleted (their instances fall asleep), then the same
   again (hot: each wakes the sleeper on its GPU; the pod runner gives the lowest free GPU,
   so the order repeats);
2. ``burst``: ``--burst`` requesters created at once, spread over the nodes and the ISCs;
3. ``sustained``: ``--rate`` creations per second for ``--duration`` seconds, each requester
   deleted once served (at most ``--alive-max`` at once: past it, creation waits, and the rate
   achieved is what is reported).

Run under the heavy-work lock: ``flock /tmp/fma-heavy.lock .venv/bin/python -m
bench.controller_latency`` (root: the pod runner runs the Pods). Writes
``bench/results/controller_latency-<date>.json``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import itertools
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubernetes.client.rest import ApiException  # noqa: E402

from bench.common import RESULTS, record  # noqa: E402
from fma.testcluster import build, cluster  # noqa: E402
from fma.testcluster.cluster import kubectl  # noqa: E402
from fma.testcluster.state import LocalCluster  # noqa: E402
from fma.testcluster.wait import wait_until  # noqa: E402
from tests.integration.operator.harness import (  # noqa: E402
    IMAGE,
    World,
    copy_gpu_map,
    is_ready,
)

GPU_MAP_NAMESPACE = "fma-system"
NAMESPACE = "bench"
STUB_START_S = 0.5
STUB_WAKE_S = 0.2
STUB_SLEEP_S = 0.2
PROBE_PERIOD_S = 1
ISC_PORT_BASE = 8005
LISTENING_RE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO uvicorn\.error: Uvicorn running on "
    r"http://[^:]+:8081 "
)
MEMORY_FREE_MIN_GIB = 4.0
"""Creation pauses while the machine has less memory available than this."""


# --- the cluster and the objects ---------------------------------------------------------------


def start_cluster(state_dir: Path, nodes: int, gpus: int) -> LocalCluster:
    bin_dir = build.ensure_binaries(report=lambda msg: print(f"[testcluster] {msg}"))
    return cluster.up(
        bin_dir,
        state_dir=state_dir,
        node_count=nodes,
        gpus_per_node=gpus,
        namespace=GPU_MAP_NAMESPACE,
        die_with_parent=True,
    )


def install_crds(c: LocalCluster) -> None:
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        done = kubectl(c, "apply", "-f", str(path))
        assert done.returncode == 0, done.stderr


def configure(world: World, iscs: int, launchers_per_node: int, max_instances: int) -> None:
    """A LauncherConfig of stub launchers holding up to ``max_instances`` instances (of
    different ISCs: each ISC has its own port), ``launchers_per_node`` of them on every node,
    and ``iscs`` ISCs."""
    container = {
        "name": "inference-server",
        "image": IMAGE,
        "args": ["launcher", "serve", "--engine", "stub"],
        "readinessProbe": {
            "httpGet": {"path": "/v2/vllm/instances", "port": 8001},
            "periodSeconds": PROBE_PERIOD_S,
        },
        # Patient: on two busy cores a launcher may not answer for a while, and a restart
        # would take its instances (and their requesters) with it.
        "livenessProbe": {
            "httpGet": {"path": "/health", "port": 8001},
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 30,
        },
    }
    world.create_custom(
        "LauncherConfig",
        "lc",
        {
            "maxInstances": max_instances,
            "podTemplate": {
                "spec": {"terminationGracePeriodSeconds": 5, "containers": [container]}
            },
        },
    )
    stub = (
        f"--stub-start-s {STUB_START_S} --stub-sleep-s {STUB_SLEEP_S} --stub-wake-s {STUB_WAKE_S}"
    )
    for k in range(iscs):
        world.create_custom(
            "InferenceServerConfig",
            f"isc{k}",
            {
                "launcherConfigName": "lc",
                "modelServerConfig": {
                    "port": ISC_PORT_BASE + k,
                    "options": f"--model m{k} {stub}",
                    "weightsSize": "1Gi",
                },
            },
        )
    world.population("lpp", "lc", 0)


def grow_population(world: World, nodes: int, per_node: int, step: int) -> None:
    """Raise the policy's count ``step`` launchers per node at a time, each step once the
    launchers are Ready: a hundred Python processes started at once on two cores take so
    long that their liveness probes restart them, over and over."""
    count = 0
    while count < per_node:
        count = min(per_node, count + step)
        patch = {
            "spec": {"countForLauncher": [{"launcherConfigName": "lc", "launcherCount": count}]}
        }
        world.patch_custom("LauncherPopulationPolicy", "lpp", patch)
        wait_until(
            lambda n=count: sum(is_ready(p) for p in world.launchers()) >= n * nodes,
            timeout=600,
            what=f"{count} launchers per node",
            interval=1.0,
        )
        print(f"[bench] {count} launchers per node Ready")


def requester_pod(world: World, name: str, isc: str, node: str) -> dict[str, Any]:
    template = world.requester_template("bench", isc=isc, node=node)
    template["spec"]["containers"][0]["readinessProbe"]["periodSeconds"] = PROBE_PERIOD_S
    template["metadata"]["name"] = name
    return {"apiVersion": "v1", "kind": "Pod", **template}


# --- measuring ---------------------------------------------------------------------------------


class Ledger:
    """What is known of each requester: name -> uid, node, created (this machine's clock)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.created: dict[str, float] = {}
        self.uids: dict[str, str] = {}

    def add(self, name: str, uid: str, created_s: float) -> None:
        with self.lock:
            self.created[name] = created_s
            self.uids[name] = uid


def listening_s(state_dir: Path, namespace: str, name: str, uid: str) -> float | None:
    """When the requester's SPI began to listen, from its container's first log."""
    log = state_dir / "pods" / f"{namespace}_{name}_{uid}" / "inference-server" / "0.log"
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        found = LISTENING_RE.match(line)
        if found:
            stamp = dt.datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f")
            return time.mktime(stamp.timetuple()) + stamp.microsecond / 1e6
    return None


def actuations(trace: Path) -> dict[str, dict[str, Any]]:
    """Requester UID -> its ``actuation`` record."""
    found = {}
    for line in trace.read_text().splitlines():
        if '"actuation"' in line:
            event = json.loads(line)
            if event.get("kind") == "actuation":
                found[event["requester"]] = event
    return found


def measure(
    ledger: Ledger, names: Iterable[str], records: dict[str, dict[str, Any]], state_dir: Path
) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        uid = ledger.uids[name]
        event = records.get(uid)
        if event is None:
            continue
        listening = listening_s(state_dir, NAMESPACE, name, uid)
        if listening is None:
            continue
        path = event["path"]
        if path == "hot" and event.get("wake_start_t") and event.get("wake_end_t"):
            engine = event["wake_end_t"] - event["wake_start_t"]
        elif path == "warm":
            engine = STUB_START_S
        else:
            continue
        relay = event["relay_t"]
        rows.append(
            {
                "requester": name,
                "path": path,
                "created_to_listening_s": round(listening - ledger.created[name], 4),
                "listening_to_relay_s": round(relay - listening, 4),
                "engine_s": round(engine, 4),
                "controller_added_s": round(relay - listening - engine, 4),
            }
        )
    return rows


def percentiles(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)

    return {
        "n": len(ordered),
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "max": round(ordered[-1], 4),
        "mean": round(statistics.fmean(ordered), 4),
    }


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in ("warm", "hot"):
        mine = [r for r in rows if r["path"] == path]
        out[path] = {
            key: percentiles([r[key] for r in mine])
            for key in ("controller_added_s", "listening_to_relay_s", "created_to_listening_s")
        }
    out["all"] = {"controller_added_s": percentiles([r["controller_added_s"] for r in rows])}
    return out


# --- load ----------------------------------------------------------------------------------------


def memory_available_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable"):
            return int(line.split()[1]) / 1024**2
    return 0.0


class Load:
    """Samples the machine's load average and available memory while a phase runs."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append((os.getloadavg()[0], memory_available_gib()))

    def report(self) -> dict[str, float]:
        if not self.samples:
            return {}
        loads = [s[0] for s in self.samples]
        memory = [s[1] for s in self.samples]
        return {
            "load1_mean": round(statistics.fmean(loads), 2),
            "load1_max": round(max(loads), 2),
            "memory_available_gib_min": round(min(memory), 1),
        }


# --- the phases ----------------------------------------------------------------------------------


class Bench:
    def __init__(self, world: World, state_dir: Path, iscs: int) -> None:
        self.world = world
        self.state_dir = state_dir
        self.iscs = iscs
        self.ledger = Ledger()
        self._serials = itertools.count(1)
        self.pool = concurrent.futures.ThreadPoolExecutor(16)

    def create(self, isc: str, node: str) -> str:
        name = f"r{next(self._serials):05d}"
        body = requester_pod(self.world, name, isc, node)
        created_s = time.time()
        made = self.world.core.create_namespaced_pod(NAMESPACE, body)
        self.ledger.add(name, made.metadata.uid, created_s)
        return name

    def served(self, name: str) -> bool:
        pod = self.world.pod(name)
        return pod is not None and is_ready(pod)

    def delete(self, names: Iterable[str]) -> None:
        for name in names:
            try:
                self.world.core.delete_namespaced_pod(name, NAMESPACE)
            except ApiException as error:
                if error.status != 404:  # gone already (the controller deletes some)
                    raise

    def wait_gone(self, names: list[str], timeout: float) -> None:
        wanted = set(names)
        wait_until(
            lambda: not wanted & {p["metadata"]["name"] for p in self.world.pods()},
            timeout=timeout,
            what="the requesters to go",
            interval=0.5,
        )

    def paths(self, node: str, count: int) -> list[str]:
        """Warm then hot, one requester at a time on ``node``."""
        names = []
        for round_ in ("warm", "hot"):
            batch = []
            for k in range(count):
                name = self.create(f"isc{k % self.iscs}", node)
                wait_until(lambda n=name: self.served(n), timeout=60, what=f"{name} served")
                batch.append(name)
            names += batch
            self.delete(batch)
            self.wait_gone(batch, 120)
            time.sleep(2.0)  # the sleeps settle: the next round finds every instance asleep
            print(f"[bench] {round_} round of {count} done")
        return names

    def burst(
        self, nodes: list[str], count: int, timeout: float
    ) -> tuple[list[str], float, int, float]:
        """``count`` requesters at once; (names, creation time, how many were served, time
        until the last was served or the timeout)."""
        plan = [
            (f"isc{(i // len(nodes)) % self.iscs}", nodes[i % len(nodes)]) for i in range(count)
        ]
        started = time.monotonic()

        def create(isc: str, node: str) -> str | None:
            if memory_available_gib() < MEMORY_FREE_MIN_GIB:
                return None  # the machine is nearly out of memory: no more Pods
            return self.create(isc, node)

        made = list(self.pool.map(lambda p: create(*p), plan))
        names = [name for name in made if name is not None]
        created_s = time.monotonic() - started
        served: set[str] = set()
        deadline = time.monotonic() + timeout
        waiting = set(names)
        while waiting and time.monotonic() < deadline:
            time.sleep(1.0)
            pods = {p["metadata"]["name"]: p for p in self.world.pods("app=bench")}
            served |= {name for name, pod in pods.items() if is_ready(pod)}
            # Served, or gone (the controller deletes a requester whose instance died).
            waiting = {name for name in waiting if name in pods and name not in served}
        all_s = time.monotonic() - started
        print(f"[bench] burst of {len(names)}: created in {created_s:.1f} s, {len(served)} served")
        self.delete(names)
        self.wait_gone(names, timeout)
        return names, created_s, len(served), all_s

    def sustained(
        self, nodes: list[str], rate: float, duration_s: float, alive_max: int
    ) -> dict[str, Any]:
        """Create at ``rate`` for ``duration_s``; a reaper deletes each requester once Ready."""
        lock = threading.Lock()
        alive: dict[str, float] = {}
        """Requesters created and not yet gone -> when created (monotonic)."""
        served: set[str] = set()
        stop = threading.Event()
        stalls = {"alive": 0.0, "memory": 0.0}

        def create(isc: str, node: str) -> None:
            name = self.create(isc, node)
            with lock:
                alive[name] = time.monotonic()

        def reap() -> None:
            while True:
                listed_at = time.monotonic()
                pods = self.world.pods("app=bench")
                listed = {p["metadata"]["name"] for p in pods}
                for pod in pods:
                    name = pod["metadata"]["name"]
                    if name not in served and is_ready(pod):
                        served.add(name)
                        self.delete([name])
                with lock:
                    for name, made_s in list(alive.items()):
                        if name not in listed and made_s < listed_at:
                            del alive[name]
                    left = len(alive)
                if stop.is_set() and (left == 0 or time.monotonic() > give_up_s):
                    return
                time.sleep(0.5)

        started = time.monotonic()
        give_up_s = started + duration_s + 600
        reaper = threading.Thread(target=reap, daemon=True)
        reaper.start()
        i = 0
        while time.monotonic() - started < duration_s:
            wait = started + i / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            while True:
                with lock:
                    crowded = len(alive) >= alive_max
                if not crowded and memory_available_gib() >= MEMORY_FREE_MIN_GIB:
                    break
                stalls["alive" if crowded else "memory"] += 0.1
                time.sleep(0.1)
            self.pool.submit(create, f"isc{i % self.iscs}", nodes[(i // self.iscs) % len(nodes)])
            i += 1
        creating_s = time.monotonic() - started
        stop.set()
        reaper.join()
        return {
            "created": i,
            "creation_s": round(creating_s, 1),
            "rate_achieved_per_s": round(i / creating_s, 2),
            "served": len(served),
            "drained_s": round(time.monotonic() - started - creating_s, 1),
            "stalled_s": {k: round(v, 1) for k, v in stalls.items()},
        }


def kopf_settings() -> dict[str, Any]:
    from fma.adapters.k8s.operator import OperatorOptions

    options = OperatorOptions(namespace=NAMESPACE)
    return {
        "batch_window_s": options.batch_window_s,
        "watch_server_timeout_s": options.watch_server_timeout_s,
        "watch_client_timeout_s": options.watch_client_timeout_s,
        "watch_inactivity_s": options.watch_inactivity_s,
        "workers": options.workers,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--gpus", type=int, default=64, help="GPUs per node")
    parser.add_argument("--iscs", type=int, default=2, help="InferenceServerConfigs")
    parser.add_argument(
        "--max-instances", type=int, default=1, help="instances a launcher holds at most"
    )
    parser.add_argument(
        "--launchers-per-node",
        type=int,
        default=25,
        help="launchers kept on each node (a served requester holds one)",
    )
    parser.add_argument("--sequential", type=int, default=16)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--alive-max", type=int, default=60)
    parser.add_argument("--operator-arg", action="append", default=[])
    parser.add_argument("--name", default="controller_latency")
    parser.add_argument("--keep", action="store_true", help="keep the state directory")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the operator under pyinstrument; its report goes beside the results",
    )
    args = parser.parse_args(argv)

    state_dir = Path(tempfile.mkdtemp(prefix="fma-bench-latency-"))
    c = start_cluster(state_dir, args.nodes, args.gpus)
    world: World | None = None
    try:
        api = c.api_client()
        api.configuration.connection_pool_maxsize = 32
        install_crds(c)
        world = World(c, api, NAMESPACE, state_dir)
        world.core.create_namespace({"metadata": {"name": NAMESPACE}})
        wait_until(
            lambda: world.core.list_namespaced_service_account(NAMESPACE).items,
            timeout=30,
            what="the namespace's ServiceAccount",
        )
        copy_gpu_map(world.core, GPU_MAP_NAMESPACE, NAMESPACE)
        configure(world, args.iscs, args.launchers_per_node, args.max_instances)
        operator = world.operator(*args.operator_arg, start=False)
        profile = RESULTS / f"{args.name}-{time.strftime('%Y%m%d')}.profile.txt"
        if args.profile:
            operator.interpreter = [
                *[sys.executable, "-m", "pyinstrument", "--renderer", "text"],
                *["--outfile", str(profile)],
            ]
        operator.start()
        nodes = list(c.nodes)
        grow_population(world, len(nodes), args.launchers_per_node, step=10)
        bench = Bench(world, state_dir, args.iscs)
        phases: dict[str, Any] = {}
        settings = {
            "definition": "controller_added = relay - listening - engine (module docstring)",
            "targets": {"controller_added_p50_s": 0.05, "controller_added_p99_s": 0.25},
            "stub_engine_s": {"start": STUB_START_S, "wake": STUB_WAKE_S, "sleep": STUB_SLEEP_S},
            "readiness_probe_period_s": PROBE_PERIOD_S,
            "kopf": kopf_settings(),
            "cluster": {
                "nodes": args.nodes,
                "gpus_per_node": args.gpus,
                "iscs": args.iscs,
                "max_instances": args.max_instances,
                "launchers_per_node": args.launchers_per_node,
            },
            "operator_args": args.operator_arg,
            "operator_profile": str(profile.relative_to(ROOT)) if args.profile else None,
        }

        def keep(phase: str, names: list[str], facts: dict[str, Any], load: Load) -> None:
            """Measure a phase and write the results so far (a later phase may fail)."""
            rows = measure(bench.ledger, names, actuations(operator.trace), state_dir)
            phases[phase] = {**facts, "load": load.report(), **summary(rows)}
            print(f"[bench] wrote {record(args.name, {**settings, 'phases': phases})}")

        with Load() as load:
            names = bench.paths(nodes[0], args.sequential)
        keep("paths", names, {}, load)

        if args.burst:
            with Load() as load:
                names, created_s, served, all_s = bench.burst(nodes, args.burst, timeout=900)
            facts = {
                "requesters_asked": args.burst,
                "requesters_created": len(names),
                "creation_s": round(created_s, 2),
                "served": served,
                "all_served_s": round(all_s, 1),
            }
            keep("burst", names, facts, load)

        if args.duration:
            before = set(bench.ledger.created)
            with Load() as load:
                facts = bench.sustained(nodes, args.rate, args.duration, args.alive_max)
            names = sorted(set(bench.ledger.created) - before)
            keep("sustained", names, {"rate_asked_per_s": args.rate, **facts}, load)

        world.close()
        print(json.dumps(phases, indent=1))
    finally:
        for process in world.operators if world is not None else ():
            process.stop()
        cluster.down(c, remove_state=not args.keep)
        if not args.keep:
            shutil.rmtree(state_dir, ignore_errors=True)
        else:
            print(f"[bench] state kept in {state_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
