"""Upstream's milestone-2 end-to-end suite (direct providers), on the real control plane.

The twin of ``tests/unit/sim/test_upstream_e2e_direct.py``: the same cases, by the same names,
asserting what upstream asserts — here with the operator as a process and requesters whose
``dual-pods.llm-d.ai/server-patch`` makes each provider a Pod of its own, running the stub
engine alone (``fma launcher stub-engine``). Each model's weights are 5 GiB and the operator
lets the sleepers of one GPU hold 10 GiB: upstream's sleeper limit of 2 per GPU. Requesters
are pinned to a node where a case needs it, and the pod runner gives the lowest free GPU.
"""

from __future__ import annotations

import pytest

from fma.api.constants import (
    ANN_ACCELERATORS,
    ANN_ACTUATION_PATH,
    ANN_NOMINAL,
    ANN_WEIGHTS_SIZE,
    LABEL_DUAL,
    LABEL_SLEEPING,
)
from tests.integration.conftest import GPUS_PER_NODE
from tests.integration.operator.harness import (
    Obj,
    World,
    annotations,
    container_pid,
    gpus_of,
    hold_gpus,
    is_ready,
    labels,
    pair_moved_off_its_node,
    pod_node,
    stub_server_patch,
    wait_runner_gpus_free,
)

pytestmark = pytest.mark.integration

WEIGHTS = {ANN_WEIGHTS_SIZE: "5Gi"}
PORT = 8005


def start(world: World) -> None:
    world.wait_gpus_free()  # the cases say which GPU each requester gets: the lowest free one
    world.operator("--sleeping-per-gpu-max", "10Gi")


def direct(world: World, rs: str, model: str = "granite-2b", *, node: str | None = None) -> None:
    """A ReplicaSet of one direct requester of ``model``."""
    world.replicaset(
        rs, server_patch=stub_server_patch(model, port=PORT), node=node, annotations=WEIGHTS
    )


def name(pod: Obj) -> str:
    return str(pod["metadata"]["name"])


def uid(pod: Obj) -> str:
    return str(pod["metadata"]["uid"])


def paths(world: World) -> list[str]:
    return [e["path"] for e in world.actuations()]


def engine(world: World, provider: Obj, path: str) -> Obj:
    """What the provider's engine answers at its Pod IP."""
    answer = world.http.get(f"http://{provider['status']['podIP']}:{PORT}{path}")
    answer.raise_for_status()
    body: Obj = answer.json()
    return body


def providers(world: World) -> list[Obj]:
    """The direct providers of the namespace that are not being deleted."""
    return [
        p
        for p in world.pods()
        if ANN_NOMINAL in annotations(p) and not p["metadata"].get("deletionTimestamp")
    ]


def test_1_upside_requester_and_provider_point_at_each_other(world: World) -> None:
    start(world)
    direct(world, "rs1")
    requester, provider = world.served("rs1")
    assert labels(requester)[LABEL_DUAL] == name(provider)
    assert labels(provider)[LABEL_DUAL] == name(requester)
    assert pod_node(provider) == pod_node(requester)
    assert is_ready(requester) and is_ready(provider)
    assert labels(provider)[LABEL_SLEEPING] == "false"
    assert "app" not in labels(provider)  # the server patch took the ReplicaSet's label off
    gpus = gpus_of(requester)
    assert len(gpus) == 1 and annotations(provider)[ANN_ACCELERATORS] == gpus[0]
    env = {e["name"]: e.get("value") for e in provider["spec"]["containers"][0]["env"]}
    assert env["CUDA_VISIBLE_DEVICES"] == gpus[0].rsplit("-", 1)[1]
    assert engine(world, provider, "/is_sleeping") == {"is_sleeping": False}
    assert [m["id"] for m in engine(world, provider, "/v1/models")["data"]] == ["granite-2b"]
    assert annotations(provider)[ANN_ACTUATION_PATH] == "cold"
    assert paths(world) == ["cold"]


def test_2_node_deletion_moves_the_pair_to_the_other_node(world: World) -> None:
    start(world)
    direct(world, "rs1")
    first, provider = world.served("rs1")
    with pair_moved_off_its_node(world, "rs1", first, provider) as (second, other):
        assert labels(second)[LABEL_DUAL] == name(other)
        assert labels(other)[LABEL_DUAL] == name(second)
        assert all(pod_node(p) != pod_node(first) for p in world.pods())


