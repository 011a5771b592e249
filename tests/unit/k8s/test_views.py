"""The views: Pods, Nodes, the gpu-map and FMA's custom resources made into the core's types."""

from typing import Any

import pytest

from fma.adapters.k8s.engines import EngineBook
from fma.adapters.k8s.observed import LauncherReport, Relays, container_run
from fma.adapters.k8s.render.binding import Binding
from fma.adapters.k8s.render.direct import direct_provider_pod, direct_server_spec
from fma.adapters.k8s.render.launcher import launcher_template_hash
from fma.adapters.k8s.render.specs import isc_server_spec
from fma.adapters.k8s.views import (
    ParsedIsc,
    PodRole,
    ProviderFacts,
    RequesterView,
    isc_view,
    launcher_config_view,
    node_allocatable,
    node_view,
    parse_gpu_map,
    parse_isc,
    parse_time,
    pod_role,
    population_policy_view,
    provider_facts,
    provider_view,
    requester_facts,
    requester_view,
)
from fma.api.crds import InferenceServerConfig, LauncherConfig
from fma.core.identity import instance_id
from fma.core.model import (
    ActuationPath,
    Gpu,
    Instance,
    InstanceState,
    IscSpec,
    Node,
    ProviderKind,
    Routing,
    ServerSpec,
)
from fma.core.population import PopulationPolicy, SelectorRequirement
from fma.launcher.api import InstanceStatus
from tests.unit.k8s.conftest import (
    DEFAULT_GPU_BYTES,
    GIB,
    GPU_0,
    GPU_1,
    GPU_2,
    GPU_MAP,
    GPU_MIB,
    GPU_OTHER,
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


def the_node(**over: Any) -> Node:
    return node_view(node_obj(**over), GPU_MAP[NODE], gpu_memory_bytes_default=DEFAULT_GPU_BYTES)


def view(
    pod: Obj,
    *,
    node: Node | None = None,
    gpu_map: Any = GPU_MAP,
    reported_gpus: tuple[str, ...] | None = None,
    relays: Relays | None = None,
) -> RequesterView:
    return requester_view(
        requester_facts(pod),
        node=node if node is not None else the_node(),
        gpu_map=gpu_map,
        reported_gpus=reported_gpus,
        relays=relays or Relays(),
        gpu_memory_bytes_default=DEFAULT_GPU_BYTES,
    )


def isc_spec(obj: Obj | None = None, gpu_memory_bytes: int = GPU_BYTES) -> IscSpec:
    return isc_view(parse_isc(obj or isc_obj()), gpu_memory_bytes=gpu_memory_bytes)


# --- times -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-04T05:00:00Z", epoch(0)),
        ("2026-03-04T05:00:01.250000Z", epoch(1.25)),
        ("2026-03-04T07:00:00+02:00", epoch(0)),
        ("2026-03-04T05:00:00", epoch(0)),
        ("yesterday", None),
        ("", None),
        (None, None),
        (1741064400, None),
    ],
)
def test_rfc3339_times(text: object, expected: float | None) -> None:
    assert parse_time(text) == expected


# --- classification ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pod", "role"),
    [
        (requester_pod(), PodRole.REQUESTER),
        (requester_pod(patch=None, isc="opt"), PodRole.REQUESTER),
        (launcher_pod(), PodRole.LAUNCHER),
        (launcher_pod(annotations={"dual-pods.llm-d.ai/requester": "u n"}), PodRole.LAUNCHER),
        (direct_pod(), PodRole.DIRECT),
        (direct_pod(annotations={"dual-pods.llm-d.ai/requester": ""}), PodRole.DIRECT),
        (plain_pod(), PodRole.IGNORED),
    ],
    ids=[
        "server-patch",
        "inference-server-config",
        "launcher",
        "bound launcher",
        "direct",
        "unbound direct (nominal)",
        "plain",
    ],
)
def test_each_kind_of_pod(pod: Obj, role: PodRole) -> None:
    assert pod_role(pod) is role


def bound_only(record: str) -> Obj:
    """A Pod that only carries a binding record."""
    pod = plain_pod()
    pod["metadata"]["annotations"]["dual-pods.llm-d.ai/requester"] = record
    return pod


@pytest.mark.parametrize(
    ("record", "role"),
    [
        ("req-uid-1 my-req", PodRole.DIRECT),
        ("req-uid-1", PodRole.IGNORED),
        ("req-uid-1 my-req extra", PodRole.IGNORED),
        ("req-uid-1  my-req", PodRole.IGNORED),
        ("", PodRole.IGNORED),
    ],
)
def test_a_binding_record_splits_into_exactly_two_parts(record: str, role: PodRole) -> None:
    assert pod_role(bound_only(record)) is role


def test_an_empty_requester_annotation_marks_nothing() -> None:
    pod = requester_pod(patch="")
    assert pod_role(pod) is PodRole.IGNORED


