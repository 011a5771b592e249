"""Failure handling on the launcher path, end to end in the simulated cluster."""

from fma.core.model import InstanceState
from fma.core.policy import Policy
from tests.sim_harness import FAST, Harness, spec

MODEL = spec("m", port=8005, weights_gib=8)


def launcher_harness(**kwargs: object) -> Harness:
    h = Harness(nodes=2, gpus_per_node=2, **kwargs)  # type: ignore[arg-type]
    h.launcher_config("lc1", max_instances=2)
    h.isc("isc1", MODEL)
    return h


def test_requesters_waiting_for_a_missing_launcher_config_are_served_once_it_appears() -> None:
    h = Harness(nodes=1, gpus_per_node=2)
    h.isc("isc1", MODEL)
    h.replicaset("rs", isc="isc1")
    h.run()
    waiting = h.only("rs")
    assert not waiting.ready and waiting.errors == ("LauncherConfig lc1 not found",)
    h.launcher_config("lc1")
    h.run()
    assert h.only("rs").ready


def test_launcher_crash_deletes_the_requester_and_its_replacement_is_served() -> None:
    h = launcher_harness()
    h.replicaset("rs", isc="isc1")
    h.run()
    first = h.only("rs")
    launcher = h.provider_of(first)
    assert launcher is not None
    h.cluster.crash_launcher(launcher)
    h.run()
    second = h.only("rs")
    assert second.uid != first.uid and second.ready
    h.assert_invariants()


def test_requester_deleted_while_waking_leaves_a_sleeper_not_an_awake_orphan() -> None:
    h = launcher_harness()
    h.replicaset("rs", isc="isc1", pin=("GPU-node-0-0",))
    h.run()
    launcher = h.provider_of(h.only("rs"))
    h.scale("rs", 0)
    h.run()
    h.scale("rs", 1)
    # run until the wake has begun, then take the requester away
    while not any(e["kind"] == "instance_waking" for e in h.cluster.trace.events):
        h.run(0.05)
    h.scale("rs", 0)
    h.run()
    assert launcher is not None and launcher.bound_requester_uid is None
    assert [i.state for i in launcher.instances.values()] == [InstanceState.SLEEPING]
    h.assert_invariants()


def test_node_loss_on_the_launcher_path_moves_the_requester() -> None:
    h = launcher_harness()
    h.replicaset("rs", isc="isc1")
    h.run()
    lost = h.only("rs").node
    assert lost is not None
    h.cluster.lose_node(lost)
    h.run()
    assert h.only("rs").ready and h.only("rs").node != lost
    assert all(p.node != lost for p in h.state.providers.values())
    h.assert_invariants()


def test_launcher_that_never_becomes_ready_is_abandoned_and_the_requester_served_again() -> None:
    slow = FAST.model_copy(update={"launcher_start_s": 10_000.0})
    h = launcher_harness(latency=slow, policy=Policy(ready_timeout_s=60))
    h.replicaset("rs", isc="isc1")
    h.run(30)
    assert not h.only("rs").ready
    first_launcher = h.provider_of(h.only("rs"))
    h.cluster.latency = FAST  # the platform recovers; a new launcher starts in time
    h.run(200)
    requester = h.only("rs")
    assert requester.ready
    assert h.provider_of(requester) is not first_launcher
