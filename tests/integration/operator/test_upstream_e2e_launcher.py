"""Upstream's milestone-3 end-to-end suite (launchers), on the real control plane.

The twin of ``tests/unit/sim/test_upstream_e2e_launcher.py``: the same cases, by the same
names, asserting what upstream asserts — here with the operator as a process, launcher and
requester processes run by the pod runner at their Pod IPs, and the stub engine. Three ISCs
share one LauncherConfig with ``maxInstances: 2``; a population policy keeps one launcher on
each GPU node. Requesters are pinned to one node, as upstream's GPU pin, and the pod runner
gives the lowest free GPU, so a replacement gets the same GPU back.
"""

from __future__ import annotations

import pytest
from kubernetes.client.rest import ApiException

from fma.api.constants import ANN_ACTUATION_PATH, ANN_INSTANCE_ID, LABEL_SLEEPING
from tests.integration.operator.harness import (
    Obj,
    World,
    annotations,
    gpus_of,
    hold_gpus,
    is_ready,
    labels,
    pod_node,
    poll,
)

pytestmark = pytest.mark.integration

NODE = "gpu-node-0"
ROUTING = {"llm-d.ai/model": "smollm"}
TEMPLATE_LABELS = {"team": "serving"}
TEMPLATE_ANNOTATIONS = {"example.com/owner": "serving"}


def setup(world: World, *, per_node: int = 1) -> None:
    world.wait_gpus_free()  # a replacement gets the same GPU back only if none is held
    world.launcher_config(
        "lc1", max_instances=2, labels=TEMPLATE_LABELS, annotations=TEMPLATE_ANNOTATIONS
    )
    world.isc("isc1", port=8005, model="smollm", labels=ROUTING)
    world.isc("isc2", port=8006, model="qwen")
    world.isc("isc3", port=8007, model="tinyllama")
    world.population("lpp1", "lc1", per_node, {"matchLabels": {"nvidia.com/gpu.present": "true"}})
    world.operator()
    world.wait(
        lambda: all(
            len([p for p in world.launchers(n) if is_ready(p)]) >= per_node
            for n in world.cluster.nodes
        ),
        "the population's launchers to be Ready",
    )


def test_2_basic_launcher_creation_and_binding(world: World) -> None:
    setup(world)
    assert all(len(world.launchers(n)) >= 1 for n in world.cluster.nodes)
    world.replicaset("rs1", isc="isc1", node=NODE)
    requester, launcher = world.served("rs1")
    assert pod_node(launcher) == pod_node(requester) == NODE
    assert labels(launcher).items() >= ROUTING.items()  # the ISC's routing metadata
    assert labels(launcher).items() >= TEMPLATE_LABELS.items()  # the LC template's
    assert annotations(launcher).items() >= TEMPLATE_ANNOTATIONS.items()
    assert labels(launcher)[LABEL_SLEEPING] == "false"
    assert gpus_of(requester) == [f"GPU-{NODE}-0"]
    paths = [e["path"] for e in world.operators[0].events() if e["kind"] == "actuation"]
    assert paths == ["warm"]  # the population made the launcher ahead


def test_6_wake_up_fast_path_binds_the_same_launcher(world: World) -> None:
    setup(world)
    world.replicaset("rs1", isc="isc1", node=NODE)
    requester, launcher = world.served("rs1")
    gpus = gpus_of(requester)
    hold_gpus(world, NODE, 7)  # the GPU pinned
    world.scale("rs1", 0)
    world.gone("rs1")
    name = launcher["metadata"]["name"]

    def asleep_and_unbound() -> bool:
        pod = world.pod(name)
        return (
            pod is not None
            and labels(pod).get(LABEL_SLEEPING) == "true"
            and "dual-pods.llm-d.ai/dual" not in labels(pod)
        )

    world.wait(asleep_and_unbound, "the launcher to be unbound and asleep")
    idle = world.pod(name)
    assert idle is not None
    assert not labels(idle).items() & ROUTING.items()  # routing metadata taken off
    assert labels(idle).items() >= TEMPLATE_LABELS.items()  # the template's kept
    world.scale("rs1", 1)
    again, same = world.served("rs1")
    assert same["metadata"]["name"] == name
    assert gpus_of(again) == gpus
    assert labels(same).items() >= ROUTING.items()
    paths = [e["path"] for e in world.operators[0].events() if e["kind"] == "actuation"]
    assert paths == ["warm", "hot"]


# --- helpers of the cases below ------------------------------------------------------------------


def serving(world: World, rs: str = "rs1", isc: str = "isc1") -> tuple[Obj, Obj]:
    """Create (or scale up) a pinned ReplicaSet of one and wait until it is served:
    (requester, launcher)."""
    if world.has_replicaset(rs):
        world.scale(rs, 1)
    else:
        world.replicaset(rs, isc=isc, node=NODE)
    return world.served(rs)


