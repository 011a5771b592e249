"""The operator's executor: each action's requests (patch bodies, preconditions, URLs), the
classification of failures, stopping at the first failure, write-through into the store,
in-flight wakes and sleeps, the requester's proxy, the actuation record, and the trace.

The Kubernetes API is faked at the boundary the executor calls (the CoreV1Api and
CustomObjectsApi methods it uses, answering and failing as the real client does, with
resourceVersion and UID preconditions enforced); HTTP goes to an ``httpx.MockTransport``."""

import asyncio
import copy
import itertools
import json
import logging
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import urllib3.exceptions
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from fma.adapters.k8s.calls import Calls
from fma.adapters.k8s.engines import EngineBook
from fma.adapters.k8s.executor import K8sExecutor, api_error_kind
from fma.adapters.k8s.observed import LauncherReport, Relays, ReportBook, container_run
from fma.adapters.k8s.store import Kind, ObjectStore
from fma.adapters.k8s.trace import OperatorTrace
from fma.api.constants import (
    ANN_ACCELERATORS,
    ANN_ACTUATED,
    ANN_ACTUATION_PATH,
    ANN_BOUND_AT,
    ANN_INSTANCE_ID,
    ANN_INSTANCES_LAST_USED,
    ANN_ISC_ROUTING_METADATA,
    ANN_PROXY_PORT,
    ANN_REQUESTER,
    ANN_SERVER_PATCH,
    ANN_SLEEP_REFUSED,
    ANN_STATUS,
    FINALIZER_PROVIDER,
    FINALIZER_REQUESTER,
    LABEL_DUAL,
    LABEL_INSTANCE,
    LABEL_SLEEPING,
)
from fma.control.reconcile import CONFIGS, Decision
from fma.core.actions import (
    Action,
    Bind,
    ConfigKind,
    CreateDirectProvider,
    CreateInstance,
    CreateLauncher,
    DeleteInstance,
    DeleteProvider,
    DeleteRequester,
    EmitEvent,
    LabelProvider,
    Plan,
    RelayReadiness,
    SetActuationPath,
    SetConfigStatus,
    SetRequesterStatus,
    SleepInstance,
    SubjectKind,
    Unbind,
    UpdateRequesterMeta,
    WakeInstance,
)
from fma.core.model import (
    ActuationPath,
    ConfigSnapshot,
    Instance,
    InstanceState,
    IscSpec,
    LauncherConfigSpec,
    NodeSnapshot,
    Provider,
    ProviderKind,
    Requester,
    Routing,
    ServerSpec,
)
from fma.core.outcomes import Outcome, OutcomeKind
from fma.launcher.api import InstanceStatus

Obj = dict[str, Any]
NS = "team-a"
NODE = "node-a"
T0 = 1_800_000_000.0
T0_TEXT = "2027-01-15T08:00:00.000000Z"
STARTED = "2027-01-15T07:59:50Z"
REQ_UID, REQ_NAME, REQ_IP = "req-uid", "req-1", "10.0.0.2"
LAUNCHER, LAUNCHER_UID, LAUNCHER_IP = "launcher-lc-abcde", "l-uid", "10.0.0.3"
SPEC = ServerSpec(model="facebook/opt-125m", port=8005, weights_bytes=2_000_000)
GPUS = ("GPU-a",)


# --- the fake API server -------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies ``application/merge-patch+json``."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def api_error(status: int, message: str = "") -> ApiException:
    body = json.dumps({"kind": "Status", "status": "Failure", "message": message, "code": status})
    return ApiException(status=status, reason="Error", body=body)


@dataclass
class Call:
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass
class FakeApi:
    """The CoreV1Api and CustomObjectsApi methods the executor calls, over one namespace's
    Pods and custom objects; ``fail[method]`` is raised by the next call of ``method``."""

    pods: dict[str, Obj] = field(default_factory=dict)
    objects: dict[tuple[str, str], Obj] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    events: list[Obj] = field(default_factory=list)
    fail: dict[str, BaseException] = field(default_factory=dict)
    revisions: Any = field(default_factory=lambda: itertools.count(100))
    names: Any = field(default_factory=lambda: itertools.count(1))

    def _enter(self, method: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append(Call(method, args, kwargs))
        assert kwargs.get("_request_timeout") == (2.0, 10.0)
        error = self.fail.pop(method, None)
        if error is not None:
            raise error

    def _bump(self, obj: Obj) -> None:
        obj["metadata"]["resourceVersion"] = str(next(self.revisions))

    @staticmethod
    def _check(obj: Obj, uid: str | None, rv: str | None) -> None:
        meta = obj["metadata"]
        if uid and uid != meta.get("uid"):
            raise api_error(409, f"Precondition failed: UID in precondition: {uid}")
        if rv and rv != meta.get("resourceVersion"):
            raise api_error(409, "the object has been modified; please apply your changes")

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def create_namespaced_pod(self, namespace: str, body: client.V1Pod, **kwargs: Any) -> Any:
        self._enter("create_namespaced_pod", namespace, body, **kwargs)
        assert isinstance(body, client.V1Pod)
        pod = client.ApiClient().sanitize_for_serialization(body)
        meta = pod["metadata"]
        meta["name"] = meta.get("name") or f"{meta['generateName']}{next(self.names):05d}"
        meta["uid"] = f"uid-{meta['name']}"
        meta["namespace"] = namespace
        self._bump(pod)
        self.pods[meta["name"]] = pod
        return client.V1Pod.from_dict(pod)

    def patch_namespaced_pod(self, name: str, namespace: str, body: Obj, **kwargs: Any) -> Any:
        self._enter("patch_namespaced_pod", name, namespace, body, **kwargs)
        assert kwargs["_content_type"] == "application/merge-patch+json"
        assert kwargs["field_manager"] == "fma-controller"
        pod = self.pods.get(name)
        if pod is None:
            raise api_error(404, f'pods "{name}" not found')
        meta = body.get("metadata", {})
        self._check(pod, meta.get("uid"), meta.get("resourceVersion"))
        patched = merge_patch(pod, body)
        self._bump(patched)
        self.pods[name] = patched
        return client.V1Pod.from_dict(patched)

    def read_namespaced_pod(self, name: str, namespace: str, **kwargs: Any) -> Any:
        self._enter("read_namespaced_pod", name, namespace, **kwargs)
        pod = self.pods.get(name)
        if pod is None:
            raise api_error(404, f'pods "{name}" not found')
        return client.V1Pod.from_dict(copy.deepcopy(pod))

    def delete_namespaced_pod(self, name: str, namespace: str, **kwargs: Any) -> Any:
        self._enter("delete_namespaced_pod", name, namespace, **kwargs)
        pod = self.pods.get(name)
        if pod is None:
            raise api_error(404, f'pods "{name}" not found')
        options = kwargs["body"]
        pre = options.preconditions
        self._check(pod, pre.uid if pre else None, pre.resource_version if pre else None)
        if pod["metadata"].get("finalizers"):
            pod["metadata"]["deletionTimestamp"] = "2027-01-15T08:00:00Z"
            self._bump(pod)
        else:
            del self.pods[name]
        return client.V1Pod.from_dict(pod)

    def create_namespaced_event(self, namespace: str, body: Any, **kwargs: Any) -> Any:
        self._enter("create_namespaced_event", namespace, body, **kwargs)
        event = client.ApiClient().sanitize_for_serialization(body)
        assert event["metadata"]["namespace"] == namespace
        self.events.append(event)
        return body

    def patch_namespaced_custom_object_status(
        self,
        group: str,
        version: str,
        namespace: str,
        plural: str,
        name: str,
        body: Obj,
        **kwargs: Any,
    ) -> Any:
        self._enter(
            "patch_namespaced_custom_object_status",
            group,
            version,
            namespace,
            plural,
            name,
            body,
            **kwargs,
        )
        obj = self.objects.get((plural, name))
        if obj is None:
            raise api_error(404, f"{plural} {name} not found")
        self._check(obj, None, body.get("metadata", {}).get("resourceVersion"))
        patched = merge_patch(obj, body)
        self._bump(patched)
        self.objects[(plural, name)] = patched
        return copy.deepcopy(patched)


# --- the fake network ---------------------------------------------------------------------------

Answer = httpx.Response | BaseException | Callable[[httpx.Request], Coroutine[Any, Any, Any]]


@dataclass
class Network:
    """Answers by (method, path); the default is 200 ``{}``. An answer may be an exception to
    raise, or a coroutine function (to hold an answer until a test lets it go)."""

    answers: dict[tuple[str, str], Answer] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.get((request.method, request.url.path))
        if answer is None:
            return httpx.Response(200, json={})
        if isinstance(answer, BaseException):
            raise type(answer)(str(answer), request=request)  # type: ignore[call-arg]
        if isinstance(answer, httpx.Response):
            return answer
        result = await answer(request)
        assert isinstance(result, httpx.Response)
        return result

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if (r.method, r.url.path) == (method, path)]


