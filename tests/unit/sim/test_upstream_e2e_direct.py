"""Upstream's milestone-2 end-to-end suite (direct providers), over the simulated cluster.

Two nodes, direct requesters, no launchers; the sleeping budget stands in for upstream's
sleeper limit of 2 per GPU. Each test is one upstream case and asserts what upstream asserts.
"""

from fma.api.latency import GIB
from fma.core.model import InstanceState
from fma.core.policy import Actuation, Policy
from tests.sim_harness import Harness, spec

MODEL = spec("granite-2b", weights_gib=5)
TWO_SLEEPERS_PER_GPU = Policy(actuation=Actuation.DIRECT_SLEEP, sleeping_bytes_per_gpu_max=10 * GIB)


def harness() -> Harness:
    return Harness(nodes=2, gpus_per_node=2, policy=TWO_SLEEPERS_PER_GPU)


def test_1_upside_requester_and_provider_point_at_each_other() -> None:
    h = harness()
    h.replicaset("rs1", spec=MODEL)
    h.run()
    requester = h.only("rs1")
    provider = h.provider_of(requester)
    assert provider is not None and provider.node == requester.node
    assert requester.ready
    (instance,) = provider.instances.values()
    assert instance.gpu_uuids == requester.gpu_uuids
    h.assert_invariants()


def test_2_node_deletion_moves_the_pair_to_the_other_node() -> None:
    h = harness()
    h.replicaset("rs1", spec=MODEL)
    h.run()
    first = h.only("rs1")
    old_node = first.node
    assert old_node is not None
    h.cluster.lose_node(old_node)
    h.run()
    second = h.only("rs1")
    assert second.uid != first.uid and second.node != old_node and second.ready
    provider = h.provider_of(second)
    assert provider is not None and provider.node == second.node
    assert all(p.node != old_node for p in h.state.providers.values())
    h.assert_invariants()


def test_3_requester_deletion_leaves_the_provider_asleep() -> None:
    h = harness()
    h.replicaset("rs1", spec=MODEL)
    h.run()
    h.scale("rs1", 0)
    h.run()
    (provider,) = h.direct_providers()
    assert provider.bound_requester_uid is None
    assert [i.state for i in provider.instances.values()] == [InstanceState.SLEEPING]


def test_4_gpu_pinning_a_scale_up_produces_a_new_pair_on_the_pinned_gpu() -> None:
    h = harness()
    h.replicaset("rs1", spec=MODEL)
    h.run()
    h.scale("rs1", 0)
    h.run()
    h.replica_sets["rs1"].pin = ("GPU-node-1-1",)
    h.scale("rs1", 1)
    h.run()
    requester = h.only("rs1")
    assert requester.gpu_uuids == ("GPU-node-1-1",) and requester.ready
    assert h.provider_of(requester) is not None


def test_5_reuse_the_replacement_requester_binds_the_same_provider() -> None:
    h = harness()
    h.replicaset("rs1", spec=MODEL, pin=("GPU-node-0-0",))
    h.run()
    first = h.only("rs1")
    provider = h.provider_of(first)
    h.cluster.delete_requester(first.uid, "deleted by a user")
    h.run()
    second = h.only("rs1")
    assert second.uid != first.uid and second.ready
    assert h.provider_of(second) is provider
    assert [a["path"] for a in h.actuations()] == ["cold", "hot"]


def test_6_provider_deletion_deletes_the_requester_and_a_new_pair_appears() -> None:
    h = harness()
    h.replicaset("rs1", spec=MODEL)
    h.run()
    first = h.only("rs1")
    provider = h.provider_of(first)
    assert provider is not None
    h.delete_pod(provider)
    h.run()
    second = h.only("rs1")
    assert second.uid != first.uid and second.ready
    assert provider.name not in h.state.providers
    assert h.provider_of(second) is not None
    h.assert_invariants()


def test_7_sleeper_limit_evicts_the_least_recently_used_sleeper() -> None:
    h = harness()
    gpu = ("GPU-node-0-0",)
    names = {}
    for n in (2, 3, 4):
        h.replicaset(f"rs{n}", spec=spec(f"model-{n}", weights_gib=5), pin=gpu)
        h.run()
        names[n] = h.provider_of(h.only(f"rs{n}")).name  # type: ignore[union-attr]
        h.scale(f"rs{n}", 0)
        h.run()
    h.replicaset("rs5", spec=spec("model-5", weights_gib=5), pin=gpu)
    h.run()
    assert h.only("rs5").ready
    remaining = {p.name for p in h.direct_providers()}
    assert names[2] not in remaining
    assert {names[3], names[4]} <= remaining
    h.assert_invariants()