def idle(world: World, launcher: Obj, rs: str = "rs1") -> Obj:
    """Scale ``rs`` to zero and wait until ``launcher`` is unbound (its instance asleep or
    gone): the launcher as it is then."""
    world.scale(rs, 0)
    world.gone(rs)
    return world.unbound(launcher["metadata"]["name"])


def switch_and_serve(world: World, launcher: Obj, isc: str) -> tuple[Obj, Obj]:
    """Scale to zero, point the ReplicaSet at another ISC, and serve again."""
    idle(world, launcher)
    world.switch("rs1", isc)
    return serving(world)


def paths(world: World) -> list[str]:
    return [e["path"] for e in world.actuations()]


def name(pod: Obj) -> str:
    return str(pod["metadata"]["name"])


def test_1_gpu_probe_a_requester_lands_on_a_gpu_node(world: World) -> None:
    setup(world)
    world.replicaset("probe", isc="isc1", gpus=2)
    requester, launcher = world.served("probe")
    assert pod_node(requester) in world.cluster.nodes
    assert pod_node(launcher) == pod_node(requester)
    gpus = gpus_of(requester)
    assert len(gpus) == 2 and all(g.startswith(f"GPU-{pod_node(requester)}-") for g in gpus)
    (instance,) = [i for i in world.instances(launcher) if i["status"] == "running"]
    assert sorted(instance["gpu_uuids"]) == sorted(gpus)


def test_3_lpp_key_uniqueness_duplicate_launcher_config_names_are_rejected(world: World) -> None:
    spec = {
        "enhancedNodeSelector": {"labelSelector": {}},
        "countForLauncher": [
            {"launcherConfigName": "lc1", "launcherCount": 1},
            {"launcherConfigName": "lc1", "launcherCount": 2},
        ],
    }
    with pytest.raises(ApiException) as rejected:
        world.create_custom("LauncherPopulationPolicy", "lpp", spec)
    assert rejected.value.status == 422
    assert "Duplicate value" in str(rejected.value.body)
    assert 'launcherConfigName":"lc1"' in str(rejected.value.body).replace("\\", "")
    with pytest.raises(ApiException):
        world.get_custom("LauncherPopulationPolicy", "lpp")


def test_5_same_node_port_collision_gets_a_different_launcher_and_gpus(world: World) -> None:
    setup(world)
    first, launcher1 = serving(world, "rs1")
    world.replicaset("rs2", isc="isc1", node=NODE)
    second, launcher2 = world.served("rs2")
    assert pod_node(second) == pod_node(first) == NODE
    assert name(launcher2) != name(launcher1)
    assert pod_node(launcher2) == NODE
    assert set(gpus_of(first)).isdisjoint(gpus_of(second))
    assert labels(launcher2).items() >= ROUTING.items()
    assert is_ready(world.pod(name(first)) or {}) and is_ready(second)
    # The population made launcher2 for rs2 while rs2's GPUs were not known yet (its SPI
    # answers a second after it starts), so rs2 binds it unbound: warm, not cold_launcher.
    assert paths(world) == ["warm", "warm"]
    assert launcher2["metadata"]["creationTimestamp"] >= second["metadata"]["creationTimestamp"]


def test_7_multiple_instances_share_one_launcher(world: World) -> None:
    setup(world)
    _, launcher = serving(world)
    _, same = switch_and_serve(world, launcher, "isc2")
    assert name(same) == name(launcher)
    instances = world.instances(same)
    assert len(instances) == 2
    assert sorted(i["annotations"]["isc-name"] for i in instances) == ["isc1", "isc2"]
    assert not labels(same).items() & ROUTING.items()  # isc2 has no routing metadata
    assert paths(world) == ["warm", "warm"]


def test_8_switch_instances_in_one_launcher_wakes_the_first(world: World) -> None:
    setup(world)
    _, launcher = serving(world)
    first_ids = {i["instance_id"] for i in world.instances(launcher)}
    for isc in ("isc2", "isc1"):
        _, same = switch_and_serve(world, launcher, isc)
        assert name(same) == name(launcher)
    assert annotations(same)[ANN_INSTANCE_ID] in first_ids
    assert labels(same).items() >= ROUTING.items()
    assert annotations(same)[ANN_ACTUATION_PATH] == "hot"
    assert paths(world) == ["warm", "warm", "hot"]