def instance_json(instance_id: str) -> Obj:
    return {
        "instance_id": instance_id,
        "status": "running",
        "revision": 1,
        "options": ["--port", "8005"],
    }


# --- the cluster's objects -----------------------------------------------------------------------


def container_status(started: str = STARTED, restarts: int = 0) -> Obj:
    return {
        "name": "inference-server",
        "image": "ghcr.io/llm-d-fma/fma:1",
        "imageID": "sha256:1",
        "ready": False,
        "restartCount": restarts,
        "state": {"running": {"startedAt": started}},
    }


def requester_pod(**annotations: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": REQ_NAME,
            "namespace": NS,
            "uid": REQ_UID,
            "resourceVersion": "10",
            "labels": {"app": "dp-app"},
            "annotations": dict(annotations),
        },
        "spec": {
            "nodeName": NODE,
            "containers": [
                {
                    "name": "inference-server",
                    "image": "ghcr.io/llm-d-fma/fma:1",
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
                }
            ],
        },
        "status": {"podIP": REQ_IP, "containerStatuses": [container_status()]},
    }


def launcher_pod(**annotations: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": LAUNCHER,
            "namespace": NS,
            "uid": LAUNCHER_UID,
            "resourceVersion": "20",
            "labels": {"app.kubernetes.io/component": "launcher", LABEL_SLEEPING: "true"},
            "annotations": dict(annotations),
        },
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": NODE},
            "containers": [{"name": "inference-server", "image": "ghcr.io/llm-d-fma/fma:1"}],
        },
        "status": {"podIP": LAUNCHER_IP, "containerStatuses": [container_status()]},
    }


def bound_launcher_pod(**annotations: str) -> Obj:
    pod = launcher_pod(
        **{
            ANN_REQUESTER: f"{REQ_UID} {REQ_NAME}",
            ANN_INSTANCE_ID: "i-1",
            ANN_ACTUATION_PATH: "warm",
            ANN_BOUND_AT: "2027-01-15T07:59:55.000000Z",
            **annotations,
        }
    )
    pod["metadata"]["labels"][LABEL_DUAL] = REQ_NAME
    pod["metadata"]["finalizers"] = [FINALIZER_PROVIDER]
    return pod


def requester(**changes: Any) -> Requester:
    base = Requester(
        uid=REQ_UID,
        name=REQ_NAME,
        node=NODE,
        gpu_uuids=GPUS,
        spec=None,
        isc_name="isc-a",
        started_s=T0 - 10,
        ip=REQ_IP,
        resource_version="10",
    )
    return replace(base, **changes)


def instance(state: InstanceState = InstanceState.AWAKE, **changes: Any) -> Instance:
    base = Instance("i-1", SPEC, GPUS, state, created_s=T0 - 60, last_used_s=T0 - 60)
    return replace(base, **changes)


def launcher(*instances: Instance, bound: bool = False, **changes: Any) -> Provider:
    base = Provider(
        name=LAUNCHER,
        node=NODE,
        kind=ProviderKind.LAUNCHER,
        created_s=T0 - 100,
        instances=instances,
        bound_requester_uid=REQ_UID if bound else None,
        bound_instance_id="i-1" if bound else None,
        path=ActuationPath.WARM if bound else None,
        launcher_config="lc",
        uid=LAUNCHER_UID,
        resource_version="20",
        ip=LAUNCHER_IP,
        port=8001,
    )
    return replace(base, **changes)


def snapshot(
    *, requesters: tuple[Requester, ...] = (), providers: tuple[Provider, ...] = ()
) -> NodeSnapshot:
    return NodeSnapshot(
        NODE,
        None,
        requesters=requesters,
        providers=providers,
        iscs={"isc-a": IscSpec("isc-a", SPEC, "lc")},
        launcher_configs={"lc": LauncherConfigSpec("lc", max_instances=2, template_hash="h")},
    )


class Clock:
    def __init__(self) -> None:
        self.now_s = T0

    def __call__(self) -> float:
        return self.now_s


