"""The gather: node and configuration snapshots from the store and the operator's books."""

import copy
from dataclasses import dataclass, field

import pytest

from fma.adapters.k8s.engines import EngineBook
from fma.adapters.k8s.gather import GatherSettings, K8sReader
from fma.adapters.k8s.observed import GpuBook, LauncherReport, Relays, ReportBook, container_run
from fma.adapters.k8s.store import Kind, ObjectStore
from fma.control.ports import ClusterReader
from fma.control.reconcile import CONFIGS
from fma.core.actions import SetRequesterStatus
from fma.core.dualpods import plan_node
from fma.core.identity import instance_id
from fma.core.model import InstanceState, ProviderKind
from fma.core.policy import Policy
from tests.unit.k8s.conftest import (
    DEFAULT_GPU_BYTES,
    GPU_0,
    GPU_1,
    GPU_2,
    GPU_MAP,
    GPU_MIB,
    MIB,
    NODE,
    OTHER_NODE,
    Obj,
    at,
    container_status,
    direct_pod,
    epoch,
    gpu_map_obj,
    isc_obj,
    launcher_pod,
    lc_obj,
    lpp_obj,
    node_obj,
    plain_pod,
    reported,
    requester_pod,
)

GPU_BYTES = GPU_MIB * MIB
LAUNCHER = "launcher-lc-small-x7k2p"


@dataclass
class World:
    """A reader over a store and books the test fills."""

    store: ObjectStore = field(default_factory=ObjectStore)
    engines: EngineBook = field(default_factory=EngineBook)
    reports: ReportBook = field(default_factory=ReportBook)
    gpus: GpuBook = field(default_factory=GpuBook)
    relays: Relays = field(default_factory=Relays)

    def __post_init__(self) -> None:
        self.reader = K8sReader(
            self.store,
            self.engines,
            self.reports,
            self.gpus,
            self.relays,
            GatherSettings(gpu_memory_bytes_default=DEFAULT_GPU_BYTES),
        )

    def put(self, kind: Kind, *objects: Obj) -> None:
        for obj in objects:
            self.store.put(kind, obj)