def test_3_requester_deletion_leaves_the_provider_asleep(world: World) -> None:
    start(world)
    direct(world, "rs1")
    _, provider = world.served("rs1")
    world.scale("rs1", 0)
    world.gone("rs1")
    idle = world.unbound(name(provider))
    assert [name(p) for p in providers(world)] == [name(provider)]
    assert engine(world, idle, "/is_sleeping") == {"is_sleeping": True}
    assert LABEL_DUAL not in labels(idle)


def test_4_gpu_pinning_a_scale_up_produces_a_new_pair_on_the_pinned_gpu(world: World) -> None:
    start(world)
    direct(world, "rs1", node="gpu-node-0")
    _, first = world.served("rs1")
    world.scale("rs1", 0)
    world.gone("rs1")
    world.unbound(name(first))
    # Pin the next requester to a GPU of gpu-node-1 that is not its lowest: the pod runner
    # gives the lowest free GPU, so a Pod of the project's image (not a requester) holds one.
    held = hold_gpus(world, "gpu-node-1", 1)
    pin = {
        "spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/hostname": "gpu-node-1"}}}}
    }
    world.apps.patch_namespaced_replica_set("rs1", world.namespace, pin)
    world.scale("rs1", 1)
    requester, provider = world.served("rs1")
    (pinned,) = gpus_of(requester)
    assert pinned.startswith("GPU-gpu-node-1-") and pinned not in held and is_ready(requester)
    assert name(provider) != name(first) and pod_node(provider) == "gpu-node-1"
    assert annotations(provider)[ANN_ACCELERATORS] == pinned
    assert world.pod(name(first)) is not None  # the sleeper on the other node stays
    assert paths(world) == ["cold", "cold"]


def test_5_reuse_the_replacement_requester_binds_the_same_provider(world: World) -> None:
    start(world)
    direct(world, "rs1", node="gpu-node-0")
    first, provider = world.served("rs1")
    hold_gpus(world, "gpu-node-0", 7)  # GPU 0 pinned: the replacement waits for it
    world.core.delete_namespaced_pod(name(first), world.namespace)
    second, same = world.served_anew("rs1", first)
    assert name(same) == name(provider)
    assert gpus_of(second) == gpus_of(first)
    assert annotations(same)[ANN_ACTUATION_PATH] == "hot"
    assert paths(world) == ["cold", "hot"]


def test_6_provider_deletion_deletes_the_requester_and_a_new_pair_appears(world: World) -> None:
    start(world)
    direct(world, "rs1")
    first, provider = world.served("rs1")
    world.core.delete_namespaced_pod(name(provider), world.namespace)
    second, other = world.served_anew("rs1", first)
    assert name(other) != name(provider)
    world.wait(lambda: world.pod(name(provider)) is None, "the deleted provider to be gone")
    world.wait(lambda: world.pod(name(first)) is None, "the old requester to be gone")
    deleted = [e for e in world.operators[0].events() if e["kind"] == "requester_deleting"]
    assert [e["requester"] for e in deleted] == [uid(first)]
    assert is_ready(second) and container_pid(world, other) is not None


def test_7_sleeper_limit_evicts_the_least_recently_used_sleeper(world: World) -> None:
    wait_runner_gpus_free(world, "gpu-node-0", GPUS_PER_NODE)  # each requester gets GPU 0
    start(world)
    names, gpus = {}, set()
    for n in (2, 3, 4):
        direct(world, f"rs{n}", f"model-{n}", node="gpu-node-0")
        requester, provider = world.served(f"rs{n}")
        gpus.add(tuple(gpus_of(requester)))
        names[n] = name(provider)
        world.scale(f"rs{n}", 0)
        world.gone(f"rs{n}")
    world.wait(
        lambda: {name(p) for p in providers(world)} == {names[3], names[4]},
        "two sleepers left on the GPU",
    )
    direct(world, "rs5", "model-5", node="gpu-node-0")
    requester, provider = world.served("rs5")
    gpus.add(tuple(gpus_of(requester)))
    assert is_ready(requester) and len(gpus) == 1  # all on the same GPU
    remaining = {name(p) for p in providers(world)}
    assert names[2] not in remaining
    assert {names[3], names[4], name(provider)} == remaining
    evicted = [e for e in world.operators[0].events() if e["kind"] == "provider_deleting"]
    assert [e["provider"] for e in evicted] == [names[2]]