# --- the gpu-map and Nodes ---------------------------------------------------------------------


def test_gpu_map_entries_and_problems() -> None:
    configmap = gpu_map_obj(
        {
            NODE: {GPU_0: 0, GPU_1: 1},
            "node-c": "{not json",
            "node-d": {GPU_2: "two"},
            "node-e": [GPU_2],
        }
    )
    configmap["data"]["node-f"] = 7
    parsed, problems = parse_gpu_map(configmap)
    assert parsed == {NODE: {GPU_0: 0, GPU_1: 1}}
    assert len(problems) == 4
    for key in ("node-c", "node-d", "node-e", "node-f"):
        assert any(key in p for p in problems)


def test_no_gpu_map() -> None:
    assert parse_gpu_map(None) == ({}, ())
    empty = gpu_map_obj({})
    del empty["data"]
    assert parse_gpu_map(empty) == ({}, ())


def test_a_node_with_its_gpus_sorted_by_index() -> None:
    node = the_node()
    assert node == Node(
        name=NODE,
        gpus=(Gpu(GPU_0, 0, GPU_BYTES), Gpu(GPU_1, 1, GPU_BYTES), Gpu(GPU_2, 2, GPU_BYTES)),
        host_memory_bytes=1056291840 * 1024,
        schedulable=True,
        ready=True,
        labels=node_obj()["metadata"]["labels"],
    )


@pytest.mark.parametrize("label", [None, "lots", "0", "²"])
def test_gpu_memory_without_a_usable_label_is_the_default(label: str | None) -> None:
    node = the_node(gpu_mib=label)
    assert {g.memory_bytes for g in node.gpus} == {DEFAULT_GPU_BYTES}


def test_a_cordoned_not_ready_node() -> None:
    node = the_node(unschedulable=True, ready=False)
    assert not node.schedulable
    assert not node.ready


def test_a_node_without_gpu_map_entry_or_memory() -> None:
    obj = node_obj(memory="lots")
    node = node_view(obj, {}, gpu_memory_bytes_default=DEFAULT_GPU_BYTES)
    assert node.gpus == ()
    assert node.host_memory_bytes == 0


def test_allocatable_resources_in_base_units() -> None:
    obj = node_obj()
    obj["status"]["allocatable"]["example.com/broken"] = "many"
    assert node_allocatable(obj) == {
        "cpu": 95.5,
        "memory": 1056291840 * 1024.0,
        "nvidia.com/gpu": 8.0,
        "pods": 110.0,
        "ephemeral-storage": 1.5e12,
    }


# --- requesters --------------------------------------------------------------------------------


def expected_direct_spec(pod: Obj, indices: tuple[int, ...], weights: int) -> ServerSpec:
    return direct_server_spec(pod, node=NODE, gpu_indices=indices, weights_bytes=weights)


def test_a_requester_before_it_is_scheduled() -> None:
    pod = requester_pod(node=None, pinned=NODE)
    requester = view(pod, reported_gpus=(GPU_0,)).requester
    assert requester.node is None
    assert requester.spec is None
    assert requester.started_s is None
    assert requester.ip is None
    assert not requester.ready


def test_a_scheduled_requester_whose_gpus_are_not_known_yet() -> None:
    requester = view(requester_pod()).requester
    assert requester.node == NODE
    assert requester.gpu_uuids is None
    assert requester.spec is None


def test_a_requester_with_the_gpus_its_spi_reported() -> None:
    pod = requester_pod()
    result = view(pod, reported_gpus=(GPU_1, GPU_0))
    requester = result.requester
    assert result.problems == ()
    assert requester.gpu_uuids == (GPU_1, GPU_0)
    # The indices in the requester's order; weights bounded by 0.8 of both GPUs.
    assert requester.spec == expected_direct_spec(pod, (1, 0), int(0.8 * 2 * GPU_BYTES))
    assert requester.isc_name is None


def test_the_accelerators_annotation_wins_over_the_book() -> None:
    pod = requester_pod(annotations={"dual-pods.llm-d.ai/accelerators": f"{GPU_2}, {GPU_0}"})
    requester = view(pod, reported_gpus=(GPU_1,)).requester
    assert requester.gpu_uuids == (GPU_2, GPU_0)
    assert requester.spec == expected_direct_spec(pod, (2, 0), int(0.8 * 2 * GPU_BYTES))


def test_an_empty_accelerators_annotation_is_an_empty_set() -> None:
    pod = requester_pod(annotations={"dual-pods.llm-d.ai/accelerators": ""})
    assert view(pod, reported_gpus=(GPU_1,)).requester.gpu_uuids == ()


def test_weights_size_annotation() -> None:
    pod = requester_pod(annotations={"dual-pods.llm-d.ai/weights-size": "250Mi"})
    spec = view(pod, reported_gpus=(GPU_0,)).requester.spec
    assert spec is not None
    assert spec.weights_bytes == 250 * MIB


