"""A run's two phases: safety with faults, then liveness without them.

During the *fault phase* the scenario's faults are armed (:mod:`fma.adapters.sim.faults`) and
the checkers only judge safety. When the last fault is over, the runner records ``faults_off``
with ``bound_s``, the time within which everything must settle from then on: every scheduled
requester becomes ready (or is deleted), every deletion completes. The checker
:func:`fma.bench.invariants.liveness` judges that from the trace.

With a drain (``drain_s``) the run continues after the demand stops, until the cluster is
*quiet* — no requester left, the controller idle, no engine busy — and records ``quiescent``,
at which point :func:`fma.bench.invariants.nothing_leaked` judges what is left over.
"""

import contextlib
import gc
from collections.abc import Callable, Iterator
from typing import Any

import simpy

from fma.adapters.sim.cluster import SimCluster
from fma.adapters.sim.controller import SimController
from fma.adapters.sim.faults import FaultInjector, faults_end_s
from fma.adapters.sim.inventory import record_inventory
from fma.api.latency import GB, GIB
from fma.api.scenario import Scenario
from fma.core.model import InstanceState

QUIET_CHECK_S = 60.0
"""How often the drain looks for quiet: coarse, since it only ends the run early."""

ProgressFn = Callable[[float, float], None]


def liveness_bound_s(scenario: Scenario) -> float:
    """Sim seconds within which a requester must settle once faults are off.

    Generous on purpose — the check is for "never", not for "slow": a provider abandoned after
    the ready timeout, plus two of the slowest starts (cold, with a launcher, after the previous
    tenant's sleep), a controller restart, and a few capped retries.
    """
    lat = scenario.latency
    slowest_s = 0.0
    probes_s = lat.launcher_probe_delay_s + lat.launcher_probe_period_s + lat.engine_probe_max_s
    for pool in scenario.cluster.node_pools:
        for model in scenario.models:
            weights = model.weights_gib * GIB
            start_s = (
                lat.scheduler_s
                + lat.pod_start_s
                + lat.vllm_import_s
                + lat.launcher_start_s
                + probes_s
                # every GPU of the node loading at once from its one disk
                + weights * pool.gpus_per_node / model.gpus / (pool.disk_gbps * GB)
                + model.compile_s
                + model.engine_init_s
                + lat.sleep_overhead_s
                + weights / (pool.pin_gbps * GB)
                + weights / model.gpus / (pool.sleep_gbps * GB)
                + lat.wake_overhead_s
                + weights / model.gpus / (pool.wake_gbps * GB)
                + 2 * lat.engine_stop_s
                + lat.pod_stop_s
            )
            slowest_s = max(slowest_s, start_s)
    return round(
        scenario.policy.ready_timeout
        + 2 * slowest_s
        + lat.controller_restart_s
        + lat.relist_s
        + 4 * lat.backoff_max_s
        + 60.0,
        3,
    )


def reaction_bound_s(scenario: Scenario) -> float:
    """Sim seconds within which the controller reacts to a change it did not cause (an engine
    crash, a launcher restart): readiness that became wrong must be withdrawn by then.

    The informer's delay, the longest watch hold-back a fault may add (a dropped notification
    is repaired by the re-list that ends its window), a controller restart, capped retries and
    a few reconciles."""
    lat = scenario.latency
    held_s = max((f.delay or 0.0 for f in scenario.faults if f.kind == "watch_delay"), default=0)
    dropped_s = max(
        (
            (f.until if f.until is not None else scenario.duration) - f.start
            for f in scenario.faults
            if f.kind == "watch_drop"
        ),
        default=0.0,
    )
    return round(
        lat.watch_delay_s
        + held_s
        + dropped_s
        + lat.controller_restart_s
        + lat.relist_s
        + 4 * lat.backoff_max_s
        + lat.http_timeout_s
        + 10 * (lat.controller_reaction_s + lat.api_write_s)
        + 5.0,
        3,
    )


