"""Upstream's milestone-3 end-to-end suite (launchers), over the simulated cluster.

Three ISCs share one LauncherConfig with ``maxInstances: 2``; a population policy keeps one
launcher on each of two GPU nodes. Each test is one upstream case, set up from scratch, and
asserts what upstream asserts.
"""

import pytest
from pydantic import ValidationError

from fma.api.constants import ANN_INFERENCE_SERVER_CONFIG, ANN_REQUESTER, LABEL_DUAL
from fma.api.crds import LauncherPopulationPolicy
from fma.core.admission import PodMeta, update_denial
from fma.core.model import InstanceState
from tests.sim_harness import Harness, spec

ISC1, ISC2, ISC3 = spec("smollm", port=8005), spec("qwen", port=8006), spec("tinyllama", port=8007)
PIN = ("GPU-node-0-0",)


def harness(*, per_node: int = 1) -> Harness:
    h = Harness(nodes=2, gpus_per_node=4)
    h.launcher_config("lc1", max_instances=2)
    h.isc("isc1", ISC1)
    h.isc("isc2", ISC2)
    h.isc("isc3", ISC3)
    h.population("lc1", per_node)
    h.run(30)
    return h


def serving(h: Harness, rs: str = "rs1", isc: str = "isc1") -> None:
    """Create (or scale up) a pinned ReplicaSet of one and let it become ready."""
    if rs in h.replica_sets:
        h.scale(rs, 1)
    else:
        h.replicaset(rs, isc=isc, pin=PIN)
    h.run()
    assert h.only(rs).ready


def idle(h: Harness, rs: str = "rs1") -> None:
    """Scale the ReplicaSet to zero and let its launcher go back to sleep."""
    h.scale(rs, 0)
    h.run()


def switch_and_serve(h: Harness, isc: str) -> None:
    """Scale to zero, point the ReplicaSet at another ISC, and serve again."""
    idle(h)
    h.switch("rs1", isc)
    serving(h)


def test_1_gpu_probe_a_requester_lands_on_a_gpu_node() -> None:
    h = harness()
    h.replicaset("probe", isc="isc1", gpus=2)
    h.run()
    assert h.only("probe").node in h.state.nodes
    assert len(h.only("probe").gpu_uuids or ()) == 2


def test_2_basic_launcher_creation_and_binding() -> None:
    h = harness()
    assert all(len(h.launchers(n)) >= 1 for n in h.state.nodes)
    assert sum(1 for p in h.launchers() if p.ready) >= 2
    serving(h)
    requester = h.only("rs1")
    launcher = h.provider_of(requester)
    assert launcher is not None and launcher.node == requester.node
    assert launcher.bound_instance_id in launcher.instances
    assert [a["path"] for a in h.actuations()] == ["warm"]  # the population made it ahead


def test_3_lpp_key_uniqueness_duplicate_launcher_config_names_are_rejected() -> None:
    lpp = {
        "metadata": {"name": "lpp"},
        "spec": {
            "enhancedNodeSelector": {"labelSelector": {}},
            "countForLauncher": [
                {"launcherConfigName": "lc1", "launcherCount": 1},
                {"launcherConfigName": "lc1", "launcherCount": 2},
            ],
        },
    }
    with pytest.raises(ValidationError, match="duplicate launcherConfigName"):
        LauncherPopulationPolicy.model_validate(lpp)


@pytest.mark.parametrize(
    ("old", "new", "user", "denied"),
    [
        (PodMeta(annotations={ANN_REQUESTER: "u r"}), PodMeta(), "alice", True),
        (PodMeta(labels={LABEL_DUAL: "p"}), PodMeta(labels={LABEL_DUAL: "q"}), "alice", True),
        (
            PodMeta(annotations={ANN_REQUESTER: "u r"}),
            PodMeta(),
            "system:serviceaccount:fma:prod-fma-controllers",
            False,
        ),
        (
            PodMeta(annotations={ANN_INFERENCE_SERVER_CONFIG: "isc1"}, labels={LABEL_DUAL: "p"}),
            PodMeta(annotations={ANN_INFERENCE_SERVER_CONFIG: "isc2"}, labels={LABEL_DUAL: "p"}),
            "alice",
            True,
        ),
        (
            PodMeta(annotations={ANN_INFERENCE_SERVER_CONFIG: "isc1"}),
            PodMeta(annotations={ANN_INFERENCE_SERVER_CONFIG: "isc2"}),
            "alice",
            False,
        ),
        (PodMeta(labels={"app": "x"}), PodMeta(labels={"app": "y"}), "alice", False),
    ],
    ids=[
        "binding-record",
        "dual-label",
        "controller-exempt",
        "bound-requester-isc",
        "unbound-requester-isc",
        "ordinary-pod",
    ],
)
def test_4_admission_policies(old: PodMeta, new: PodMeta, user: str, denied: bool) -> None:
    assert (update_denial(old, new, user) is not None) is denied