def test_the_upper_bound_uses_the_default_memory_on_an_unlabelled_node() -> None:
    pod = requester_pod()
    spec = view(pod, node=the_node(gpu_mib=None), reported_gpus=(GPU_0,)).requester.spec
    assert spec is not None
    assert spec.weights_bytes == int(0.8 * DEFAULT_GPU_BYTES)


def test_a_requester_as_fma_left_it() -> None:
    pod = requester_pod(
        annotations={
            "dual-pods.llm-d.ai/status": '{"Errors":["GPU GPU-x is not on node node-a"]}',
            "dual-pods.llm-d.ai/actuated": f"hot {at(12)}",
            "dual-pods.llm-d.ai/admin-port": "9001",
        },
        labels={"app": "dp-app", "dual-pods.llm-d.ai/dual": "prov-1"},
        finalizers=["dual-pods.llm-d.ai/requester"],
        deleting=True,
    )
    requester = view(pod).requester
    assert requester.uid == "req-uid-1"
    assert requester.name == "my-req-abcde"
    assert requester.errors == ("GPU GPU-x is not on node node-a",)
    assert requester.actuated
    assert requester.finalizer
    assert requester.deleting
    assert requester.labels == {"app": "dp-app", "dual-pods.llm-d.ai/dual": "prov-1"}
    assert requester.ip == "10.0.0.5"
    assert requester.spi_port == 9001
    assert requester.resource_version == "100"
    assert requester.started_s == epoch(10)


def test_a_fresh_requester() -> None:
    requester = view(requester_pod()).requester
    assert requester.errors == ()
    assert not requester.actuated
    assert not requester.finalizer
    assert not requester.deleting
    assert requester.spi_port == 8081


@pytest.mark.parametrize("status", ["{broken", '{"Errors": "no"}', '["x"]', ""])
def test_an_unreadable_status_is_no_errors(status: str) -> None:
    pod = requester_pod(annotations={"dual-pods.llm-d.ai/status": status})
    assert view(pod).requester.errors == ()


def test_the_launcher_path() -> None:
    pod = requester_pod(patch=None, isc="opt")
    requester = view(pod, reported_gpus=(GPU_0,)).requester
    assert requester.isc_name == "opt"
    assert requester.spec is None  # the core reads the ISC


def test_started_and_ready_of_the_first_container_when_none_is_inference_server() -> None:
    pod = requester_pod(statuses=[container_status("stub", started=at(11), ready=True)])
    pod["spec"]["containers"][0]["name"] = "stub"
    requester = view(pod).requester
    assert requester.started_s == epoch(11)
    assert requester.ready


def test_a_waiting_container_has_not_started() -> None:
    pod = requester_pod(statuses=[container_status(waiting="ImagePullBackOff")])
    assert view(pod).requester.started_s is None


def test_readiness_is_the_relay_to_the_current_run() -> None:
    pod = requester_pod(statuses=[container_status(started=at(10), ready=False, restarts=1)])
    relays = Relays()
    relays.set("req-uid-1", container_run(pod, "inference-server"), True)
    assert view(pod, relays=relays).requester.ready
    relays.set("req-uid-1", container_run(pod, "inference-server"), False)
    ready_pod = requester_pod(statuses=[container_status(started=at(10), ready=True, restarts=1)])
    assert not view(ready_pod, relays=relays).requester.ready


def test_a_relay_to_an_earlier_run_no_longer_counts() -> None:
    before = requester_pod(statuses=[container_status(started=at(10), ready=True)])
    relays = Relays()
    relays.set("req-uid-1", container_run(before, "inference-server"), True)
    restarted = requester_pod(statuses=[container_status(started=at(90), restarts=1)])
    assert not view(restarted, relays=relays).requester.ready
    ready_again = requester_pod(statuses=[container_status(started=at(90), ready=True, restarts=1)])
    assert view(ready_again, relays=relays).requester.ready


@pytest.mark.parametrize("port", ["http", "0", "70000", "80 81", "٨٠٨١"])
def test_a_bad_admin_port_reaches_the_user(port: str) -> None:
    pod = requester_pod(annotations={"dual-pods.llm-d.ai/admin-port": port})
    result = view(pod, reported_gpus=(GPU_0,))
    assert result.requester.spi_port == 8081
    assert any("dual-pods.llm-d.ai/admin-port" in p and repr(port) in p for p in result.problems)
    assert result.requester.spec is not None  # it can still be served


def test_a_weights_size_that_is_not_a_size_reaches_the_user() -> None:
    pod = requester_pod(annotations={"dual-pods.llm-d.ai/weights-size": "big"})
    result = view(pod, reported_gpus=(GPU_0,))
    assert any("dual-pods.llm-d.ai/weights-size" in p for p in result.problems)
    assert result.requester.spec is None  # not served with a size the user must fix


