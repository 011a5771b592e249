"""Run one scenario with one seed: build the cluster, drive the demand, return the trace.

This is the composition root of the simulator: every component is constructed here, and every
random choice is drawn from generators derived from the one seed, so (scenario, seed) always
gives the same trace.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, replace

import simpy

from fma.adapters.sim.cluster import SimCluster
from fma.adapters.sim.controller import SimController
from fma.adapters.sim.liveness import start_phases
from fma.adapters.sim.state import SimNode, SimState
from fma.adapters.sim.trace import Trace
from fma.adapters.sim.workload import Workload
from fma.api.constants import LABEL_MS_MODEL
from fma.api.latency import GB, GIB
from fma.api.scenario import Scenario
from fma.core.model import Gpu, IscSpec, LauncherConfigSpec, Routing, ServerSpec
from fma.core.policy import Actuation, Policy

ProgressFn = Callable[[float, float], None]
"""Called with (simulated seconds done, total) as a run advances."""


@dataclass(frozen=True)
class RunResult:
    scenario: Scenario
    seed: int
    trace: Trace
    unserved: list[str]
    gpu_count: int
    reconciles: int


def policy_of(scenario: Scenario) -> Policy:
    section = scenario.policy
    per_gpu = section.sleeping_gib_per_gpu_max
    return Policy(
        actuation=Actuation(section.actuation),
        eviction=section.eviction,
        sleeping_bytes_per_gpu_max=None if per_gpu is None else int(per_gpu * GIB),
        sleeper_gpu_residue_bytes=int(section.sleeper_residue_gib * GIB),
        ready_timeout_s=section.ready_timeout,
        launcher_start_s=scenario.latency.launcher_start_s,
        launchers_per_node_max=section.launchers_per_node_max,
    )


def spec_of(scenario: Scenario, model_name: str) -> tuple[ServerSpec, int]:
    """The server spec of one replica of a model, and its GPU count."""
    model = scenario.model(model_name)
    spec = ServerSpec(
        model=model.name,
        port=model.port,
        weights_bytes=int(model.weights_gib * GIB),
        engine_init_s=model.engine_init_s,
        gpu_memory_utilization=model.gpu_memory_utilization,
    )
    return spec, model.gpus


def new_cluster(
    scenario: Scenario, env: simpy.Environment, trace: Trace, *, seed: int = 0
) -> SimCluster:
    """The simulated platform of a scenario: its nodes, latencies and engines."""
    cluster = SimCluster(
        env,
        SimState(nodes=build_nodes(scenario)),
        trace,
        scenario.latency,
        seed=seed,
        launcher_memory_bytes=int(scenario.launchers.host_memory_gib * GIB),
        placement=scenario.policy.placement,
    )
    cluster.sleepless_models = {m.name for m in scenario.models if not m.sleep_mode}
    cluster.compile_s = {m.name: (m.compile_s, m.compile_cached_s) for m in scenario.models}
    return cluster


def build_nodes(scenario: Scenario) -> dict[str, SimNode]:
    nodes: dict[str, SimNode] = {}
    for pool in scenario.cluster.node_pools:
        for n in range(pool.count):
            name = f"{pool.name}-{n}"
            gpus = tuple(
                Gpu(f"GPU-{name}-{i}", i, int(pool.gpu_memory_gib * GIB))
                for i in range(pool.gpus_per_node)
            )
            nodes[name] = SimNode(
                name,
                pool.name,
                gpus,
                int(pool.host_memory_gib * GIB),
                pool.wake_gbps * GB,
                pool.sleep_gbps * GB,
                pool.disk_gbps * GB,
                gpu_holder={g.uuid: None for g in gpus},
                topology=pool.topology,
                pin_bytes_per_s=pool.pin_gbps * GB,
                lowest_index_gpus=pool.gpu_allocation == "lowest-index",
            )
    return nodes


LAUNCHER_CONFIG = "default"
TEMPLATE_HASH = "template-1"


def install_launcher_configs(
    scenario: Scenario, state: SimState, spec_for: Callable[[str], tuple[ServerSpec, int]]
) -> bool:
    """Under the ``fma`` policy, one ISC per model, one LauncherConfig and its population policy.

    Returns whether requesters take the launcher path.
    """
    if Actuation(scenario.policy.actuation) is not Actuation.FMA:
        return False
    state.launcher_configs[LAUNCHER_CONFIG] = LauncherConfigSpec(
        LAUNCHER_CONFIG, scenario.launchers.max_instances, TEMPLATE_HASH
    )
    for model in scenario.models:
        state.iscs[model.name] = IscSpec(
            model.name, spec_for(model.name)[0], LAUNCHER_CONFIG, routing=routing_of(model.name)
        )
    _give_isc_ports(state)
    if scenario.launchers.per_node > 0:
        state.launcher_policy[LAUNCHER_CONFIG] = scenario.launchers.per_node
    return True


def routing_of(model: str) -> Routing:
    """The routing labels of a model's ISC: what an endpoint picker selects its servers by."""
    return Routing(labels={LABEL_MS_MODEL: model})


def _give_isc_ports(state: SimState) -> None:
    """Instances in one launcher share its network namespace, so ISCs that share a
    LauncherConfig need distinct ports to share a launcher; a scenario's models may all say
    8000. Ports are taken from the models' port upwards, in model order."""
    used: set[int] = set()
    for name, isc in list(state.iscs.items()):
        port = isc.spec.port
        while port in used:
            port += 1
        used.add(port)
        if port != isc.spec.port:
            state.iscs[name] = replace(isc, spec=replace(isc.spec, port=port))


def run_scenario(
    scenario: Scenario,
    seed: int | None = None,
    progress: ProgressFn | None = None,
    *,
    drain_s: float = 0.0,
) -> RunResult:
    """Simulate ``scenario`` for its duration. Deterministic for equal (scenario, seed).

    Faults are armed until the last one is over (:mod:`fma.adapters.sim.liveness`).
    ``drain_s`` keeps simulating up to that long after the demand stops, until the cluster is
    quiet (for liveness and leak checks).
    """
    seed = scenario.seed if seed is None else seed
    rng = random.Random(seed)
    env = simpy.Environment()
    trace = Trace()
    cluster = new_cluster(scenario, env, trace, seed=seed)
    state = cluster.state
    controller = SimController(cluster, policy_of(scenario))

    def spec_for(model_name: str) -> tuple[ServerSpec, int]:
        return spec_of(scenario, model_name)

    launcher_path = install_launcher_configs(scenario, state, spec_for)
    workload = Workload(
        cluster,
        scenario.duration,
        spec_for,
        isc_for=(lambda model: model) if launcher_path else (lambda model: None),
    )
    workload.start(scenario.demand, rng)
    phases = start_phases(
        env,
        cluster,
        controller,
        scenario,
        seed=seed,
        launchers_wanted=scenario.launchers.per_node if launcher_path else 0,
    )
    controller.start()
    phases.run(scenario.duration, drain_s=drain_s, progress=progress)
    return RunResult(
        scenario,
        seed,
        trace,
        workload.unserved(),
        sum(len(n.gpus) for n in state.nodes.values()),
        controller.reconciles,
    )