@dataclass
class World:
    api: FakeApi
    network: Network
    store: ObjectStore
    engines: EngineBook
    relays: Relays
    executor: K8sExecutor
    trace_path: Path
    changed: list[str]
    clock: Clock

    def add_pod(self, pod: Obj) -> None:
        self.api.pods[pod["metadata"]["name"]] = copy.deepcopy(pod)
        self.store.put(Kind.POD, pod)

    def pod(self, name: str) -> Obj:
        return self.api.pods[name]

    def trace(self, *kinds: str) -> list[Obj]:
        if not self.trace_path.exists():
            return []
        records = [json.loads(line) for line in self.trace_path.read_text().splitlines()]
        return [r for r in records if not kinds or r["kind"] in kinds]

    def apply(self, snap: NodeSnapshot | ConfigSnapshot, *actions: Action) -> list[Outcome]:
        decision = Decision(
            NODE if isinstance(snap, NodeSnapshot) else CONFIGS, snap, Plan(actions)
        )
        return asyncio.run(self._apply(decision))

    async def _apply(self, decision: Decision) -> list[Outcome]:
        outcomes = await self.executor.apply(decision)
        await self.executor.settled()
        return outcomes

    def run(self, scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
        asyncio.run(scenario())


@pytest.fixture
def world(tmp_path: Path) -> World:
    api, network, store, clock = FakeApi(), Network(), ObjectStore(), Clock()
    changed: list[str] = []
    engines = EngineBook(on_change=changed.append)
    relays = Relays()
    trace_path = tmp_path / "events.jsonl"
    executor = K8sExecutor(
        api=client.ApiClient(),
        namespace=NS,
        store=store,
        engines=engines,
        relays=relays,
        calls=Calls(transport=httpx.MockTransport(network), wall_clock=clock),
        trace=OperatorTrace(trace_path, clock),
        clock=clock,
        failure_hold_s=0.0,
        core_api=api,  # type: ignore[arg-type]
        custom_api=api,  # type: ignore[arg-type]
    )
    return World(api, network, store, engines, relays, executor, trace_path, changed, clock)


def kinds(outcomes: list[Outcome]) -> list[OutcomeKind]:
    return [o.kind for o in outcomes]


def patch_body(world: World, index: int = -1) -> Obj:
    body: Obj = world.api.calls_of("patch_namespaced_pod")[index].args[2]
    return body


# --- binding ---------------------------------------------------------------------------------


def test_bind_writes_the_binding_in_one_patch_with_preconditions(world: World) -> None:
    world.add_pod(requester_pod())
    world.add_pod(launcher_pod())
    snap = snapshot(requesters=(requester(),), providers=(launcher(),))
    outcomes = world.apply(snap, Bind(LAUNCHER, REQ_UID, "i-1", ActuationPath.WARM))
    assert kinds(outcomes) == [OutcomeKind.OK]
    assert patch_body(world) == {
        "metadata": {
            "uid": LAUNCHER_UID,
            "resourceVersion": "20",
            "annotations": {
                ANN_REQUESTER: f"{REQ_UID} {REQ_NAME}",
                ANN_INSTANCE_ID: "i-1",
                ANN_ACTUATION_PATH: "warm",
                ANN_BOUND_AT: T0_TEXT,
            },
            "labels": {LABEL_DUAL: REQ_NAME},
            "finalizers": [FINALIZER_PROVIDER],
        }
    }
    # write-through: the next reconcile sees the binding before its watch event
    stored = world.store.get(Kind.POD, LAUNCHER)
    assert stored is not None
    assert stored["metadata"]["annotations"][ANN_REQUESTER] == f"{REQ_UID} {REQ_NAME}"
    assert (
        stored["metadata"]["resourceVersion"] == world.pod(LAUNCHER)["metadata"]["resourceVersion"]
    )
    assert world.trace("bind") == [
        {
            "t": T0,
            "kind": "bind",
            "provider": LAUNCHER,
            "requester": REQ_UID,
            "instance": "i-1",
            "path": "warm",
        }
    ]


def test_a_write_to_a_changed_pod_is_a_conflict_and_stops_the_plan(world: World) -> None:
    world.add_pod(requester_pod())
    world.add_pod(launcher_pod())
    world.api.pods[LAUNCHER]["metadata"]["resourceVersion"] = "21"  # changed since
    snap = snapshot(requesters=(requester(),), providers=(launcher(),))
    bind = Bind(LAUNCHER, REQ_UID, "i-1", ActuationPath.WARM)
    outcomes = world.apply(snap, bind, LabelProvider(LAUNCHER, sleeping=False))
    assert kinds(outcomes) == [OutcomeKind.CONFLICT]
    assert "modified" in (outcomes[0].error or "")
    assert len(world.api.calls_of("patch_namespaced_pod")) == 1
    assert world.trace("bind") == []


def test_events_never_stop_a_plan(world: World) -> None:
    world.add_pod(requester_pod())
    world.add_pod(launcher_pod())
    world.api.fail["create_namespaced_event"] = api_error(503)
    snap = snapshot(requesters=(requester(),), providers=(launcher(),))
    outcomes = world.apply(
        snap,
        EmitEvent(SubjectKind.REQUESTER, REQ_UID, "Bound", "bound"),
        Bind(LAUNCHER, REQ_UID, "i-1", ActuationPath.WARM),
        EmitEvent(SubjectKind.REQUESTER, "gone-uid", "Bound", "bound"),
        SetActuationPath(LAUNCHER, ActuationPath.HOT),
    )
    assert kinds(outcomes) == [
        OutcomeKind.OK,  # queued; the API server's 503 is logged, not traced
        OutcomeKind.OK,
        OutcomeKind.NOT_FOUND,
        OutcomeKind.OK,
    ]
    assert world.api.events == [] and world.trace("k8s_event") == []
    assert world.trace("bind") != []


def test_a_plan_does_not_wait_for_its_events(world: World) -> None:
    """The Event's POST is still under way (held here until the bind's patch arrives) while
    the actions after it run; it is posted all the same, and traced after its success."""
    world.add_pod(requester_pod())
    world.add_pod(launcher_pod())
    patched = threading.Event()
    post_event, patch_pod = world.api.create_namespaced_event, world.api.patch_namespaced_pod

    def held_event(*args: Any, **kwargs: Any) -> Any:
        if not patched.wait(timeout=5):
            raise AssertionError("the plan waited for its Event")
        return post_event(*args, **kwargs)

    def signalled_patch(*args: Any, **kwargs: Any) -> Any:
        try:
            return patch_pod(*args, **kwargs)
        finally:
            patched.set()

    world.api.create_namespaced_event = held_event  # type: ignore[method-assign]
    world.api.patch_namespaced_pod = signalled_patch  # type: ignore[method-assign]
    snap = snapshot(requesters=(requester(),), providers=(launcher(),))
    outcomes = world.apply(
        snap,
        EmitEvent(SubjectKind.REQUESTER, REQ_UID, "Bound", "bound"),
        Bind(LAUNCHER, REQ_UID, "i-1", ActuationPath.WARM),
    )
    assert kinds(outcomes) == [OutcomeKind.OK, OutcomeKind.OK]
    assert [e["reason"] for e in world.api.events] == ["Bound"]
    assert [r["kind"] for r in world.trace("bind", "k8s_event")] == ["bind", "k8s_event"]


def test_writes_of_one_pod_in_one_plan_chain_on_fmas_own_writes(world: World) -> None:
    world.add_pod(requester_pod())
    world.add_pod(launcher_pod())
    snap = snapshot(requesters=(requester(),), providers=(launcher(),))
    outcomes = world.apply(
        snap,
        Bind(LAUNCHER, REQ_UID, "i-1", ActuationPath.HOT),
        SetActuationPath(LAUNCHER, ActuationPath.WARM),
    )
    assert kinds(outcomes) == [OutcomeKind.OK, OutcomeKind.OK]
    _, second = world.api.calls_of("patch_namespaced_pod")
    assert second.args[2]["metadata"]["resourceVersion"] != "20"
    assert world.pod(LAUNCHER)["metadata"]["annotations"][ANN_ACTUATION_PATH] == "warm"
    assert world.trace("path_changed")[0]["path"] == "warm"


def test_set_actuation_path_patches_the_path(world: World) -> None:
    world.add_pod(bound_launcher_pod())
    outcomes = world.apply(
        snapshot(providers=(launcher(bound=True),)), SetActuationPath(LAUNCHER, ActuationPath.WARM)
    )
    assert kinds(outcomes) == [OutcomeKind.OK]
    assert patch_body(world)["metadata"]["annotations"] == {ANN_ACTUATION_PATH: "warm"}


def test_unbind_removes_the_binding_routing_and_finalizer_in_one_patch(world: World) -> None:
    routing_record = json.dumps({"annotations": {"note": "x"}, "labels": {"route": "yes"}})
    pod = bound_launcher_pod(
        **{
            ANN_ISC_ROUTING_METADATA: routing_record,
            "note": "x",
            ANN_INSTANCES_LAST_USED: json.dumps({"i-0": "2027-01-01T00:00:00.000000Z"}),
        }
    )
    pod["metadata"]["labels"] |= {"route": "yes", LABEL_SLEEPING: "false"}
    world.add_pod(pod)
    world.engines.touch(LAUNCHER, "i-1", T0)
    outcomes = world.apply(snapshot(providers=(launcher(bound=True),)), Unbind(LAUNCHER))
    assert kinds(outcomes) == [OutcomeKind.OK]
    assert patch_body(world) == {
        "metadata": {
            "uid": LAUNCHER_UID,
            "resourceVersion": "20",
            "labels": {"route": None, LABEL_DUAL: None, LABEL_SLEEPING: "true"},
            "annotations": {
                "note": None,
                ANN_ISC_ROUTING_METADATA: None,
                ANN_REQUESTER: None,
                ANN_INSTANCE_ID: None,
                ANN_ACTUATION_PATH: None,
                ANN_BOUND_AT: None,
                ANN_INSTANCES_LAST_USED: json.dumps(
                    {"i-0": "2027-01-01T00:00:00.000000Z", "i-1": T0_TEXT},
                    separators=(",", ":"),
                ),
            },
            "finalizers": [],
        }
    }
    unbound = world.pod(LAUNCHER)["metadata"]
    assert unbound["labels"] == {"app.kubernetes.io/component": "launcher", LABEL_SLEEPING: "true"}
    assert world.trace("unbind")[0] | {"t": 0} == {
        "t": 0,
        "kind": "unbind",
        "provider": LAUNCHER,
        "requester": REQ_UID,
    }


def test_unbind_of_a_gone_provider_is_done(world: World) -> None:
    outcomes = world.apply(snapshot(providers=(launcher(bound=True),)), Unbind(LAUNCHER))
    assert kinds(outcomes) == [OutcomeKind.OK]
    assert world.api.calls == []


def test_label_provider_puts_and_takes_routing_metadata(world: World) -> None:
    world.add_pod(bound_launcher_pod())
    routing = Routing(labels={"llm-d.ai/model": "opt"}, annotations={"note": "x"})
    bound = launcher(bound=True)
    outcomes = world.apply(snapshot(providers=(bound,)), LabelProvider(LAUNCHER, False, routing))
    assert kinds(outcomes) == [OutcomeKind.OK]
    record = json.dumps(
        {"annotations": {"note": "x"}, "labels": {"llm-d.ai/model": "opt"}}, separators=(",", ":")
    )
    assert patch_body(world)["metadata"]["labels"] == {
        "llm-d.ai/model": "opt",
        LABEL_SLEEPING: "false",
    }
    assert patch_body(world)["metadata"]["annotations"] == {
        "note": "x",
        ANN_ISC_ROUTING_METADATA: record,
    }
    assert [r["on"] for r in world.trace("routing")] == [True]

    world.store.put(Kind.POD, world.pod(LAUNCHER))
    on = replace(
        bound, routing=routing, resource_version=world.pod(LAUNCHER)["metadata"]["resourceVersion"]
    )
    outcomes = world.apply(snapshot(providers=(on,)), LabelProvider(LAUNCHER, True, None))
    assert kinds(outcomes) == [OutcomeKind.OK]
    meta = world.pod(LAUNCHER)["metadata"]
    assert "llm-d.ai/model" not in meta["labels"]
    assert meta["labels"][LABEL_SLEEPING] == "true"
    assert "note" not in meta["annotations"]
    assert ANN_ISC_ROUTING_METADATA not in meta["annotations"]
    assert [r["on"] for r in world.trace("routing")] == [True, False]


def test_a_provider_update_carries_refused_sleeps(world: World) -> None:
    world.add_pod(bound_launcher_pod())
    world.engines.refuse_sleep(LAUNCHER, "i-1")
    world.apply(snapshot(providers=(launcher(bound=True),)), LabelProvider(LAUNCHER, False))
    assert patch_body(world)["metadata"]["annotations"] == {ANN_SLEEP_REFUSED: '["i-1"]'}


def test_a_write_the_api_server_finds_invalid_is_told_on_the_pod(world: World) -> None:
    world.add_pod(launcher_pod())
    world.add_pod(requester_pod())
    world.api.fail["patch_namespaced_pod"] = api_error(422, 'metadata.labels: Invalid value: "x"')
    snap = snapshot(requesters=(requester(),), providers=(launcher(),))
    outcomes = world.apply(snap, Bind(LAUNCHER, REQ_UID, "i-1", ActuationPath.WARM))
    assert kinds(outcomes) == [OutcomeKind.INVALID]
    (event,) = world.api.events
    assert event["type"] == "Warning"
    assert event["reason"] == "Rejected"
    assert 'metadata.labels: Invalid value: "x"' in event["message"]
    assert event["involvedObject"]["uid"] == LAUNCHER_UID


# --- creating providers ----------------------------------------------------------------------

SERVER_PATCH = """\
metadata:
  labels:
    app: null
spec:
  containers:
  - name: inference-server
    image: vllm/vllm-openai:v0.10.1
    command: ["vllm", "serve", "--model", "facebook/opt-125m", "--port", "8005"]
    readinessProbe:
      httpGet:
        path: /health
        port: 8005
"""


def gpu_map(**nodes: Obj) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "gpu-map", "namespace": NS, "uid": "cm", "resourceVersion": "1"},
        "data": {node: json.dumps(entries) for node, entries in nodes.items()},
    }