def test_a_server_patch_that_does_not_render_reaches_the_user() -> None:
    pod = requester_pod(patch="spec: {{ .Node }}\n")
    result = view(pod, reported_gpus=(GPU_0,))
    assert result.requester.spec is None
    assert len(result.problems) == 1
    assert "dual-pods.llm-d.ai/server-patch" in result.problems[0]
    assert ".Node" in result.problems[0]


def test_a_patch_that_keeps_the_requester_labels_reaches_the_user() -> None:
    pod = requester_pod(patch=SERVER_PATCH_KEEPING_LABELS)
    result = view(pod, reported_gpus=(GPU_0,))
    assert result.requester.spec is None
    assert any("metadata.labels" in p for p in result.problems)


SERVER_PATCH_KEEPING_LABELS = """\
spec:
  containers:
  - name: inference-server
    image: vllm/vllm-openai:v0.10.1
    readinessProbe: {httpGet: {path: /health, port: 8005}}
"""


def test_gpus_the_gpu_map_does_not_translate() -> None:
    pod = requester_pod()
    unknown = view(pod, reported_gpus=("GPU-nowhere",))
    assert unknown.requester.spec is None
    assert unknown.problems == ("UUID GPU-nowhere is not known",)
    elsewhere = view(pod, reported_gpus=(GPU_OTHER,))
    assert elsewhere.problems == (f"UUID {GPU_OTHER} is on Node {OTHER_NODE}, not {NODE}",)
    no_map = view(pod, gpu_map=None, reported_gpus=(GPU_0,))
    assert no_map.problems == ("GPU map ConfigMap gpu-map is not available",)


def test_both_paths_asked_for() -> None:
    pod = requester_pod(isc="opt", annotations={"dual-pods.llm-d.ai/server-patch": "{}"})
    result = view(pod, reported_gpus=(GPU_0,))
    assert result.requester.isc_name == "opt"
    assert any("exclude each other" in p for p in result.problems)


# --- launcher providers ------------------------------------------------------------------------


def launcher_view(
    pod: Obj,
    report: LauncherReport | None,
    *,
    engines: EngineBook | None = None,
    iscs: dict[str, IscSpec] | None = None,
) -> Any:
    return provider_view(
        provider_facts(pod),
        node=the_node(),
        report=report,
        engines=engines or EngineBook(),
        iscs=iscs if iscs is not None else {"opt": isc_spec()},
        gpu_memory_bytes_default=DEFAULT_GPU_BYTES,
    )


def current_id(gpus: tuple[str, ...] = (GPU_0,)) -> str:
    return instance_id(isc_spec().spec, gpus)


def report_of(*instances: Any, uid: str = "launcher-uid-1", restarts: int = 0) -> LauncherReport:
    return LauncherReport(uid, restarts, 7, {i.instance_id: i for i in instances})


BOUND = {
    "dual-pods.llm-d.ai/requester": "req-uid-1 my-req-abcde",
    "dual-pods.llm-d.ai/instance-id": "Ibound-1i",
    "dual-pods.llm-d.ai/actuation-path": "warm",
    "dual-pods.llm-d.ai/bound-at": "2026-03-04T05:01:00.500000Z",
    "dual-pods.llm-d.ai/isc-routing-metadata": '{"annotations":{},"labels":{"model":"opt"}}',
}


def test_a_bound_launcher() -> None:
    pod = launcher_pod(annotations=BOUND, ready=False, ready_since=at(70), restarts=2)
    provider = launcher_view(pod, None)
    assert provider.name == "launcher-lc-small-x7k2p"
    assert provider.node == NODE
    assert provider.kind is ProviderKind.LAUNCHER
    assert provider.created_s == epoch(0)
    assert provider.bound_requester_uid == "req-uid-1"
    assert provider.bound_instance_id == "Ibound-1i"
    assert provider.path is ActuationPath.WARM
    assert provider.bound_s == epoch(60.5)
    assert not provider.ready
    assert provider.ready_changed_s == epoch(70)
    assert provider.restarts == 2
    assert provider.launcher_config == "lc-small"
    assert provider.template_hash == "tmpl-hash-1"
    assert provider.routing == Routing(labels={"model": "opt"}, annotations={})
    assert provider.uid == "launcher-uid-1"
    assert provider.resource_version == "200"
    assert provider.ip == "10.0.1.7"
    assert provider.port == 8001
    assert not provider.deleting
    assert provider.instances == ()
    assert provider_facts(pod).requester_name == "my-req-abcde"


def test_an_unbound_launcher_pinned_but_not_scheduled() -> None:
    pod = launcher_pod(scheduled=False, ip=None)
    provider = launcher_view(pod, None)
    assert provider.node == NODE
    assert provider.bound_requester_uid is None
    assert provider.bound_instance_id is None
    assert provider.path is None
    assert provider.bound_s is None
    assert provider.routing is None
    assert provider.ip is None


def test_an_actuation_path_that_is_not_one() -> None:
    pod = launcher_pod(annotations={**BOUND, "dual-pods.llm-d.ai/actuation-path": "lukewarm"})
    assert launcher_view(pod, None).path is None


