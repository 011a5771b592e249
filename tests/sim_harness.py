"""A small fluent harness over the simulated cluster, for scenarios written as tests.

It plays the parts a test cluster plays around the controller: ReplicaSets that keep N
requesters alive, users who delete Pods or patch InferenceServerConfigs, and the clock.
The controller is the real :class:`~fma.adapters.sim.controller.SimController` running the
real core decisions.
"""

from dataclasses import dataclass, field, replace

import simpy

from fma.adapters.sim.cluster import SimCluster
from fma.adapters.sim.controller import SimController
from fma.adapters.sim.state import SimNode, SimProvider, SimRequester, SimState
from fma.adapters.sim.trace import Trace
from fma.api.latency import GB, GIB, Latency
from fma.bench.invariants import check_all
from fma.core.model import (
    Gpu,
    InstanceState,
    IscSpec,
    LauncherConfigSpec,
    ProviderKind,
    ServerSpec,
)
from fma.core.policy import Policy

FAST = Latency(
    pod_start_s=2,
    vllm_import_s=5,
    launcher_start_s=8,
    watch_delay_s=0.01,
    controller_reaction_s=0.01,
    scheduler_s=0.01,
)


def spec(
    model: str, *, port: int = 8005, weights_gib: float = 1.0, options: str = ""
) -> ServerSpec:
    return ServerSpec(
        model=model,
        port=port,
        options=tuple(options.split()),
        weights_bytes=int(weights_gib * GIB),
        engine_init_s=10,
    )


@dataclass
class ReplicaSet:
    """Keeps ``replicas`` requesters of one template alive, like a Kubernetes ReplicaSet."""

    name: str
    spec: ServerSpec | None
    isc: str | None
    gpus: int
    pin: tuple[str, ...] | None
    replicas: int
    members: list[str] = field(default_factory=list)


class Harness:
    def __init__(
        self,
        *,
        nodes: int = 2,
        gpus_per_node: int = 8,
        gpu_memory_gib: float = 80,
        policy: Policy | None = None,
        latency: Latency = FAST,
    ) -> None:
        self.env = simpy.Environment()
        state = SimState()
        for n in range(nodes):
            name = f"node-{n}"
            gpus = tuple(
                Gpu(f"GPU-{name}-{i}", i, int(gpu_memory_gib * GIB)) for i in range(gpus_per_node)
            )
            state.nodes[name] = SimNode(
                name,
                "pool",
                gpus,
                1024 * GIB,
                25 * GB,
                25 * GB,
                5 * GB,
                gpu_holder={g.uuid: None for g in gpus},
            )
        self.cluster = SimCluster(self.env, state, Trace(), latency)
        self.controller = SimController(self.cluster, policy or Policy())
        self.replica_sets: dict[str, ReplicaSet] = {}
        self._uid = 0
        self.cluster.on_requester_gone = self._on_gone

    # --- configuration objects ----------------------------------------------------------------

    def launcher_config(
        self, name: str = "lc1", *, max_instances: int = 2, template: str = "t1"
    ) -> None:
        self.state.launcher_configs[name] = LauncherConfigSpec(name, max_instances, template)
        self._resync()

    def isc(self, name: str, server: ServerSpec, lc: str = "lc1") -> None:
        self.state.iscs[name] = IscSpec(name, server, lc)
        self._resync()

    def population(self, lc: str, per_node: int) -> None:
        self.state.launcher_policy[lc] = per_node
        self._resync()

    # --- workloads ---------------------------------------------------------------------------

    def replicaset(
        self,
        name: str,
        *,
        spec: ServerSpec | None = None,
        isc: str | None = None,
        replicas: int = 1,
        gpus: int = 1,
        pin: tuple[str, ...] | None = None,
    ) -> ReplicaSet:
        rs = ReplicaSet(name, spec, isc, gpus, pin, 0)
        self.replica_sets[name] = rs
        self.scale(name, replicas)
        return rs

    def scale(self, name: str, replicas: int) -> None:
        rs = self.replica_sets[name]
        rs.replicas = replicas
        while len(rs.members) < replicas:
            self._create_member(rs)
        for uid in rs.members[replicas:]:
            self.cluster.delete_requester(uid, "scaled down")

    def switch(self, name: str, isc: str) -> None:
        """Change the ReplicaSet's template to name another ISC (applies to new requesters)."""
        self.replica_sets[name].isc = isc

    def _create_member(self, rs: ReplicaSet) -> None:
        self._uid += 1
        uid = f"{rs.name}-{self._uid}"
        requester = SimRequester(
            uid,
            uid,
            rs.isc or (rs.spec.model if rs.spec else "?"),
            rs.spec or spec("unused"),
            self.cluster.now_s(),
            0,
            gpus=rs.gpus,
            isc_name=rs.isc,
            pinned_gpus=rs.pin,
        )
        rs.members.append(uid)
        self.cluster.submit(requester)

    def _on_gone(self, requester: SimRequester) -> None:
        for rs in self.replica_sets.values():
            if requester.uid in rs.members:
                rs.members.remove(requester.uid)
                if len(rs.members) < rs.replicas:
                    self._create_member(rs)

    # --- users and operators doing things -------------------------------------------------------

    def patch_isc(self, name: str, server: ServerSpec) -> None:
        self.state.iscs[name] = replace(self.state.iscs[name], spec=server)
        self._resync()

    def delete_pod(self, provider: SimProvider) -> None:
        self.cluster.delete_provider(provider, "deleted by a user", by="user")
        self.cluster.touch(provider.node)

    def restart_controller(self) -> None:
        """A new controller with no memory: everything it knows comes from the cluster."""
        old = self.controller
        self.controller = SimController(self.cluster, old.policy)
        old.stopped = True
        self._resync()

    def run(self, seconds: float = 120.0) -> None:
        self.env.run(until=self.env.now + seconds)

    def _resync(self) -> None:
        for node in list(self.state.nodes):
            self.cluster.touch(node)

    # --- looking -------------------------------------------------------------------------------

    @property
    def state(self) -> SimState:
        return self.cluster.state

    def members(self, name: str) -> list[SimRequester]:
        return [
            self.state.requesters[uid]
            for uid in self.replica_sets[name].members
            if uid in self.state.requesters
        ]

    def only(self, name: str) -> SimRequester:
        (requester,) = self.members(name)
        return requester

    def provider_of(self, requester: SimRequester) -> SimProvider | None:
        return next(
            (p for p in self.state.providers.values() if p.bound_requester_uid == requester.uid),
            None,
        )

    def launchers(self, node: str | None = None) -> list[SimProvider]:
        return [
            p
            for p in self.state.providers.values()
            if p.kind is ProviderKind.LAUNCHER and (node is None or p.node == node)
        ]

    def direct_providers(self) -> list[SimProvider]:
        return [p for p in self.state.providers.values() if p.kind is ProviderKind.DIRECT]

    def instances(self, provider: SimProvider) -> list[str]:
        return [
            i for i, inst in provider.instances.items() if inst.state is not InstanceState.STOPPED
        ]

    def actuations(self) -> list[dict[str, object]]:
        return [e for e in self.cluster.trace.events if e["kind"] == "actuation"]

    def assert_invariants(self) -> None:
        assert check_all(self.cluster.trace.events) == []