def test_5_same_node_port_collision_gets_a_different_launcher_and_gpus() -> None:
    h = harness()
    serving(h, "rs1")
    h.replicaset("rs2", isc="isc1", pin=("GPU-node-0-1",))
    h.run()
    first, second = h.only("rs1"), h.only("rs2")
    assert second.ready and second.node == first.node
    assert h.provider_of(first) is not h.provider_of(second)
    assert set(first.gpu_uuids or ()).isdisjoint(second.gpu_uuids or ())
    h.assert_invariants()


def test_6_wake_up_fast_path_binds_the_same_launcher() -> None:
    h = harness()
    serving(h)
    launcher = h.provider_of(h.only("rs1"))
    idle(h)
    assert launcher is not None and launcher.bound_requester_uid is None
    assert [i.state for i in launcher.instances.values()] == [InstanceState.SLEEPING]
    serving(h)
    second = h.only("rs1")
    assert h.provider_of(second) is launcher and second.gpu_uuids == PIN
    assert [a["path"] for a in h.actuations()] == ["warm", "hot"]


def test_7_multiple_instances_share_one_launcher() -> None:
    h = harness()
    serving(h)
    launcher = h.provider_of(h.only("rs1"))
    switch_and_serve(h, "isc2")
    assert h.provider_of(h.only("rs1")) is launcher
    assert launcher is not None and len(h.instances(launcher)) == 2


def test_8_switch_instances_in_one_launcher_wakes_the_first() -> None:
    h = harness()
    serving(h)
    launcher = h.provider_of(h.only("rs1"))
    for isc in ("isc2", "isc1"):
        switch_and_serve(h, isc)
    assert h.provider_of(h.only("rs1")) is launcher
    assert [a["path"] for a in h.actuations()] == ["warm", "warm", "hot"]


def test_9_per_launcher_cap_reclaims_instead_of_a_new_launcher() -> None:
    h = harness()
    serving(h)
    launcher = h.provider_of(h.only("rs1"))
    for isc in ("isc2", "isc3"):
        idle(h)
        h.switch("rs1", isc)
        launchers_before = len(h.launchers())
        serving(h)
    assert len(h.launchers()) == launchers_before
    assert h.provider_of(h.only("rs1")) is launcher
    assert launcher is not None and len(h.instances(launcher)) == 2


def test_10_controller_restart_recovers_from_the_cluster_alone() -> None:
    h = harness()
    serving(h)
    launcher = h.provider_of(h.only("rs1"))
    switch_and_serve(h, "isc2")
    idle(h)
    launchers, instances = len(h.launchers()), sum(len(h.instances(p)) for p in h.launchers())
    h.restart_controller()
    h.run()
    assert len(h.launchers()) == launchers
    assert sum(len(h.instances(p)) for p in h.launchers()) == instances
    serving(h)
    assert h.provider_of(h.only("rs1")) is launcher
    assert h.actuations()[-1]["path"] == "hot"


def test_11_obsolete_sleeper_is_garbage_collected() -> None:
    h = harness()
    serving(h, isc="isc3")
    launcher = h.provider_of(h.only("rs1"))
    idle(h)
    assert launcher is not None and len(h.instances(launcher)) == 1
    h.patch_isc("isc3", spec("tinyllama", port=8007, options="--served-model-name tl"))
    h.run()
    assert len(h.instances(launcher)) == 0


def test_12_obsolete_awake_instance_is_deleted_on_unbind() -> None:
    h = harness()
    serving(h, isc="isc2")
    launcher = h.provider_of(h.only("rs1"))
    assert launcher is not None
    h.patch_isc("isc2", spec("qwen", port=8006, options="--max-model-len 1024"))
    h.run()
    assert len(h.instances(launcher)) == 1  # serving: kept until unbind
    idle(h)
    assert len(h.instances(launcher)) == 0


def test_13_unbound_launcher_deletion_then_a_new_launcher_is_bound() -> None:
    h = harness()
    serving(h)
    launcher = h.provider_of(h.only("rs1"))
    assert launcher is not None
    idle(h)
    h.delete_pod(launcher)
    h.run(60)
    serving(h)
    second = h.only("rs1")
    assert h.provider_of(second) is not launcher and second.gpu_uuids == PIN
    assert launcher.name not in h.state.providers


def test_14_stopped_instance_recovery_rebinds_the_same_launcher() -> None:
    h = harness()
    serving(h)
    first = h.only("rs1")
    launcher = h.provider_of(first)
    assert launcher is not None and launcher.bound_instance_id is not None
    h.cluster.crash_instance(launcher, launcher.bound_instance_id)
    h.run()
    second = h.only("rs1")
    assert second.uid != first.uid and second.ready
    assert h.provider_of(second) is launcher
    h.assert_invariants()