def test_restarts_of_all_containers_together() -> None:
    pod = launcher_pod(restarts=1, sidecar_restarts=2)
    assert launcher_view(pod, None).restarts == 3


def test_instances_of_the_report_of_this_very_launcher_run() -> None:
    pod = launcher_pod(restarts=1)
    running = reported(current_id())
    assert len(launcher_view(pod, report_of(running, restarts=1)).instances) == 1
    # A report from a Pod of the same name before it was replaced: nothing is known.
    assert launcher_view(pod, report_of(running, uid="old-uid", restarts=1)).instances == ()
    # A report from before the launcher restarted: it lost those instances.
    assert launcher_view(pod, report_of(running, restarts=0)).instances == ()


def test_a_running_instance_without_a_note_is_starting() -> None:
    iid = current_id()
    [instance] = launcher_view(launcher_pod(), report_of(reported(iid))).instances
    assert instance == Instance(
        instance_id=iid,
        spec=isc_spec().spec,
        gpu_uuids=(GPU_0,),
        state=InstanceState.STARTING,
        created_s=epoch(0),
        last_used_s=epoch(0),
        isc_name="opt",
        sleepable=True,
    )


def test_a_running_instance_in_the_phase_noted() -> None:
    iid = current_id()
    engines = EngineBook()
    engines.set_phase("launcher-lc-small-x7k2p", iid, InstanceState.SLEEPING, epoch(80))
    report = report_of(reported(iid))
    [instance] = launcher_view(launcher_pod(), report, engines=engines).instances
    assert instance.state is InstanceState.SLEEPING
    assert instance.created_s == epoch(0)


def test_a_starting_note_says_since_when_it_loads() -> None:
    iid = current_id()
    engines = EngineBook()
    engines.set_phase("launcher-lc-small-x7k2p", iid, InstanceState.STARTING, epoch(65))
    report = report_of(reported(iid))
    [instance] = launcher_view(launcher_pod(), report, engines=engines).instances
    assert instance.state is InstanceState.STARTING
    assert instance.created_s == epoch(65)
    assert instance.last_used_s == epoch(65)


def test_a_stopped_instance_is_stopped_whatever_was_noted() -> None:
    iid = current_id()
    engines = EngineBook()
    engines.set_phase("launcher-lc-small-x7k2p", iid, InstanceState.AWAKE, epoch(80))
    report = report_of(reported(iid, status=InstanceStatus.STOPPED))
    [instance] = launcher_view(launcher_pod(), report, engines=engines).instances
    assert instance.state is InstanceState.STOPPED


def test_the_instance_of_a_current_isc_shares_its_spec() -> None:
    isc = isc_spec()
    iid = instance_id(isc.spec, (GPU_0,))
    [instance] = launcher_view(
        launcher_pod(), report_of(reported(iid)), iscs={"opt": isc}
    ).instances
    assert instance.spec is isc.spec


def test_an_obsolete_instance_gets_the_spec_it_runs() -> None:
    changed = isc_spec(isc_obj(options="--model facebook/opt-350m"))
    old = reported(
        "Iold-1i",
        options=["--model", "facebook/opt-125m", "--gpu-memory-utilization=0.5"],
        gpus=(GPU_0, GPU_1),
        port=8010,
        env={"HF_HOME": "/tmp/hf"},
    )
    [instance] = launcher_view(launcher_pod(), report_of(old), iscs={"opt": changed}).instances
    assert instance.spec == ServerSpec(
        model="facebook/opt-125m",
        port=8010,
        options=("--model", "facebook/opt-125m", "--gpu-memory-utilization=0.5"),
        env=(("HF_HOME", "/tmp/hf"),),
        weights_bytes=int(0.5 * 2 * GPU_BYTES),
        gpu_memory_utilization=0.5,
    )
    assert instance.isc_name == "opt"


def test_an_instance_whose_isc_is_gone() -> None:
    gone = reported("Igone-1i", options=["facebook/opt-125m", "--dtype", "half"], isc=None)
    [instance] = launcher_view(launcher_pod(), report_of(gone), iscs={}).instances
    assert instance.spec.model == "facebook/opt-125m"
    assert instance.spec.port == 8005
    assert instance.spec.weights_bytes == int(0.9 * GPU_BYTES)
    assert instance.isc_name is None


def test_a_reported_instance_without_its_port_annotation() -> None:
    bare = reported("Ibare-1i", isc=None)
    bare = bare.model_copy(update={"annotations": None})
    [instance] = launcher_view(launcher_pod(), report_of(bare), iscs={}).instances
    assert instance.spec.port == 8005  # from --port
    assert "--port" not in instance.spec.options