def test_create_direct_provider_creates_the_bound_pod(world: World) -> None:
    world.add_pod(requester_pod(**{ANN_SERVER_PATCH: SERVER_PATCH}))
    world.store.put(Kind.CONFIGMAP, gpu_map(**{NODE: {"GPU-a": 3, "GPU-b": 1}}))
    action = CreateDirectProvider(REQ_UID, NODE, GPUS, SPEC, "i-1", ActuationPath.COLD)
    outcomes = world.apply(snapshot(requesters=(requester(),)), action)
    assert kinds(outcomes) == [OutcomeKind.OK]
    (created,) = [p for name, p in world.api.pods.items() if name != REQ_NAME]
    name = created["metadata"]["name"]
    assert name.startswith(f"{REQ_NAME}-dual-")
    env = created["spec"]["containers"][0]["env"]
    assert {"name": "CUDA_VISIBLE_DEVICES", "value": "3"} in env
    annotations = created["metadata"]["annotations"]
    assert annotations[ANN_REQUESTER] == f"{REQ_UID} {REQ_NAME}"
    assert (annotations[ANN_INSTANCE_ID], annotations[ANN_ACTUATION_PATH]) == ("i-1", "cold")
    assert annotations[ANN_BOUND_AT] == T0_TEXT
    assert created["metadata"]["finalizers"] == [FINALIZER_PROVIDER]
    assert world.store.get(Kind.POD, name) is not None
    note = world.engines.note(name, "i-1")
    assert note is not None and (note.phase, note.run) == (InstanceState.STARTING, "")
    assert [r["kind"] for r in world.trace()] == ["provider_created", "bind", "instance_starting"]
    assert world.trace("provider_created")[0]["provider_kind"] == "direct"
    assert world.trace("instance_starting")[0] | {"t": 0} == {
        "t": 0,
        "kind": "instance_starting",
        "provider": name,
        "instance": "i-1",
        "node": NODE,
        "gpus": ["GPU-a"],
        "bytes": SPEC.weights_bytes,
        "port": 8005,
        "utilization": SPEC.gpu_memory_utilization,
    }


def test_gpus_the_gpu_map_does_not_know_are_invalid_and_told(world: World) -> None:
    world.add_pod(requester_pod(**{ANN_SERVER_PATCH: SERVER_PATCH}))
    world.store.put(Kind.CONFIGMAP, gpu_map(**{NODE: {"GPU-z": 0}}))
    action = CreateDirectProvider(REQ_UID, NODE, GPUS, SPEC, "i-1", ActuationPath.COLD)
    outcomes = world.apply(snapshot(requesters=(requester(),)), action)
    assert kinds(outcomes) == [OutcomeKind.INVALID]
    assert outcomes[0].error == "UUID GPU-a is not known"
    assert world.api.calls_of("create_namespaced_pod") == []
    (event,) = world.api.events
    assert (event["reason"], event["involvedObject"]["uid"]) == ("RenderFailed", REQ_UID)


def test_create_direct_provider_for_a_gone_requester_is_not_found(world: World) -> None:
    action = CreateDirectProvider(REQ_UID, NODE, GPUS, SPEC, "i-1", ActuationPath.COLD)
    assert kinds(world.apply(snapshot(), action)) == [OutcomeKind.NOT_FOUND]


LAUNCHER_CONFIG: Obj = {
    "apiVersion": "fma.llm-d.ai/v1alpha1",
    "kind": "LauncherConfig",
    "metadata": {
        "name": "lc",
        "namespace": NS,
        "uid": "lc-uid",
        "resourceVersion": "5",
        "generation": 2,
    },
    "spec": {
        "maxInstances": 2,
        "podTemplate": {
            "spec": {
                "containers": [{"name": "inference-server", "image": "ghcr.io/llm-d-fma/fma:1"}]
            }
        },
    },
}


def test_create_launcher_for_a_requester_creates_it_bound_and_logs_it(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fma.operator")
    world.add_pod(requester_pod())
    world.store.put(Kind.LAUNCHER_CONFIG, LAUNCHER_CONFIG)
    action = CreateLauncher(NODE, "lc", "h", REQ_UID, "i-1", ActuationPath.COLD_LAUNCHER)
    outcomes = world.apply(snapshot(requesters=(requester(),)), action)
    assert kinds(outcomes) == [OutcomeKind.OK]
    (created,) = [p for name, p in world.api.pods.items() if name != REQ_NAME]
    meta = created["metadata"]
    assert meta["name"].startswith("launcher-lc-")
    assert meta["ownerReferences"][0]["uid"] == "lc-uid"
    assert meta["labels"][LABEL_DUAL] == REQ_NAME
    assert meta["annotations"][ANN_ACTUATION_PATH] == "cold_launcher"
    assert meta["finalizers"] == [FINALIZER_PROVIDER]
    assert world.store.get(Kind.POD, meta["name"]) is not None
    (line,) = [r.getMessage() for r in caplog.records if "server-providing pod" in r.getMessage()]
    assert line.startswith("Created launcher-based server-providing pod ")
    assert f'requesterName="{REQ_NAME}"' in line
    assert 'k8sCallStartTime="2027-01-15T08:00:00.000000000Z"' in line
    assert [r["kind"] for r in world.trace()] == ["provider_created", "bind"]
    assert world.trace("provider_created")[0]["max_instances"] == 2


def test_create_launcher_for_the_population_is_unbound(world: World) -> None:
    world.store.put(Kind.LAUNCHER_CONFIG, LAUNCHER_CONFIG)
    outcomes = world.apply(snapshot(), CreateLauncher(NODE, "lc", "h"))
    assert kinds(outcomes) == [OutcomeKind.OK]
    (created,) = world.api.pods.values()
    assert ANN_REQUESTER not in created["metadata"]["annotations"]
    assert [r["kind"] for r in world.trace()] == ["provider_created"]


def test_a_launcher_config_that_does_not_render_is_invalid_and_told(world: World) -> None:
    broken = copy.deepcopy(LAUNCHER_CONFIG)
    broken["spec"]["podTemplate"]["spec"]["containers"][0]["name"] = "other"
    world.store.put(Kind.LAUNCHER_CONFIG, broken)
    outcomes = world.apply(snapshot(), CreateLauncher(NODE, "lc", "h"))
    assert kinds(outcomes) == [OutcomeKind.INVALID]
    assert "no container named inference-server" in (outcomes[0].error or "")
    (event,) = world.api.events
    assert event["involvedObject"]["kind"] == "LauncherConfig"


def test_a_pod_the_api_server_refuses_to_create_is_told_on_the_requester(world: World) -> None:
    world.add_pod(requester_pod())
    world.store.put(Kind.LAUNCHER_CONFIG, LAUNCHER_CONFIG)
    world.api.fail["create_namespaced_pod"] = api_error(403, "exceeded quota")
    action = CreateLauncher(NODE, "lc", "h", REQ_UID, "i-1", ActuationPath.COLD_LAUNCHER)
    outcomes = world.apply(snapshot(requesters=(requester(),)), action)
    assert kinds(outcomes) == [OutcomeKind.INVALID]
    (event,) = world.api.events
    assert event["involvedObject"]["uid"] == REQ_UID
    assert "exceeded quota" in event["message"]


# --- instances -------------------------------------------------------------------------------


def test_create_instance_puts_the_vllm_config_and_notes_it_starting(world: World) -> None:
    world.network.answers[("PUT", "/v2/vllm/instances/i-1")] = httpx.Response(
        201, json=instance_json("i-1")
    )
    action = CreateInstance(LAUNCHER, "i-1", SPEC, GPUS, isc_name="isc-a")
    outcomes = world.apply(snapshot(providers=(launcher(bound=True),)), action)
    assert kinds(outcomes) == [OutcomeKind.OK]
    (request,) = world.network.requests
    assert str(request.url) == "http://10.0.0.3:8001/v2/vllm/instances/i-1"
    assert json.loads(request.content) == {
        "options": ["--port", "8005"],
        "gpu_uuids": ["GPU-a"],
        "env_vars": {},
        "annotations": {"isc-name": "isc-a", "inference-port": "8005"},
    }
    note = world.engines.note(LAUNCHER, "i-1")
    assert note is not None and note.phase is InstanceState.STARTING
    assert [r["kind"] for r in world.trace()] == ["instance_starting"]


def test_a_created_instance_is_in_the_launchers_report_at_once(world: World) -> None:
    """The next reconcile sees the instance the launcher accepted, before its watch stream
    shows it, and so does not create it again."""
    world.executor.reports = ReportBook()
    world.executor.reports.set(LAUNCHER, LauncherReport(LAUNCHER_UID, 0, 7, {}))
    world.network.answers[("PUT", "/v2/vllm/instances/i-1")] = httpx.Response(
        201, json=instance_json("i-1")
    )
    action = CreateInstance(LAUNCHER, "i-1", SPEC, GPUS, isc_name="isc-a")
    assert kinds(world.apply(snapshot(providers=(launcher(bound=True),)), action)) == [
        OutcomeKind.OK
    ]
    report = world.executor.reports.report(LAUNCHER)
    assert report is not None and set(report.instances) == {"i-1"}
    assert report.instances["i-1"].status is InstanceStatus.RUNNING


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (httpx.Response(409, json={"detail": "exists"}), OutcomeKind.CONFLICT),
        (httpx.ConnectError("refused"), OutcomeKind.TRANSIENT),
        (httpx.ReadTimeout("slow"), OutcomeKind.UNKNOWN),
        (httpx.Response(422, json={"detail": "bad option"}), OutcomeKind.INVALID),
    ],
)
def test_create_instance_failures(world: World, answer: Any, kind: OutcomeKind) -> None:
    world.network.answers[("PUT", "/v2/vllm/instances/i-1")] = answer
    action = CreateInstance(LAUNCHER, "i-1", SPEC, GPUS)
    assert kinds(world.apply(snapshot(providers=(launcher(bound=True),)), action)) == [kind]
    assert world.engines.note(LAUNCHER, "i-1") is None