def cluster() -> World:
    """Two nodes (H100s and L4s), the gpu-map, one ISC, one LauncherConfig and a policy for
    H100 nodes."""
    world = World()
    other = node_obj(OTHER_NODE, gpu_mib=None, labels={"nvidia.com/gpu.product": "NVIDIA-L4"})
    world.put(Kind.NODE, node_obj(), other)
    world.put(Kind.CONFIGMAP, gpu_map_obj(GPU_MAP))
    world.put(Kind.ISC, isc_obj())
    world.put(Kind.LAUNCHER_CONFIG, lc_obj())
    world.put(
        Kind.POPULATION_POLICY,
        lpp_obj(match_labels={"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}),
    )
    return world


def test_it_is_a_cluster_reader() -> None:
    reader: ClusterReader = cluster().reader
    assert reader.node_names() == [NODE, OTHER_NODE]


def test_a_node_with_a_mix_of_everything() -> None:
    world = cluster()
    direct_requester = requester_pod()
    isc_requester = requester_pod("isc-req-1", "req-uid-2", patch=None, isc="opt")
    waiting = requester_pod("waiting-req", "req-uid-3", node=None, pinned=NODE)
    elsewhere = requester_pod("far-req", "req-uid-4", node=OTHER_NODE)
    launcher = launcher_pod(
        annotations={
            "dual-pods.llm-d.ai/requester": "req-uid-2 isc-req-1",
            "dual-pods.llm-d.ai/instance-id": "Iwhatever-i",
        }
    )
    spare = launcher_pod("launcher-lc-small-spare", "launcher-uid-2", scheduled=False)
    world.put(
        Kind.POD,
        direct_requester,
        isc_requester,
        waiting,
        elsewhere,
        launcher,
        spare,
        direct_pod(),
        plain_pod(),
    )
    world.gpus.set("req-uid-1", (GPU_1, GPU_2))
    world.gpus.set("req-uid-2", (GPU_0,))
    isc_spec = world.reader.config_snapshot().iscs["opt"].spec
    iid = instance_id(world.reader.snapshot(NODE).iscs["opt"].spec, (GPU_0,))
    world.reports.set(LAUNCHER, LauncherReport("launcher-uid-1", 0, 4, {iid: reported(iid)}))
    world.engines.set_phase(LAUNCHER, iid, InstanceState.AWAKE, epoch(90))

    snapshot = world.reader.snapshot(NODE)

    assert snapshot.node_name == NODE
    assert snapshot.node is not None
    assert [g.uuid for g in snapshot.node.gpus] == [GPU_0, GPU_1, GPU_2]
    by_name = {r.name: r for r in snapshot.requesters}
    assert sorted(by_name) == ["isc-req-1", "my-req-abcde", "waiting-req"]
    assert by_name["my-req-abcde"].gpu_uuids == (GPU_1, GPU_2)
    assert by_name["my-req-abcde"].spec is not None
    assert by_name["isc-req-1"].isc_name == "opt"
    assert by_name["waiting-req"].node is None
    providers = {p.name: p for p in snapshot.providers}
    assert sorted(providers) == sorted([LAUNCHER, "launcher-lc-small-spare", direct_pod_name()])
    assert providers[direct_pod_name()].kind is ProviderKind.DIRECT
    [instance] = providers[LAUNCHER].instances
    assert instance.state is InstanceState.AWAKE
    assert instance.spec is snapshot.iscs["opt"].spec
    assert providers["launcher-lc-small-spare"].instances == ()
    # The ISC's weights are bounded by this node's GPUs, not by the default.
    assert snapshot.iscs["opt"].spec.weights_bytes == int(0.9 * GPU_BYTES)
    assert isc_spec.weights_bytes == int(0.9 * DEFAULT_GPU_BYTES)
    assert set(snapshot.launcher_configs) == {"lc-small"}
    assert snapshot.launcher_policy == {"lc-small": 2}


def direct_pod_name() -> str:
    return str(direct_pod()["metadata"]["name"])


def test_the_policies_select_by_node() -> None:
    world = cluster()
    assert world.reader.snapshot(OTHER_NODE).launcher_policy == {}


def test_a_policy_for_a_missing_launcher_config_still_counts() -> None:
    world = cluster()
    world.put(Kind.POPULATION_POLICY, lpp_obj("ghosts", counts={"lc-gone": 3}))
    world.put(Kind.LAUNCHER_CONFIG, lc_obj("lc-bad", max_instances=0))
    world.put(Kind.POPULATION_POLICY, lpp_obj("bad-lc", counts={"lc-bad": 1}))
    assert world.reader.snapshot(NODE).launcher_policy == {
        "lc-small": 2,
        "lc-gone": 3,
        "lc-bad": 1,
    }


def test_an_invalid_policy_is_not_counted_and_says_why() -> None:
    world = cluster()
    world.put(Kind.POPULATION_POLICY, lpp_obj("broken", allocatable={"memory": {"min": "x"}}))
    assert world.reader.snapshot(NODE).launcher_policy == {"lc-small": 2}
    assert set(world.reader.policy_problems()) == {"broken"}


def test_the_configuration_snapshot_holds_each_policys_problems_and_status() -> None:
    world = cluster()
    broken = lpp_obj("broken", allocatable={"memory": {"min": "x"}})
    told = lpp_obj("told", allocatable={"memory": {"max": "y"}})
    told["status"] = {"errors": ["an old complaint"]}
    world.put(Kind.POPULATION_POLICY, broken, told)
    policies = world.reader.config_snapshot().population_policies
    assert sorted(policies) == ["broken", "h100-pool", "told"]
    assert policies["h100-pool"].problems == policies["h100-pool"].errors == ()
    assert "allocatableResources" in policies["broken"].problems[0]
    assert policies["broken"].errors == ()
    assert policies["told"].errors == ("an old complaint",)


def test_allocatable_bounds_select_nodes() -> None:
    world = cluster()
    world.put(
        Kind.POPULATION_POLICY,
        lpp_obj("big-memory", allocatable={"memory": {"min": "2Ti"}}, counts={"lc-small": 5}),
        lpp_obj("gpus", allocatable={"nvidia.com/gpu": {"min": 8, "max": 8}}, counts={"x": 1}),
    )
    assert world.reader.snapshot(NODE).launcher_policy == {"lc-small": 2, "x": 1}


def test_a_node_that_is_gone() -> None:
    world = cluster()
    world.put(Kind.POD, requester_pod(node="node-gone"), direct_pod(node="node-gone"))
    world.gpus.set("req-uid-1", (GPU_0,))
    snapshot = world.reader.snapshot("node-gone")
    assert snapshot.node is None
    assert [r.uid for r in snapshot.requesters] == ["req-uid-1"]
    assert snapshot.requesters[0].spec is None
    assert [p.node for p in snapshot.providers] == ["node-gone"]
    assert snapshot.launcher_policy == {}
    assert "node-gone" in world.reader.node_names()


def test_the_configuration_snapshot() -> None:
    world = cluster()
    world.put(Kind.ISC, isc_obj("broken", port="eighty", errors=["old"]))
    world.put(Kind.LAUNCHER_CONFIG, lc_obj("lc-empty", template_spec={}))
    configs = world.reader.config_snapshot()
    assert sorted(configs.iscs) == ["broken", "opt"]
    assert configs.iscs["opt"].problems == ()
    assert configs.iscs["broken"].problems[0].startswith("spec.modelServerConfig.port:")
    assert configs.iscs["broken"].errors == ("old",)
    assert sorted(configs.launcher_configs) == ["lc-empty", "lc-small"]
    assert configs.launcher_configs["lc-small"].valid
    assert not configs.launcher_configs["lc-empty"].valid


def test_a_requester_with_a_bad_server_patch_gets_a_status() -> None:
    world = cluster()
    world.put(Kind.POD, requester_pod(patch="spec: {{ .Node }}\n"))
    world.gpus.set("req-uid-1", (GPU_0,))
    snapshot = world.reader.snapshot(NODE)
    [problem] = world.reader.requester_problems(NODE)["req-uid-1"]
    assert "dual-pods.llm-d.ai/server-patch" in problem
    plan = plan_node(snapshot, now_s=epoch(100), policy=Policy())
    statuses = [a for a in plan.actions if isinstance(a, SetRequesterStatus)]
    assert statuses == [SetRequesterStatus("req-uid-1", (problem,))]


def test_problems_are_only_for_requesters_that_have_some() -> None:
    world = cluster()
    world.put(Kind.POD, requester_pod())
    world.reader.snapshot(NODE)
    assert world.reader.requester_problems(NODE) == {}


def test_what_changes_without_a_new_resource_version_is_seen() -> None:
    world = cluster()
    pod = requester_pod(statuses=[container_status(started=at(10), ready=False)])
    launcher = launcher_pod()
    world.put(Kind.POD, pod, launcher)
    first = world.reader.snapshot(NODE)
    assert first.requesters[0].gpu_uuids is None
    assert not first.requesters[0].ready

    world.gpus.set("req-uid-1", (GPU_0,))
    world.relays.set("req-uid-1", container_run(pod, "inference-server"), True)
    iid = instance_id(first.iscs["opt"].spec, (GPU_0,))
    world.reports.set(LAUNCHER, LauncherReport("launcher-uid-1", 0, 1, {iid: reported(iid)}))
    second = world.reader.snapshot(NODE)
    assert second.requesters[0].gpu_uuids == (GPU_0,)
    assert second.requesters[0].ready
    [launcher_view] = [p for p in second.providers if p.name == LAUNCHER]
    assert [i.state for i in launcher_view.instances] == [InstanceState.STARTING]

    world.engines.set_phase(LAUNCHER, iid, InstanceState.SLEEPING, epoch(95))
    third = world.reader.snapshot(NODE)
    [launcher_view] = [p for p in third.providers if p.name == LAUNCHER]
    assert [i.state for i in launcher_view.instances] == [InstanceState.SLEEPING]


def test_a_new_version_of_an_object_is_seen() -> None:
    world = cluster()
    world.put(Kind.POD, requester_pod())
    world.reader.snapshot(NODE)
    newer = requester_pod(rv="101", annotations={"dual-pods.llm-d.ai/actuated": f"hot {at(20)}"})
    world.put(Kind.POD, newer)
    assert world.reader.snapshot(NODE).requesters[0].actuated

    world.put(Kind.ISC, isc_obj(rv="401", options="--model facebook/opt-350m"))
    assert world.reader.snapshot(NODE).iscs["opt"].spec.model == "facebook/opt-350m"

    world.put(Kind.NODE, node_obj(rv="8", unschedulable=True))
    node = world.reader.snapshot(NODE).node
    assert node is not None and not node.schedulable

    world.put(Kind.CONFIGMAP, gpu_map_obj({NODE: {GPU_0: 0}}, rv="10"))
    node = world.reader.snapshot(NODE).node
    assert node is not None and [g.uuid for g in node.gpus] == [GPU_0]


def test_a_pod_that_is_gone_leaves_the_snapshot() -> None:
    world = cluster()
    pod = requester_pod()
    world.put(Kind.POD, pod)
    assert len(world.reader.snapshot(NODE).requesters) == 1
    world.store.forget(Kind.POD, pod)
    assert world.reader.snapshot(NODE).requesters == ()


def test_a_write_answered_after_its_pod_was_deleted_does_not_bring_it_back() -> None:
    world = cluster()
    pod = requester_pod(rv="100")
    world.put(Kind.POD, pod)
    world.store.apply(Kind.POD, "DELETED", requester_pod(rv="101"))
    # The answer to the write that removed its last finalizer arrives after the watch event.
    world.store.put(Kind.POD, requester_pod(rv="101"))
    assert world.reader.snapshot(NODE).requesters == ()
    # A new Pod of the same name is another object.
    world.store.put(Kind.POD, requester_pod(uid="req-uid-9", rv="102"))
    assert [r.uid for r in world.reader.snapshot(NODE).requesters] == ["req-uid-9"]


def test_a_pod_replaced_under_the_same_name() -> None:
    world = cluster()
    world.put(Kind.POD, requester_pod())
    world.reader.snapshot(NODE)
    world.put(Kind.POD, requester_pod(uid="req-uid-9", rv="100"))
    assert [r.uid for r in world.reader.snapshot(NODE).requesters] == ["req-uid-9"]


def test_each_version_is_parsed_once() -> None:
    world = cluster()
    world.put(Kind.POD, requester_pod(), direct_pod())
    world.gpus.set("req-uid-1", (GPU_0, GPU_1))
    first = world.reader.snapshot(NODE)
    second = world.reader.snapshot(NODE)
    assert first == second
    assert second.iscs["opt"] is first.iscs["opt"]
    assert second.launcher_configs["lc-small"] is first.launcher_configs["lc-small"]
    assert second.node is first.node
    assert second.requesters[0].spec is first.requesters[0].spec


def test_resync_parses_again_and_sees_the_same() -> None:
    world = cluster()
    world.put(Kind.POD, requester_pod(), direct_pod(), launcher_pod())
    world.gpus.set("req-uid-1", (GPU_0,))
    before = world.reader.snapshot(NODE)
    world.reader.resync(NODE)
    world.reader.resync(CONFIGS)
    after = world.reader.snapshot(NODE)
    assert after == before
    assert after.requesters[0].spec is not before.requesters[0].spec
    assert after.iscs["opt"] is not before.iscs["opt"]


def test_a_requester_scheduled_elsewhere_never_appears() -> None:
    world = cluster()
    world.put(Kind.POD, requester_pod(node=OTHER_NODE, pinned=NODE))
    assert world.reader.snapshot(NODE).requesters == ()
    assert len(world.reader.snapshot(OTHER_NODE).requesters) == 1


def test_the_gpu_map_problems() -> None:
    world = cluster()
    world.put(Kind.CONFIGMAP, gpu_map_obj({NODE: {GPU_0: 0}, "node-x": "{"}, rv="11"))
    world.reader.snapshot(NODE)
    assert world.reader.gpu_map_problems() == ("gpu-map entry node-x is not JSON",)


def test_without_the_gpu_map_direct_requesters_are_told() -> None:
    world = World()
    world.put(Kind.NODE, node_obj())
    world.put(Kind.POD, requester_pod())
    world.gpus.set("req-uid-1", (GPU_0,))
    snapshot = world.reader.snapshot(NODE)
    assert snapshot.node is not None and snapshot.node.gpus == ()
    assert world.reader.requester_problems(NODE)["req-uid-1"] == (
        "GPU map ConfigMap gpu-map is not available",
    )


@pytest.mark.parametrize("count", [40])
def test_gathering_a_busy_node_stays_in_memory(count: int) -> None:
    """Many Pods: every snapshot after the first reuses what was parsed."""
    world = cluster()
    for n in range(count):
        pod = copy.deepcopy(requester_pod(f"req-{n}", f"req-uid-{n}"))
        world.put(Kind.POD, pod)
        world.gpus.set(f"req-uid-{n}", (GPU_0,))
    first = world.reader.snapshot(NODE)
    for _ in range(5):
        assert world.reader.snapshot(NODE) == first