def test_last_use_is_the_later_of_the_annotation_and_the_book() -> None:
    a, b, c = current_id((GPU_0,)), current_id((GPU_1,)), current_id((GPU_2,))
    pod = launcher_pod(
        annotations={
            "dual-pods.llm-d.ai/instances-last-used": (
                f'{{"{a}": "{at(100)}", "{b}": "{at(300)}", "junk": 5}}'
            )
        }
    )
    engines = EngineBook()
    engines.touch("launcher-lc-small-x7k2p", a, epoch(200))
    engines.touch("launcher-lc-small-x7k2p", b, epoch(250))
    report = report_of(reported(a), reported(b, gpus=(GPU_1,)), reported(c, gpus=(GPU_2,)))
    used = {
        i.instance_id: i.last_used_s for i in launcher_view(pod, report, engines=engines).instances
    }
    assert used == {a: epoch(200), b: epoch(300), c: epoch(0)}


def test_an_unreadable_last_used_annotation_is_ignored() -> None:
    iid = current_id()
    pod = launcher_pod(annotations={"dual-pods.llm-d.ai/instances-last-used": "{oops"})
    [instance] = launcher_view(pod, report_of(reported(iid))).instances
    assert instance.last_used_s == epoch(0)


def test_refused_sleeps_from_the_annotation_or_the_book() -> None:
    a, b, c = current_id((GPU_0,)), current_id((GPU_1,)), current_id((GPU_2,))
    pod = launcher_pod(annotations={"dual-pods.llm-d.ai/sleep-refused": f'["{a}"]'})
    engines = EngineBook()
    engines.refuse_sleep("launcher-lc-small-x7k2p", b)
    report = report_of(reported(a), reported(b, gpus=(GPU_1,)), reported(c, gpus=(GPU_2,)))
    sleepable = {
        i.instance_id: i.sleepable for i in launcher_view(pod, report, engines=engines).instances
    }
    assert sleepable == {a: False, b: False, c: True}


# --- direct providers --------------------------------------------------------------------------


def direct_view(pod: Obj, engines: EngineBook | None = None) -> Any:
    return provider_view(
        provider_facts(pod),
        node=the_node(),
        report=None,
        engines=engines or EngineBook(),
        iscs={},
        gpu_memory_bytes_default=DEFAULT_GPU_BYTES,
    )


def test_a_bound_direct_provider() -> None:
    provider = direct_view(direct_pod())
    assert provider.kind is ProviderKind.DIRECT
    assert provider.node == NODE
    assert provider.bound_requester_uid == "req-uid-1"
    assert provider.bound_instance_id == "Idirect-1i"
    assert provider.path is ActuationPath.COLD
    assert provider.port == 8005
    assert provider.launcher_config is None
    [instance] = provider.instances
    assert instance == Instance(
        instance_id="Idirect-1i",
        spec=ServerSpec(
            model="facebook/opt-125m",
            port=8005,
            options=("--nominal=bm9taW5hbC1oYXNo",),
            weights_bytes=int(0.8 * 2 * GPU_BYTES),
            gpu_memory_utilization=0.8,
        ),
        gpu_uuids=(GPU_0, GPU_1),
        state=InstanceState.AWAKE,
        created_s=epoch(40),
        last_used_s=epoch(40),
    )


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (container_status(waiting="ContainerCreating"), InstanceState.STARTING),
        (container_status(terminated=True), InstanceState.STOPPED),
        (container_status(waiting="CrashLoopBackOff", restarts=3), InstanceState.STOPPED),
        (container_status(waiting="CrashLoopBackOff", ran_before=True), InstanceState.STOPPED),
        (container_status(started=at(40), ready=False), InstanceState.STARTING),
        (container_status(started=at(40), ready=True), InstanceState.AWAKE),
    ],
    ids=["not started", "terminated", "crash loop", "waiting after a run", "loading", "ready"],
)
def test_the_engine_of_a_direct_provider(status: Obj, state: InstanceState) -> None:
    [instance] = direct_view(direct_pod(status=status)).instances
    assert instance.state is state


def test_a_direct_provider_without_container_status_yet() -> None:
    pod = direct_pod()
    del pod["status"]["containerStatuses"]
    [instance] = direct_view(pod).instances
    assert instance.state is InstanceState.STARTING
    assert instance.created_s == epoch(0)


def test_a_note_of_the_current_run_wins() -> None:
    pod = direct_pod()
    engines = EngineBook()
    run = container_run(pod, "inference-server")
    engines.set_phase(pod["metadata"]["name"], "Idirect-1i", InstanceState.SLEEPING, 5, run=run)
    [instance] = direct_view(pod, engines).instances
    assert instance.state is InstanceState.SLEEPING


def test_a_note_of_an_earlier_run_is_ignored() -> None:
    before = direct_pod()
    engines = EngineBook()
    run = container_run(before, "inference-server")
    engines.set_phase(before["metadata"]["name"], "Idirect-1i", InstanceState.SLEEPING, 5, run=run)
    restarted = direct_pod(status=container_status(started=at(90), ready=True, restarts=1))
    [instance] = direct_view(restarted, engines).instances
    assert instance.state is InstanceState.AWAKE