def test_options_a_launcher_refuses_are_told_once_on_the_bound_requester(world: World) -> None:
    world.add_pod(requester_pod())
    world.network.answers[("PUT", "/v2/vllm/instances/i-1")] = httpx.Response(
        422, json={"detail": "unrecognized arguments: --no-such-flag"}
    )
    snap = snapshot(requesters=(requester(),), providers=(launcher(bound=True),))
    outcomes = world.apply(snap, CreateInstance(LAUNCHER, "i-1", SPEC, GPUS))
    assert kinds(outcomes) == [OutcomeKind.INVALID]
    (event,) = world.api.events
    assert (event["reason"], event["type"]) == ("Invalid", "Warning")
    assert event["involvedObject"]["uid"] == REQ_UID
    assert event["message"].startswith("CreateInstance failed: ")
    assert "--no-such-flag" in event["message"]


def test_an_invalid_action_of_an_unbound_provider_is_told_on_the_provider(world: World) -> None:
    world.add_pod(launcher_pod())
    world.network.answers[("PUT", "/v2/vllm/instances/i-1")] = httpx.Response(
        422, json={"detail": "unknown GPU UUID(s) GPU-a"}
    )
    outcomes = world.apply(
        snapshot(providers=(launcher(),)), CreateInstance(LAUNCHER, "i-1", SPEC, GPUS)
    )
    assert kinds(outcomes) == [OutcomeKind.INVALID]
    (event,) = world.api.events
    assert event["involvedObject"]["uid"] == LAUNCHER_UID
    assert event["reason"] == "Invalid"


def test_create_instance_on_a_launcher_not_ready_is_transient_without_a_call(world: World) -> None:
    action = CreateInstance(LAUNCHER, "i-1", SPEC, GPUS)
    not_ready = launcher(bound=True, ready=False)
    assert kinds(world.apply(snapshot(providers=(not_ready,)), action)) == [OutcomeKind.TRANSIENT]
    assert world.network.requests == []


def held(gate: asyncio.Event, answer: httpx.Response | BaseException) -> Answer:
    async def respond(request: httpx.Request) -> httpx.Response:
        await gate.wait()
        if isinstance(answer, BaseException):
            raise answer
        return answer

    return respond


def test_a_wake_is_in_flight_until_the_engine_answers(world: World) -> None:
    world.add_pod(bound_launcher_pod())
    snap = snapshot(providers=(launcher(instance(InstanceState.SLEEPING), bound=True),))

    async def scenario() -> None:
        gate = asyncio.Event()
        world.network.answers[("POST", "/wake_up")] = held(gate, httpx.Response(200))
        outcomes = await world.executor.apply(
            Decision(NODE, snap, Plan((WakeInstance(LAUNCHER, "i-1"),)))
        )
        assert kinds(outcomes) == [OutcomeKind.OK]  # done once started
        await asyncio.sleep(0.01)
        note = world.engines.note(LAUNCHER, "i-1")
        assert note is not None and note.phase is InstanceState.WAKING
        assert world.trace("instance_waking") and not world.trace("instance_awake")
        world.clock.now_s = T0 + 3
        gate.set()
        await world.executor.settled()
        note = world.engines.note(LAUNCHER, "i-1")
        assert note is not None and note.phase is InstanceState.AWAKE
        assert world.engines.last_used(LAUNCHER)["i-1"] == T0 + 3

    world.run(scenario)
    (request,) = world.network.requests
    assert str(request.url) == "http://10.0.0.3:8005/wake_up"
    assert [r["kind"] for r in world.trace()] == ["instance_waking", "instance_awake"]
    assert world.changed == [LAUNCHER, LAUNCHER]  # each phase re-queues the node


def test_a_failed_wake_returns_to_sleeping(world: World) -> None:
    world.network.answers[("POST", "/wake_up")] = httpx.ConnectError("refused")
    snap = snapshot(providers=(launcher(instance(InstanceState.SLEEPING), bound=True),))
    assert kinds(world.apply(snap, WakeInstance(LAUNCHER, "i-1"))) == [OutcomeKind.OK]
    note = world.engines.note(LAUNCHER, "i-1")
    assert note is not None and note.phase is InstanceState.SLEEPING
    assert [r["kind"] for r in world.trace()] == ["instance_waking"]


def test_a_sleep_ends_asleep(world: World) -> None:
    snap = snapshot(providers=(launcher(instance(), bound=True),))
    assert kinds(world.apply(snap, SleepInstance(LAUNCHER, "i-1"))) == [OutcomeKind.OK]
    (request,) = world.network.requests
    assert str(request.url) == "http://10.0.0.3:8005/sleep?level=1"
    note = world.engines.note(LAUNCHER, "i-1")
    assert note is not None and note.phase is InstanceState.SLEEPING
    assert [r["kind"] for r in world.trace()] == ["instance_falling_asleep", "instance_sleeping"]


def test_a_sleep_the_engine_refuses_is_recorded_and_told(world: World) -> None:
    world.add_pod(bound_launcher_pod())
    world.network.answers[("POST", "/sleep")] = httpx.Response(404, json={"detail": "Not Found"})
    snap = snapshot(providers=(launcher(instance(), bound=True),))
    assert kinds(world.apply(snap, SleepInstance(LAUNCHER, "i-1"))) == [OutcomeKind.OK]
    note = world.engines.note(LAUNCHER, "i-1")
    assert note is not None and note.phase is InstanceState.AWAKE
    assert world.engines.refused(LAUNCHER) == {"i-1"}
    assert [r["kind"] for r in world.trace()] == [
        "instance_falling_asleep",
        "sleep_refused",
        "k8s_event",
    ]
    (event,) = world.api.events
    assert (event["type"], event["reason"]) == ("Warning", "SleepRefused")
    assert event["involvedObject"]["name"] == LAUNCHER
    assert "refused to sleep" in event["message"] and "--enable-sleep-mode" in event["message"]


@pytest.mark.parametrize("answer", [httpx.ReadTimeout("slow"), httpx.ConnectError("refused")])
def test_a_sleep_that_got_no_answer_is_not_a_refusal(world: World, answer: Exception) -> None:
    world.network.answers[("POST", "/sleep")] = answer
    snap = snapshot(providers=(launcher(instance(), bound=True),))
    world.apply(snap, SleepInstance(LAUNCHER, "i-1"))
    note = world.engines.note(LAUNCHER, "i-1")
    assert note is not None and note.phase is InstanceState.AWAKE
    assert world.engines.refused(LAUNCHER) == frozenset()
    assert world.api.events == []


def test_an_engine_known_to_refuse_is_not_asked_to_sleep(world: World) -> None:
    snap = snapshot(providers=(launcher(instance(sleepable=False), bound=True),))
    outcomes = world.apply(snap, SleepInstance(LAUNCHER, "i-1"))
    assert [(o.kind, o.error) for o in outcomes] == [
        (OutcomeKind.INVALID, "the engine refused to sleep")
    ]
    assert world.network.requests == []


def test_a_direct_providers_engine_is_at_the_pods_port(world: World) -> None:
    direct = Provider(
        "req-1-dual-x",
        NODE,
        ProviderKind.DIRECT,
        T0,
        (instance(),),
        uid="d",
        ip="10.0.0.9",
        port=8005,
    )
    world.apply(snapshot(providers=(direct,)), SleepInstance(direct.name, "i-1"))
    assert str(world.network.requests[0].url) == "http://10.0.0.9:8005/sleep?level=1"


