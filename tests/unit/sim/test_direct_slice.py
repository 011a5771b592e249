"""The direct path end to end through the simulator: cold, ready, sleep on delete, hot wake."""

import pytest
import simpy

from fma.adapters.sim.cluster import SimCluster
from fma.adapters.sim.controller import SimController
from fma.adapters.sim.runner import build_nodes
from fma.adapters.sim.state import SimRequester, SimState
from fma.adapters.sim.trace import Trace
from fma.api.latency import GB, GIB, Latency
from fma.api.scenario import Scenario
from fma.bench.invariants import check_all
from fma.core.model import InstanceState, ServerSpec
from fma.core.policy import Actuation, Policy

LATENCY = Latency(
    pod_start_s=5,
    watch_delay_s=0.0,
    controller_reaction_s=0.0,
    scheduler_s=0.0,
    sleep_overhead_s=0.3,
    wake_overhead_s=0.2,
)
SPEC = ServerSpec(model="llama-8b", port=8000, weights_bytes=16 * GIB, engine_init_s=30)


def world(policy: Policy | None = None) -> tuple[simpy.Environment, SimCluster]:
    scenario = Scenario.model_validate(
        {
            "name": "slice",
            "duration": 3600,
            "cluster": {
                "node_pools": [
                    {
                        "name": "n",
                        "count": 1,
                        "gpus_per_node": 2,
                        "h2d_gbps": 20,
                        "d2h_gbps": 10,
                        "disk_gbps": 2,
                        # the same GPU again for the second requester
                        "gpu_allocation": "lowest-index",
                    }
                ]
            },
            "models": [{"name": "llama-8b", "weights_gib": 16}],
            "demand": [{"model": "llama-8b"}],
        }
    )
    env = simpy.Environment()
    cluster = SimCluster(env, SimState(nodes=build_nodes(scenario)), Trace(), LATENCY)
    SimController(cluster, policy or Policy())
    return env, cluster


def submit(cluster: SimCluster, uid: str) -> SimRequester:
    requester = SimRequester(uid, uid, "llama-8b", SPEC, cluster.now_s(), 0)
    cluster.submit(requester)
    return requester


def actuations(cluster: SimCluster) -> list[dict[str, object]]:
    return [e for e in cluster.trace.events if e["kind"] == "actuation"]


def test_cold_then_sleep_then_hot() -> None:
    env, cluster = world()
    first = submit(cluster, "r1")
    env.run(until=200)
    assert first.ready
    (cold,) = actuations(cluster)
    # The requester's GPUs are learnt once its program answers (one call); the Pod made then
    # starts (pod start, vLLM import), loads 16 GiB from disk at 2 GB/s and initialises: the
    # engine serves then, and the controller sees it at its next probe (at once, then 0.25 s
    # later, doubling to every 2 s).
    assert cold["path"] == "cold"
    created_s = LATENCY.requester_start_s + LATENCY.http_call_s
    up_s = 5 + LATENCY.vllm_import_s + 16 * GIB / (2 * GB) + 30
    probes_s = [0.0, 0.25, 0.75, 1.75, *(3.75 + 2 * k for k in range(100))]
    assert up_s not in probes_s
    expected_s = created_s + min(t for t in probes_s if t >= up_s)
    assert cold["latency_s"] == pytest.approx(expected_s, abs=0.02)

    cluster.delete_requester("r1", "scaled down")
    env.run(until=300)
    assert "r1" not in cluster.state.requesters
    (provider,) = cluster.state.providers.values()
    (instance,) = provider.instances.values()
    assert instance.state is InstanceState.SLEEPING and provider.bound_requester_uid is None

    second = submit(cluster, "r2")
    env.run(until=400)
    assert second.ready
    hot = actuations(cluster)[1]
    assert hot["path"] == "hot"
    # once its GPUs are learnt, waking moves 16 GiB host -> device at 20 GB/s, plus the fixed
    # overhead
    wake_s = 0.2 + 16 * GIB / (20 * GB)
    assert hot["latency_s"] == pytest.approx(created_s + wake_s, abs=0.1)
    assert list(cluster.state.providers) == [provider.name]  # the same provider served again
    assert check_all(cluster.trace.events) == []


def test_cold_policy_starts_again() -> None:
    env, cluster = world(Policy(actuation=Actuation.COLD))
    submit(cluster, "r1")
    env.run(until=200)
    cluster.delete_requester("r1", "scaled down")
    env.run(until=300)
    assert cluster.state.providers == {}
    submit(cluster, "r2")
    env.run(until=500)
    assert [a["path"] for a in actuations(cluster)] == ["cold", "cold"]


def test_requester_waits_while_the_previous_provider_sleeps() -> None:
    """A new requester on the same GPU must not load while the old instance is still awake."""
    env, cluster = world()
    submit(cluster, "r1")
    env.run(until=200)
    cluster.delete_requester("r1", "scaled down")
    cluster.state.nodes["n-0"].gpus = cluster.state.nodes["n-0"].gpus[:1]  # one GPU: same slot
    other = SimRequester(
        "r2",
        "r2",
        "qwen",
        ServerSpec(model="qwen", port=8000, weights_bytes=8 * GIB),
        cluster.now_s(),
        0,
    )
    cluster.submit(other)
    env.run(until=400)
    assert other.ready
    assert check_all(cluster.trace.events) == []