def test_an_unbound_direct_sleeper_keeps_the_identity_its_requester_looks_for() -> None:
    requester = requester_pod()
    spec = direct_server_spec(requester, node=NODE, gpu_indices=(0, 1), weights_bytes=0)
    iid = instance_id(spec, (GPU_0, GPU_1))
    provider = direct_provider_pod(
        requester,
        node=NODE,
        gpu_uuids=(GPU_0, GPU_1),
        gpu_indices=(0, 1),
        binding=Binding("req-uid-1", "my-req-abcde", iid, ActuationPath.COLD, at(30)),
    )
    provider["metadata"] |= {
        "name": "my-req-abcde-dual-xyz12",
        "uid": "d-uid",
        "creationTimestamp": at(0),
    }
    provider["status"] = {"containerStatuses": [container_status(started=at(40), ready=True)]}
    # Unbinding removes the binding record and the instance ID.
    for key in ("requester", "instance-id", "actuation-path", "bound-at"):
        del provider["metadata"]["annotations"]["dual-pods.llm-d.ai/" + key]
    assert pod_role(provider) is PodRole.DIRECT
    [instance] = direct_view(provider).instances
    assert instance.instance_id == iid
    assert instance.spec.model == spec.model
    assert instance.spec.port == spec.port


def test_last_use_and_refusal_of_a_direct_engine() -> None:
    pod = direct_pod(
        annotations={
            "dual-pods.llm-d.ai/instances-last-used": f'{{"Idirect-1i": "{at(120)}"}}',
            "dual-pods.llm-d.ai/sleep-refused": '["Idirect-1i"]',
        }
    )
    [instance] = direct_view(pod).instances
    assert instance.last_used_s == epoch(120)
    assert not instance.sleepable


def test_a_direct_engine_weighs_what_its_requester_said_even_once_it_is_gone() -> None:
    sized = direct_pod(annotations={"dual-pods.llm-d.ai/weights-size": "5Gi"})
    for key in ("requester", "instance-id", "actuation-path", "bound-at"):
        del sized["metadata"]["annotations"]["dual-pods.llm-d.ai/" + key]
    [instance] = direct_view(sized).instances
    assert instance.spec.weights_bytes == 5 * GIB
    [unsized] = direct_view(direct_pod()).instances
    assert unsized.spec.weights_bytes == int(0.8 * 2 * GPU_BYTES)  # the upper bound


def test_a_direct_provider_whose_readiness_probe_names_no_port() -> None:
    pod = direct_pod()
    del pod["spec"]["containers"][0]["readinessProbe"]
    provider = direct_view(pod)
    assert provider.port is None
    assert len(provider.instances) == 1


def test_provider_facts_depend_on_the_object_alone() -> None:
    facts = provider_facts(direct_pod())
    assert isinstance(facts, ProviderFacts)
    assert facts == provider_facts(direct_pod())


# --- InferenceServerConfigs --------------------------------------------------------------------


def test_a_valid_isc() -> None:
    obj = isc_obj(
        labels={"model": "opt"},
        annotations={"example.com/team": "a"},
        errors=["LauncherConfig lc-small not found"],
    )
    isc = isc_spec(obj)
    model = InferenceServerConfig.model_validate({k: v for k, v in obj.items() if k != "status"})
    assert isc == IscSpec(
        name="opt",
        spec=isc_server_spec(model, gpu_memory_bytes=GPU_BYTES),
        launcher_config="lc-small",
        routing=Routing(labels={"model": "opt"}, annotations={"example.com/team": "a"}),
        problems=(),
        errors=("LauncherConfig lc-small not found",),
    )


def test_the_weights_bound_is_per_gpu_memory() -> None:
    parsed = parse_isc(isc_obj())
    assert isc_view(parsed, gpu_memory_bytes=GPU_BYTES).spec.weights_bytes == int(0.9 * GPU_BYTES)
    small = isc_view(parsed, gpu_memory_bytes=DEFAULT_GPU_BYTES).spec.weights_bytes
    assert small == int(0.9 * DEFAULT_GPU_BYTES)
    sized = isc_view(parse_isc(isc_obj(weightsSize="2Gi")), gpu_memory_bytes=GPU_BYTES)
    assert sized.spec.weights_bytes == 2 * GIB


def test_routing_problems() -> None:
    isc = isc_spec(isc_obj(labels={"kubernetes.io/role": "x", "ok": "not a value!"}))
    assert len(isc.problems) == 2
    assert isc.problems[0] == 'spec.modelServerConfig.labels["kubernetes.io/role"]: reserved prefix'
    assert isc.problems[1].startswith('spec.modelServerConfig.labels["ok"]: value')
    assert isc.spec.model == "facebook/opt-125m"  # a usable spec: only the routing is wrong


