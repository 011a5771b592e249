"""The simulated controller's work model: merged notifications, workers, backoff, restarts.

The queue itself is :mod:`fma.control.queue` (tested alone in ``tests/unit/control``); these
tests drive it through the simulator's informer and executor, on SimPy time."""

from collections.abc import Sequence

import simpy

from fma.adapters.sim.cluster import SimCluster
from fma.adapters.sim.controller import SimController
from fma.adapters.sim.state import SimRequester
from fma.api.latency import GIB, Latency
from fma.control.reconcile import Decision
from fma.core.actions import Action, SleepInstance
from fma.core.model import ServerSpec
from fma.core.outcomes import Outcome, OutcomeKind
from fma.core.policy import Policy
from tests.sim_harness import Harness

LATENCY = Latency(
    watch_delay_s=0.5,
    controller_reaction_s=0.1,
    api_write_s=0.01,
    controller_workers=1,
    backoff_base_s=0.005,
    backoff_max_s=20.0,
)


class Recorder:
    """An executor that notes when each plan was applied; it fails every action if told to."""

    def __init__(self, env: simpy.Environment, *, fail: bool) -> None:
        self.env = env
        self.fail = fail
        self.applied_s: list[float] = []

    def apply(self, decision: Decision) -> Sequence[Outcome]:
        self.applied_s.append(float(self.env.now))
        return [self.apply_one(a) for a in decision.plan.actions[:1]]

    def apply_one(self, action: Action) -> Outcome:
        if self.fail:
            return Outcome(action, OutcomeKind.TRANSIENT, "boom")
        return Outcome(action)

    def refuse_sleep(self, action: SleepInstance) -> None:
        raise AssertionError("not expected here")

    def take_waited_s(self) -> float:
        return 0.0


def world(*, fail: bool = False) -> tuple[simpy.Environment, SimCluster, SimController, Recorder]:
    harness = Harness(nodes=2, gpus_per_node=2, latency=LATENCY)
    env, cluster = harness.env, harness.cluster
    recorder = Recorder(env, fail=fail)
    controller = SimController(cluster, Policy(), executor=recorder)
    harness.controller.stopped = True
    return env, cluster, controller, recorder


def add_requester(cluster: SimCluster) -> None:
    spec = ServerSpec(model="m", port=8000, weights_bytes=GIB)
    cluster.submit(SimRequester("r1", "r1", "m", spec, 0.0, 0))


def test_notifications_before_delivery_merge_into_one_reconcile() -> None:
    env, cluster, controller, _ = world()
    for _ in range(10):
        cluster.touch("node-0")
    env.run(until=5)
    assert controller.reconciles == 1


def test_a_failing_plan_is_retried_with_doubling_backoff_capped_at_20_s() -> None:
    env, cluster, controller, recorder = world(fail=True)
    add_requester(cluster)
    env.run(until=200)
    gaps = [b - a for a, b in zip(recorder.applied_s, recorder.applied_s[1:], strict=False)]
    busy_s = LATENCY.controller_reaction_s + LATENCY.api_write_s  # one failed call per pass
    backoffs = [round(g - busy_s, 6) for g in gaps]
    assert backoffs[:4] == [0.005, 0.01, 0.02, 0.04]
    assert max(backoffs) == 20.0
    assert backoffs[-1] == 20.0
    assert controller.retries == len(recorder.applied_s)


def test_one_worker_serves_nodes_one_after_the_other() -> None:
    env, cluster, controller, _ = world()
    cluster.touch("node-0")
    cluster.touch("node-1")
    env.run(until=0.5 + 0.1 + 0.05)
    assert controller.reconciles == 1  # the second node waits for the only worker
    env.run(until=2)
    assert controller.reconciles == 2


def test_a_change_during_a_reconcile_runs_the_node_once_more() -> None:
    env, cluster, controller, _ = world()
    cluster.touch("node-0")
    env.run(until=0.55)  # delivered at 0.5, reconcile at 0.6
    cluster.touch("node-0")  # delivered at 1.05
    env.run(until=0.65)
    assert controller.reconciles == 1
    env.run(until=3)
    assert controller.reconciles == 2


def test_a_restarted_controller_ignores_events_while_down_then_relists() -> None:
    env, cluster, controller, _ = world()
    controller.restart(down_s=10)
    cluster.touch("node-0")
    env.run(until=9)
    assert controller.reconciles == 0
    env.run(until=20)
    # Back at 10 s, re-listed after relist_s: every node (and the configs) reconciled once.
    assert controller.reconciles == 3
    assert [e["kind"] for e in cluster.trace.events[-3:]] == [
        "controller_down",
        "controller_up",
        "relist",
    ]


def test_a_stopped_controller_does_nothing_more() -> None:
    env, cluster, controller, _ = world()
    cluster.touch("node-0")
    controller.stopped = True
    env.run(until=5)
    assert controller.reconciles == 0


def test_an_idle_controller_says_so() -> None:
    env, cluster, controller, _ = world()
    assert controller.idle
    cluster.touch("node-0")
    assert not controller.idle
    env.run(until=5)
    assert controller.idle