def test_wake_of_an_unknown_instance_is_not_found(world: World) -> None:
    outcomes = world.apply(snapshot(providers=(launcher(),)), WakeInstance(LAUNCHER, "i-1"))
    assert kinds(outcomes) == [OutcomeKind.NOT_FOUND]


def test_deleting_a_sleeper_is_done_when_the_launcher_answers(world: World) -> None:
    world.engines.set_phase(LAUNCHER, "i-1", InstanceState.SLEEPING, T0)
    world.network.answers[("DELETE", "/v2/vllm/instances/i-1")] = httpx.Response(
        200, json=instance_json("i-1")
    )
    snap = snapshot(providers=(launcher(instance(InstanceState.SLEEPING)),))
    outcomes = world.apply(snap, DeleteInstance(LAUNCHER, "i-1", "evicted"))
    assert kinds(outcomes) == [OutcomeKind.OK]
    (request,) = world.network.requests
    assert (request.method, str(request.url)) == (
        "DELETE",
        "http://10.0.0.3:8001/v2/vllm/instances/i-1",
    )
    assert world.engines.note(LAUNCHER, "i-1") is None
    assert [(r["kind"], r["reason"]) for r in world.trace()] == [("instance_deleted", "evicted")]


def test_deleting_an_unknown_instance_is_done(world: World) -> None:
    world.network.answers[("DELETE", "/v2/vllm/instances/i-1")] = httpx.Response(404, json={})
    snap = snapshot(providers=(launcher(instance(InstanceState.STOPPED)),))
    assert kinds(world.apply(snap, DeleteInstance(LAUNCHER, "i-1", "stopped"))) == [OutcomeKind.OK]


def test_deleting_a_sleeper_from_a_launcher_not_answering_is_transient(world: World) -> None:
    world.network.answers[("DELETE", "/v2/vllm/instances/i-1")] = httpx.ConnectError("refused")
    snap = snapshot(providers=(launcher(instance(InstanceState.SLEEPING)),))
    outcomes = world.apply(snap, DeleteInstance(LAUNCHER, "i-1", "evicted"))
    assert kinds(outcomes) == [OutcomeKind.TRANSIENT]
    assert world.trace() == []


def test_deleting_an_awake_instance_stops_it_holding_its_gpus(world: World) -> None:
    snap = snapshot(providers=(launcher(instance()),))

    async def scenario() -> None:
        gate = asyncio.Event()
        answer = httpx.Response(200, json=instance_json("i-1"))
        world.network.answers[("DELETE", "/v2/vllm/instances/i-1")] = held(gate, answer)
        plan = Plan((DeleteInstance(LAUNCHER, "i-1", "not kept"),))
        outcomes = await world.executor.apply(Decision(NODE, snap, plan))
        assert kinds(outcomes) == [OutcomeKind.OK]
        note = world.engines.note(LAUNCHER, "i-1")
        assert note is not None and note.phase is InstanceState.STOPPING
        gate.set()
        await world.executor.settled()

    world.run(scenario)
    note = world.engines.note(LAUNCHER, "i-1")
    assert note is not None and note.phase is InstanceState.STOPPING  # until no longer listed
    assert [r["kind"] for r in world.trace()] == ["instance_stopping", "instance_deleted"]
    assert world.trace("instance_stopping")[0]["by"] == "controller"


def test_a_stop_the_launcher_did_not_do_returns_to_the_phase_before(world: World) -> None:
    world.network.answers[("DELETE", "/v2/vllm/instances/i-1")] = httpx.Response(503, json={})
    snap = snapshot(providers=(launcher(instance()),))
    world.apply(snap, DeleteInstance(LAUNCHER, "i-1", "not kept"))
    note = world.engines.note(LAUNCHER, "i-1")
    assert note is not None and note.phase is InstanceState.AWAKE


def test_deleting_an_instance_already_stopping_does_nothing(world: World) -> None:
    snap = snapshot(providers=(launcher(instance(InstanceState.STOPPING)),))
    assert kinds(world.apply(snap, DeleteInstance(LAUNCHER, "i-1", "x"))) == [OutcomeKind.OK]
    assert world.network.requests == []


def test_close_cancels_what_is_in_flight(world: World) -> None:
    snap = snapshot(providers=(launcher(instance(InstanceState.SLEEPING), bound=True),))

    async def scenario() -> None:
        world.network.answers[("POST", "/wake_up")] = held(asyncio.Event(), httpx.Response(200))
        await world.executor.apply(Decision(NODE, snap, Plan((WakeInstance(LAUNCHER, "i-1"),))))
        await asyncio.sleep(0.01)
        await asyncio.wait_for(world.executor.close(), 1.0)
        await world.executor.settled()

    world.run(scenario)
    note = world.engines.note(LAUNCHER, "i-1")
    assert note is not None and note.phase is InstanceState.WAKING


# --- deletions -------------------------------------------------------------------------------


def test_delete_provider_carries_a_uid_precondition(world: World) -> None:
    world.add_pod(bound_launcher_pod())
    snap = snapshot(
        providers=(launcher(instance(), instance(InstanceState.SLEEPING, instance_id="i-2")),)
    )
    outcomes = world.apply(snap, DeleteProvider(LAUNCHER, "stale launcher template"))
    assert kinds(outcomes) == [OutcomeKind.OK]
    (call,) = world.api.calls_of("delete_namespaced_pod")
    options = call.kwargs["body"]
    assert (options.preconditions.uid, options.preconditions.resource_version) == (
        LAUNCHER_UID,
        None,
    )
    stored = world.store.get(Kind.POD, LAUNCHER)
    assert stored is not None and stored["metadata"]["deletionTimestamp"]  # held by its finalizer
    assert [(r["kind"], r.get("instance")) for r in world.trace()] == [
        ("provider_deleting", None),
        ("instance_stopping", "i-1"),
        ("instance_deleted", "i-2"),
    ]
    assert world.trace("provider_deleting")[0]["by"] == "controller"


def test_deleting_a_provider_already_gone_is_done(world: World) -> None:
    world.add_pod(launcher_pod())
    del world.api.pods[LAUNCHER]
    outcomes = world.apply(snapshot(providers=(launcher(),)), DeleteProvider(LAUNCHER, "x"))
    assert kinds(outcomes) == [OutcomeKind.OK]


def test_a_deleted_pod_leaves_the_store(world: World) -> None:
    world.add_pod(launcher_pod())
    world.apply(snapshot(providers=(launcher(),)), DeleteProvider(LAUNCHER, "surplus launcher"))
    assert world.store.get(Kind.POD, LAUNCHER) is None


def test_delete_requester_carries_uid_and_resource_version(world: World) -> None:
    world.add_pod(requester_pod())
    outcomes = world.apply(
        snapshot(requesters=(requester(),)), DeleteRequester(REQ_UID, "node is cordoned")
    )
    assert kinds(outcomes) == [OutcomeKind.OK]
    (call,) = world.api.calls_of("delete_namespaced_pod")
    options = call.kwargs["body"]
    assert (options.preconditions.uid, options.preconditions.resource_version) == (REQ_UID, "10")
    assert options.propagation_policy == "Background"
    assert world.trace("requester_deleting")[0] | {"t": 0} == {
        "t": 0,
        "kind": "requester_deleting",
        "requester": REQ_UID,
        "reason": "node is cordoned",
        "by": "controller",
    }


def test_deleting_a_changed_requester_is_a_conflict(world: World) -> None:
    world.add_pod(requester_pod())
    world.api.pods[REQ_NAME]["metadata"]["resourceVersion"] = "11"
    outcomes = world.apply(snapshot(requesters=(requester(),)), DeleteRequester(REQ_UID, "x"))
    assert kinds(outcomes) == [OutcomeKind.CONFLICT]
    assert REQ_NAME in world.api.pods


# --- readiness, the proxy and the actuation ----------------------------------------------------


def bound_snapshot(**requester_changes: Any) -> NodeSnapshot:
    return snapshot(
        requesters=(requester(**requester_changes),),
        providers=(launcher(instance(), bound=True),),
    )


def test_relay_posts_to_the_requester_and_remembers_it(world: World) -> None:
    world.add_pod(requester_pod())
    outcomes = world.apply(bound_snapshot(actuated=True), RelayReadiness(REQ_UID, True))
    assert kinds(outcomes) == [OutcomeKind.OK]
    assert [str(r.url) for r in world.network.requests] == ["http://10.0.0.2:8081/v1/become-ready"]
    run = container_run(requester_pod(), "inference-server")
    assert world.relays.relayed(REQ_UID, run) is True
    assert [r["kind"] for r in world.trace()] == ["ready"]
    assert world.api.calls == []  # no proxy asked for, actuation already recorded