def test_options_with_a_port() -> None:
    isc = isc_spec(isc_obj(options="--model m --port 9000"))
    assert len(isc.problems) == 1
    assert "must not contain --port" in isc.problems[0]
    assert isc.spec.port == 0
    assert isc.launcher_config == "lc-small"


def test_an_isc_that_is_not_valid() -> None:
    obj = isc_obj(port="eighty", errors=["old"])
    isc = isc_spec(obj)
    assert len(isc.problems) == 1
    assert isc.problems[0].startswith("spec.modelServerConfig.port:")
    assert isc.spec == ServerSpec(model="unknown", port=0)
    assert isc.launcher_config == "lc-small"
    assert isc.errors == ("old",)


def test_an_isc_with_a_bad_weights_size() -> None:
    isc = isc_spec(isc_obj(weightsSize="huge"))
    assert len(isc.problems) == 1
    assert "weightsSize" in isc.problems[0]


def test_a_status_with_fields_of_another_version_does_not_invalidate() -> None:
    obj = isc_obj(errors=[])
    obj["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    assert isc_spec(obj).problems == ()


def test_a_parsed_isc_holds_its_model() -> None:
    parsed = parse_isc(isc_obj())
    assert isinstance(parsed, ParsedIsc)
    assert parsed.model is not None
    assert parsed.model.metadata.name == "opt"


# --- LauncherConfigs ---------------------------------------------------------------------------


def test_a_valid_launcher_config() -> None:
    obj = lc_obj(errors=["stale"])
    lc = launcher_config_view(obj)
    model = LauncherConfig.model_validate({k: v for k, v in obj.items() if k != "status"})
    assert lc.name == "lc-small"
    assert lc.max_instances == 2
    assert lc.template_hash == launcher_template_hash(model)
    assert lc.problems == ()
    assert lc.errors == ("stale",)
    assert lc.valid


def test_a_template_without_inference_server() -> None:
    lc = launcher_config_view(lc_obj(template_spec={"containers": [{"name": "x", "image": "y"}]}))
    assert not lc.valid
    assert lc.problems == ("spec.podTemplate.spec.containers: no container named inference-server",)
    assert lc.template_hash != ""


@pytest.mark.parametrize(("cap", "kept"), [(0, 1), ("two", 1)])
def test_an_invalid_launcher_config(cap: Any, kept: int) -> None:
    lc = launcher_config_view(lc_obj(max_instances=cap))
    assert not lc.valid
    assert lc.problems[0].startswith("spec.maxInstances:")
    assert lc.template_hash == ""
    assert lc.max_instances == kept


def test_an_invalid_launcher_config_elsewhere_keeps_its_cap() -> None:
    obj = lc_obj(max_instances=3)
    obj["spec"]["podTemplate"]["metadata"]["name"] = "not-allowed"
    lc = launcher_config_view(obj)
    assert not lc.valid
    assert lc.max_instances == 3


# --- LauncherPopulationPolicies ----------------------------------------------------------------


def test_a_population_policy() -> None:
    policy, problems = population_policy_view(
        lpp_obj(
            match_labels={"nvidia.com/gpu.present": "true"},
            expressions=[
                {"key": "zone", "operator": "In", "values": ["a", "b"]},
                {"key": "spot", "operator": "DoesNotExist"},
            ],
            allocatable={"nvidia.com/gpu": {"min": 4}, "memory": {"min": "512Gi", "max": "2Ti"}},
            counts={"lc-small": 2, "lc-big": 1},
        )
    )
    assert problems == ()
    assert policy == PopulationPolicy(
        name="h100-pool",
        match_labels={"nvidia.com/gpu.present": "true"},
        match_expressions=(
            SelectorRequirement("zone", "In", ("a", "b")),
            SelectorRequirement("spot", "DoesNotExist", ()),
        ),
        allocatable={"memory": (512.0 * GIB, 2048.0 * GIB), "nvidia.com/gpu": (4.0, None)},
        counts={"lc-small": 2, "lc-big": 1},
    )


def test_a_bound_that_is_not_a_quantity() -> None:
    policy, problems = population_policy_view(lpp_obj(allocatable={"memory": {"max": "lots"}}))
    assert policy is None
    assert len(problems) == 1
    assert problems[0].startswith('spec.enhancedNodeSelector.allocatableResources["memory"].max:')


def test_a_policy_that_is_not_valid() -> None:
    obj = lpp_obj(expressions=[{"key": "zone", "operator": "In"}])
    policy, problems = population_policy_view(obj)
    assert policy is None
    assert len(problems) == 1
    assert "matchExpressions" in problems[0]


def test_duplicate_launcher_configs_in_a_policy() -> None:
    obj = lpp_obj()
    obj["spec"]["countForLauncher"].append({"launcherConfigName": "lc-small", "launcherCount": 3})
    policy, problems = population_policy_view(obj)
    assert policy is None
    assert "duplicate" in problems[0]