def is_quiet(cluster: SimCluster, controller: SimController) -> bool:
    """No requester, a running controller with nothing queued, no engine starting, moving
    weights or stopping."""
    if cluster.state.requesters or not controller.up or not controller.idle:
        return False
    return not any(
        i.state.in_flight or i.state in (InstanceState.STARTING, InstanceState.STOPPING)
        for p in cluster.state.providers.values()
        for i in p.instances.values()
    )


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """A simulation allocates a great many small objects that live long (trace records,
    snapshots that the view caches keep) and makes almost no reference cycles (a day on 100
    nodes leaves some 8,000 cyclic objects behind), so the cyclic collector, walking them again
    and again, is switched off for the run and run once at its end."""
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()
        gc.collect()


class Phases:
    """Runs the fault phase to ``end_s``, then (optionally) drains until quiet."""

    def __init__(
        self,
        env: simpy.Environment,
        cluster: SimCluster,
        controller: SimController,
        injector: FaultInjector,
        *,
        faults_off_s: float | None,
        bound_s: float,
    ) -> None:
        self.env = env
        self.cluster = cluster
        self.controller = controller
        self.injector = injector
        self.bound_s = bound_s
        self.faults_off = False
        self.quiescent = False
        if faults_off_s is not None:
            env.timeout(faults_off_s).callbacks.append(lambda _event: self.turn_faults_off())

    def turn_faults_off(self) -> None:
        """End every fault and start the liveness clock (once)."""
        if self.faults_off:
            return
        self.faults_off = True
        self.injector.stop()
        self.cluster.trace.record(float(self.env.now), "faults_off", bound_s=self.bound_s)

    def run(
        self, end_s: float, *, drain_s: float = 0.0, progress: ProgressFn | None = None
    ) -> bool:
        """Simulate to ``end_s``, then up to ``drain_s`` more until quiet. Returns quiet."""
        with _fewer_collections():
            return self._run(end_s, drain_s, progress)

    def _run(self, end_s: float, drain_s: float, progress: ProgressFn | None) -> bool:
        steps = 100 if progress is not None else 1
        total_s = end_s + drain_s
        for step in range(1, steps + 1):
            self.env.run(until=end_s * step / steps)
            if progress is not None:
                progress(float(self.env.now), total_s)
        if drain_s <= 0:
            return False
        quiet = self.env.event()
        self._check_quiet(quiet)
        self.env.run(until=self.env.any_of([quiet, self.env.timeout(drain_s)]))
        if progress is not None:
            progress(float(self.env.now), total_s)
        return self.quiescent

    def _check_quiet(self, quiet: simpy.Event) -> None:
        if self.faults_off and is_quiet(self.cluster, self.controller):
            self.quiescent = True
            self.cluster.trace.record(float(self.env.now), "quiescent")
            quiet.succeed()
            return

        def again(_event: Any) -> None:
            self._check_quiet(quiet)

        self.env.timeout(QUIET_CHECK_S).callbacks.append(again)


def start_phases(
    env: simpy.Environment,
    cluster: SimCluster,
    controller: SimController,
    scenario: Scenario,
    *,
    seed: int,
    launchers_wanted: int = 0,
    faults_off_by_itself: bool = True,
) -> Phases:
    """Record the inventory, arm the scenario's faults and set the liveness clock of a run.

    Faults end by themselves after the scenario's last one, unless ``faults_off_by_itself`` is
    False: then only :meth:`Phases.turn_faults_off` ends them (when a test injects faults of
    its own, liveness may be judged only once it stops)."""
    record_inventory(
        cluster.trace,
        cluster.state.nodes,
        scenario,
        controller.policy,
        launchers_wanted=launchers_wanted,
        grace_s=reaction_bound_s(scenario),
    )
    injector = FaultInjector(
        cluster, controller, scenario.faults, end_s=scenario.duration, seed=seed
    )
    injector.start()
    return Phases(
        env,
        cluster,
        controller,
        injector,
        faults_off_s=faults_end_s(
            scenario.faults,
            scenario.duration,
            restart_s=scenario.latency.controller_restart_s,
        )
        if faults_off_by_itself
        else None,
        bound_s=liveness_bound_s(scenario),
    )