def test_an_unready_relay(world: World) -> None:
    world.add_pod(requester_pod())
    world.apply(bound_snapshot(ready=True), RelayReadiness(REQ_UID, False))
    assert [r.url.path for r in world.network.requests] == ["/v1/become-unready"]
    assert (
        world.relays.relayed(REQ_UID, container_run(requester_pod(), "inference-server")) is False
    )
    assert [r["kind"] for r in world.trace()] == ["unready"]


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (httpx.ConnectError("refused"), OutcomeKind.TRANSIENT),
        (httpx.Response(500), OutcomeKind.TRANSIENT),
    ],
)
def test_a_relay_that_fails_is_not_remembered(world: World, answer: Any, kind: OutcomeKind) -> None:
    world.add_pod(requester_pod())
    world.network.answers[("POST", "/v1/become-ready")] = answer
    assert kinds(world.apply(bound_snapshot(actuated=True), RelayReadiness(REQ_UID, True))) == [
        kind
    ]
    assert world.relays.relayed(REQ_UID, container_run(requester_pod(), "inference-server")) is None


def test_the_proxy_is_configured_before_the_first_relay_and_once(world: World) -> None:
    world.add_pod(requester_pod(**{ANN_PROXY_PORT: "8082"}))
    snap = bound_snapshot(actuated=True)
    assert kinds(world.apply(snap, RelayReadiness(REQ_UID, True))) == [OutcomeKind.OK]
    assert kinds(world.apply(snap, RelayReadiness(REQ_UID, False))) == [OutcomeKind.OK]
    assert kinds(world.apply(snap, RelayReadiness(REQ_UID, True))) == [OutcomeKind.OK]
    assert [(r.method, r.url.path) for r in world.network.requests] == [
        ("PUT", "/v1/proxy/config"),
        ("POST", "/v1/become-ready"),
        ("POST", "/v1/become-unready"),
        ("POST", "/v1/become-ready"),
    ]
    assert json.loads(world.network.requests[0].content) == {"address": LAUNCHER_IP, "port": 8005}


def test_a_restarted_requester_gets_its_proxy_configured_again(world: World) -> None:
    world.add_pod(requester_pod(**{ANN_PROXY_PORT: "8082"}))
    snap = bound_snapshot(actuated=True)
    world.apply(snap, RelayReadiness(REQ_UID, True))
    restarted = requester_pod(**{ANN_PROXY_PORT: "8082"})
    restarted["metadata"]["resourceVersion"] = "30"
    restarted["status"]["containerStatuses"] = [container_status("2027-01-15T08:01:00Z", 1)]
    world.store.put(Kind.POD, restarted)
    world.apply(snap, RelayReadiness(REQ_UID, True))
    assert len(world.network.sent("PUT", "/v1/proxy/config")) == 2


def test_every_proxy_is_configured_with_proxy_all(world: World) -> None:
    world.add_pod(requester_pod())
    world.executor.proxy_all = True
    world.apply(bound_snapshot(actuated=True), RelayReadiness(REQ_UID, True))
    assert len(world.network.sent("PUT", "/v1/proxy/config")) == 1


def test_a_proxy_serving_another_target_is_invalid_and_readiness_is_not_relayed(
    world: World,
) -> None:
    world.add_pod(requester_pod(**{ANN_PROXY_PORT: "8082"}))
    world.network.answers[("PUT", "/v1/proxy/config")] = httpx.Response(
        409, json={"detail": "the proxy forwards to 10.0.0.7:8000"}
    )
    outcomes = world.apply(bound_snapshot(actuated=True), RelayReadiness(REQ_UID, True))
    assert kinds(outcomes) == [OutcomeKind.INVALID]
    assert "another target" in (outcomes[0].error or "")
    assert world.network.sent("POST", "/v1/become-ready") == []


def test_the_first_ready_relay_records_the_actuation(world: World) -> None:
    world.add_pod(requester_pod())
    outcomes = world.apply(bound_snapshot(), RelayReadiness(REQ_UID, True, ActuationPath.HOT))
    assert kinds(outcomes) == [OutcomeKind.OK]
    assert patch_body(world) == {
        "metadata": {
            "uid": REQ_UID,
            "resourceVersion": "10",
            "annotations": {ANN_ACTUATED: f"hot {T0_TEXT}"},
        }
    }
    assert [r["kind"] for r in world.trace()] == ["ready", "actuation", "k8s_event"]
    assert world.trace("actuation")[0] | {"t": 0} == {
        "t": 0,
        "kind": "actuation",
        "requester": REQ_UID,
        "path": "hot",
        "latency_s": 10.0,
        "model": SPEC.model,
        "isc": "isc-a",
    }
    (event,) = world.api.events
    assert (event["reason"], event["type"]) == ("Actuated", "Normal")
    assert event["involvedObject"]["uid"] == REQ_UID
    assert event["message"] == "ready 10.00 s after its container started (hot)"


def test_a_later_ready_relay_tells_no_actuation(world: World) -> None:
    world.add_pod(requester_pod())
    world.apply(bound_snapshot(actuated=True), RelayReadiness(REQ_UID, True))
    assert world.api.events == []


def test_an_actuation_whose_relay_failed_is_traced_at_the_next_relay(world: World) -> None:
    world.add_pod(requester_pod())
    world.network.answers[("POST", "/v1/become-ready")] = httpx.ConnectError("refused")
    first = world.apply(bound_snapshot(), RelayReadiness(REQ_UID, True, ActuationPath.WARM))
    assert kinds(first) == [OutcomeKind.TRANSIENT]
    assert world.pod(REQ_NAME)["metadata"]["annotations"][ANN_ACTUATED].startswith("warm ")
    assert world.trace("actuation") == []
    del world.network.answers[("POST", "/v1/become-ready")]
    world.clock.now_s = T0 + 5
    rv = world.pod(REQ_NAME)["metadata"]["resourceVersion"]
    again = world.apply(
        bound_snapshot(actuated=True, resource_version=rv), RelayReadiness(REQ_UID, True)
    )
    assert kinds(again) == [OutcomeKind.OK]
    assert [(r["path"], r["latency_s"]) for r in world.trace("actuation")] == [("warm", 15.0)]


def test_requester_meta_then_actuation_in_one_plan(world: World) -> None:
    world.add_pod(requester_pod())
    outcomes = world.apply(
        bound_snapshot(),
        UpdateRequesterMeta(REQ_UID, True, LAUNCHER, "i-1"),
        RelayReadiness(REQ_UID, True, ActuationPath.WARM),
    )
    assert kinds(outcomes) == [OutcomeKind.OK, OutcomeKind.OK]
    meta = world.pod(REQ_NAME)["metadata"]
    assert meta["finalizers"] == [FINALIZER_REQUESTER]
    assert meta["annotations"][ANN_ACTUATED] == f"warm {T0_TEXT}"


def test_relay_to_a_requester_without_an_ip_is_transient(world: World) -> None:
    world.add_pod(requester_pod())
    outcomes = world.apply(bound_snapshot(ip=None), RelayReadiness(REQ_UID, False))
    assert kinds(outcomes) == [OutcomeKind.TRANSIENT]


# --- requester metadata and status -----------------------------------------------------------


def test_update_requester_meta_writes_finalizer_and_labels(world: World) -> None:
    world.add_pod(requester_pod())
    outcomes = world.apply(
        snapshot(requesters=(requester(),)), UpdateRequesterMeta(REQ_UID, True, LAUNCHER, "i-1")
    )
    assert kinds(outcomes) == [OutcomeKind.OK]
    assert patch_body(world) == {
        "metadata": {
            "uid": REQ_UID,
            "resourceVersion": "10",
            "labels": {LABEL_DUAL: LAUNCHER, LABEL_INSTANCE: "i-1"},
            "finalizers": [FINALIZER_REQUESTER],
        }
    }
    assert world.trace("finalizer")[0]["present"] is True


def kubelet_wrote_status(world: World) -> None:
    """The kubelet's write since the snapshot: the requester's status alone, a new version."""
    pod = world.pod(REQ_NAME)
    pod["status"] = {**pod.get("status", {}), "conditions": [{"type": "Ready", "status": "False"}]}
    world.api._bump(pod)


def test_update_requester_meta_goes_over_a_status_only_change(world: World) -> None:
    """FMA's metadata does not depend on the status: a conflict caused only by the kubelet's
    status write is retried at once at the current version, not left to a new pass."""
    world.add_pod(requester_pod())
    kubelet_wrote_status(world)
    outcomes = world.apply(
        snapshot(requesters=(requester(),)), UpdateRequesterMeta(REQ_UID, True, LAUNCHER, "i-1")
    )
    assert kinds(outcomes) == [OutcomeKind.OK]
    expected = [
        c.args[2]["metadata"]["resourceVersion"] for c in world.api.calls_of("patch_namespaced_pod")
    ]
    assert expected[0] == "10" and expected[1] != "10" and len(expected) == 2
    assert world.pod(REQ_NAME)["metadata"]["finalizers"] == [FINALIZER_REQUESTER]