def test_9_per_launcher_cap_reclaims_instead_of_a_new_launcher(world: World) -> None:
    setup(world)
    _, launcher = serving(world)
    for isc in ("isc2", "isc3"):
        idle(world, launcher)
        world.switch("rs1", isc)
        launchers_before = {name(p) for p in world.launchers()}
        _, same = serving(world)
    assert {name(p) for p in world.launchers()} == launchers_before
    assert name(same) == name(launcher)
    instances = world.instances(same)
    assert len(instances) == 2
    assert "isc3" in {i["annotations"]["isc-name"] for i in instances}


def test_10_controller_restart_recovers_from_the_cluster_alone(world: World) -> None:
    setup(world)
    _, launcher = serving(world)
    switch_and_serve(world, launcher, "isc2")
    idle(world, launcher)
    launchers = {name(p) for p in world.launchers()}
    instances = {p: len(world.instances(world.pod(p) or {})) for p in launchers}
    assert instances[name(launcher)] == 2
    operator = world.operators[0]
    operator.restart()
    world.wait(
        lambda: sum(1 for e in operator.events() if e["kind"] == "relist") == 2,
        "the restarted operator to relist",
    )
    for _ in poll(3):
        assert {name(p) for p in world.launchers()} == launchers
        assert {p: len(world.instances(world.pod(p) or {})) for p in launchers} == instances
    _, same = serving(world)
    assert name(same) == name(launcher)
    assert annotations(same)[ANN_ACTUATION_PATH] == "hot"
    assert paths(world)[-1] == "hot"


def test_11_obsolete_sleeper_is_garbage_collected(world: World) -> None:
    setup(world)
    _, launcher = serving(world, isc="isc3")
    idle(world, launcher)
    assert len(world.instances(launcher)) == 1
    options = world.get_custom("InferenceServerConfig", "isc3")["spec"]["modelServerConfig"]
    options = options["options"] + " --served-model-name tl"
    world.patch_custom(
        "InferenceServerConfig", "isc3", {"spec": {"modelServerConfig": {"options": options}}}
    )
    world.wait(lambda: not world.instances(launcher), "the obsolete sleeper to be deleted")
    assert world.pod(name(launcher)) is not None  # the launcher stays


def test_12_obsolete_awake_instance_is_deleted_on_unbind(world: World) -> None:
    setup(world)
    _, launcher = serving(world, isc="isc2")
    original = world.get_custom("InferenceServerConfig", "isc2")["spec"]["modelServerConfig"]
    patched = original["options"] + " --max-model-len 1024"
    world.patch_custom(
        "InferenceServerConfig", "isc2", {"spec": {"modelServerConfig": {"options": patched}}}
    )
    for _ in poll(2):  # serving: kept until unbind
        (instance,) = world.instances(launcher)
        assert instance["status"] == "running"
        assert world.pair("rs1") is not None
    operator = world.operators[0]
    idle(world, launcher)
    assert world.instances(launcher) == []  # deleted, not put to sleep
    assert not [e for e in operator.events() if e["kind"] == "instance_falling_asleep"]
    world.patch_custom(
        "InferenceServerConfig",
        "isc2",
        {"spec": {"modelServerConfig": {"options": original["options"]}}},
    )
    _, again = serving(world)
    assert name(again) == name(launcher) and paths(world) == ["warm", "warm"]


def test_13_unbound_launcher_deletion_then_a_new_launcher_is_bound(world: World) -> None:
    setup(world)
    first, launcher = serving(world)
    hold_gpus(world, NODE, 7)  # the GPU pinned
    idle(world, launcher)
    world.core.delete_namespaced_pod(name(launcher), world.namespace)
    world.wait(lambda: world.pod(name(launcher)) is None, "the deleted launcher to go")
    second, other = serving(world)
    assert name(other) != name(launcher)
    assert pod_node(other) == NODE
    assert gpus_of(second) == gpus_of(first)
    assert is_ready(other) and is_ready(second)
    assert world.pod(name(launcher)) is None


def test_14_stopped_instance_recovery_rebinds_the_same_launcher(world: World) -> None:
    setup(world)
    first, launcher = serving(world)
    hold_gpus(world, NODE, 7)  # the GPU pinned: the replacement waits for it
    instance = annotations(launcher)[ANN_INSTANCE_ID]
    ip = launcher["status"]["podIP"]
    world.http.delete(f"http://{ip}:8001/v2/vllm/instances/{instance}").raise_for_status()

    second, same = world.served_anew("rs1", first)
    assert world.pod(name(first)) is None or world.pod(name(first))["metadata"].get(
        "deletionTimestamp"
    )
    assert name(same) == name(launcher)
    assert gpus_of(second) == gpus_of(first)
    deleted = [e for e in world.operators[0].events() if e["kind"] == "requester_deleting"]
    assert [e["requester"] for e in deleted] == [first["metadata"]["uid"]]