def test_update_requester_meta_goes_over_the_gpu_fetchers_annotation(world: World) -> None:
    """The operator's GPU fetcher re-queues the node with the GPUs it learnt, then annotates
    the requester with them: a decision made meanwhile already knew them."""
    world.add_pod(requester_pod())
    kubelet_wrote_status(world)
    world.pod(REQ_NAME)["metadata"].setdefault("annotations", {})[ANN_ACCELERATORS] = "GPU-0"
    outcomes = world.apply(
        snapshot(requesters=(requester(),)), UpdateRequesterMeta(REQ_UID, True, LAUNCHER, "i-1")
    )
    assert kinds(outcomes) == [OutcomeKind.OK]
    assert world.pod(REQ_NAME)["metadata"]["annotations"][ANN_ACCELERATORS] == "GPU-0"


def test_update_requester_meta_conflicts_when_more_than_the_status_changed(world: World) -> None:
    world.add_pod(requester_pod())
    kubelet_wrote_status(world)
    world.pod(REQ_NAME)["metadata"]["labels"]["team"] = "other"  # someone else's edit too
    outcomes = world.apply(
        snapshot(requesters=(requester(),)), UpdateRequesterMeta(REQ_UID, True, LAUNCHER, "i-1")
    )
    assert kinds(outcomes) == [OutcomeKind.CONFLICT]
    assert len(world.api.calls_of("patch_namespaced_pod")) == 1
    assert "finalizers" not in world.pod(REQ_NAME)["metadata"]


def test_other_pod_writes_conflict_on_a_status_only_change(world: World) -> None:
    """Only FMA's requester metadata goes over a status change: the status annotation (and
    every provider write) is decided on what the Pod showed, status included."""
    world.add_pod(requester_pod())
    kubelet_wrote_status(world)
    outcomes = world.apply(snapshot(requesters=(requester(),)), SetRequesterStatus(REQ_UID, ("x",)))
    assert kinds(outcomes) == [OutcomeKind.CONFLICT]
    assert world.api.calls_of("read_namespaced_pod") == []


def test_update_requester_meta_removes_what_is_none(world: World) -> None:
    pod = requester_pod()
    pod["metadata"]["labels"] |= {LABEL_DUAL: LAUNCHER, LABEL_INSTANCE: "i-1"}
    pod["metadata"]["finalizers"] = [FINALIZER_REQUESTER, "other/keep"]
    world.add_pod(pod)
    snap = snapshot(requesters=(requester(finalizer=True),))
    world.apply(snap, UpdateRequesterMeta(REQ_UID, False))
    meta = world.pod(REQ_NAME)["metadata"]
    assert meta["finalizers"] == ["other/keep"]
    assert LABEL_DUAL not in meta["labels"] and LABEL_INSTANCE not in meta["labels"]
    assert world.trace("finalizer")[0]["present"] is False


def test_a_gone_requester_is_not_found(world: World) -> None:
    outcomes = world.apply(snapshot(), UpdateRequesterMeta(REQ_UID, False))
    assert kinds(outcomes) == [OutcomeKind.NOT_FOUND]


def test_set_requester_status_writes_upstreams_json(world: World) -> None:
    world.add_pod(requester_pod())
    snap = snapshot(requesters=(requester(),))
    world.apply(snap, SetRequesterStatus(REQ_UID, ("GPU map ConfigMap gpu-map is not available",)))
    status = world.pod(REQ_NAME)["metadata"]["annotations"][ANN_STATUS]
    assert json.loads(status) == {"Errors": ["GPU map ConfigMap gpu-map is not available"]}
    assert world.trace("status")[0]["errors"] == ["GPU map ConfigMap gpu-map is not available"]


# --- configuration status --------------------------------------------------------------------


def test_set_config_status_patches_the_status_subresource(world: World) -> None:
    world.api.objects[("launcherconfigs", "lc")] = copy.deepcopy(LAUNCHER_CONFIG)
    world.store.put(Kind.LAUNCHER_CONFIG, LAUNCHER_CONFIG)
    action = SetConfigStatus(ConfigKind.LAUNCHER_CONFIG, "lc", ("bad template",))
    outcomes = world.apply(ConfigSnapshot(), action)
    assert kinds(outcomes) == [OutcomeKind.OK]
    (call,) = world.api.calls_of("patch_namespaced_custom_object_status")
    assert call.args == (
        "fma.llm-d.ai",
        "v1alpha1",
        NS,
        "launcherconfigs",
        "lc",
        {
            "status": {"errors": ["bad template"], "observedGeneration": 2},
            "metadata": {"resourceVersion": "5"},
        },
    )
    stored = world.store.get(Kind.LAUNCHER_CONFIG, "lc")
    assert stored is not None and stored["status"]["errors"] == ["bad template"]
    assert world.trace("config_status")[0]["config"] == "LauncherConfig/lc"


def test_set_config_status_of_a_gone_object_is_not_found(world: World) -> None:
    action = SetConfigStatus(ConfigKind.ISC, "isc-a", ())
    assert kinds(world.apply(ConfigSnapshot(), action)) == [OutcomeKind.NOT_FOUND]


# --- Events ------------------------------------------------------------------------------------


def test_emit_event_on_a_requester(world: World) -> None:
    world.add_pod(requester_pod())
    action = EmitEvent(SubjectKind.REQUESTER, REQ_UID, "Bound", "bound to x (warm)")
    assert kinds(world.apply(snapshot(requesters=(requester(),)), action)) == [OutcomeKind.OK]
    (event,) = world.api.events
    assert event["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": REQ_NAME,
        "namespace": NS,
        "uid": REQ_UID,
        "resourceVersion": "10",
    }
    assert (event["reason"], event["message"], event["type"]) == (
        "Bound",
        "bound to x (warm)",
        "Normal",
    )
    assert event["reportingComponent"] == "fma-controller"
    assert event["source"] == {"component": "fma-controller"}
    assert event["count"] == 1
    assert world.trace("k8s_event")[0] | {"t": 0} == {
        "t": 0,
        "kind": "k8s_event",
        "subject": "requester",
        "key": REQ_UID,
        "reason": "Bound",
        "message": "bound to x (warm)",
        "warning": False,
    }


def test_emit_event_on_a_provider_and_a_config(world: World) -> None:
    world.add_pod(launcher_pod())
    world.store.put(Kind.LAUNCHER_CONFIG, LAUNCHER_CONFIG)
    outcomes = world.apply(
        snapshot(),
        EmitEvent(SubjectKind.PROVIDER, LAUNCHER, "LauncherStuck", "stuck", warning=True),
        EmitEvent(SubjectKind.CONFIG, "LauncherConfig/lc", "ConfigurationProblem", "bad"),
    )
    assert kinds(outcomes) == [OutcomeKind.OK, OutcomeKind.OK]
    provider_event, config_event = world.api.events
    assert (provider_event["involvedObject"]["uid"], provider_event["type"]) == (
        LAUNCHER_UID,
        "Warning",
    )
    assert config_event["involvedObject"]["kind"] == "LauncherConfig"
    assert config_event["involvedObject"]["apiVersion"] == "fma.llm-d.ai/v1alpha1"
    assert provider_event["metadata"]["name"] != config_event["metadata"]["name"]


# --- classification of API failures ------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (api_error(404), OutcomeKind.NOT_FOUND),
        (api_error(409), OutcomeKind.CONFLICT),
        (api_error(400), OutcomeKind.INVALID),
        (api_error(422), OutcomeKind.INVALID),
        (api_error(403), OutcomeKind.INVALID),
        (api_error(429), OutcomeKind.TRANSIENT),
        (api_error(500), OutcomeKind.TRANSIENT),
        (api_error(503), OutcomeKind.TRANSIENT),
        (
            urllib3.exceptions.MaxRetryError(
                None,
                "/api",
                urllib3.exceptions.NewConnectionError(None, "refused"),  # type: ignore[arg-type]
            ),
            OutcomeKind.TRANSIENT,
        ),
        (urllib3.exceptions.ConnectTimeoutError("connect"), OutcomeKind.TRANSIENT),
        (urllib3.exceptions.ReadTimeoutError(None, "/api", "read"), OutcomeKind.UNKNOWN),  # type: ignore[arg-type]
        (urllib3.exceptions.ProtocolError("reset"), OutcomeKind.UNKNOWN),
        (ConnectionRefusedError("refused"), OutcomeKind.TRANSIENT),
    ],
)
def test_api_failures_are_classified(world: World, error: BaseException, kind: OutcomeKind) -> None:
    assert api_error_kind(error) is kind
    world.add_pod(requester_pod())
    world.api.fail["patch_namespaced_pod"] = error
    outcomes = world.apply(snapshot(requesters=(requester(),)), SetRequesterStatus(REQ_UID, ()))
    assert kinds(outcomes) == [kind]
