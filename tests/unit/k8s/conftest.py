"""Kubernetes objects written by hand, as the API server returns them, for the operator's
views and gather tests. Each builder takes the few fields a test cares about."""

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from fma.launcher.api import InstanceState as ReportedInstance
from fma.launcher.api import InstanceStatus

Obj = dict[str, Any]

NS = "team-a"
NODE = "node-a"
OTHER_NODE = "node-b"
GIB = 1024**3
MIB = 1024**2
GPU_MIB = 81559
"""An H100's memory as GPU feature discovery labels it."""
DEFAULT_GPU_BYTES = 16 * GIB
GPU_0 = "GPU-3f0d1c5e-0000"
GPU_1 = "GPU-3f0d1c5e-0001"
GPU_2 = "GPU-3f0d1c5e-0002"
GPU_OTHER = "GPU-9a9a9a9a-0000"

T0 = datetime(2026, 3, 4, 5, 0, 0, tzinfo=UTC)


def at(offset_s: float) -> str:
    """An RFC 3339 time ``offset_s`` after :data:`T0`, as Kubernetes writes it."""
    moment = T0 + timedelta(seconds=offset_s)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(offset_s: float) -> float:
    return (T0 + timedelta(seconds=offset_s)).timestamp()


SERVER_PATCH = """\
metadata:
  labels:
    app: null
    model: opt-125m
spec:
  containers:
  - name: inference-server
    image: vllm/vllm-openai:v0.10.1
    command: ["vllm", "serve", "--model", "facebook/opt-125m", "--port", "8005",
              "--gpu-memory-utilization", "0.8"]
    readinessProbe:
      httpGet:
        path: /health
        port: 8005
"""


# --- Pods ----------------------------------------------------------------------------------------


def container_status(
    name: str = "inference-server",
    *,
    started: str | None = None,
    ready: bool = False,
    restarts: int = 0,
    waiting: str | None = None,
    terminated: bool = False,
    ran_before: bool = False,
) -> Obj:
    """A containerStatuses entry: running since ``started``, else waiting (``waiting`` the
    reason) or terminated."""
    if started is not None:
        state: Obj = {"running": {"startedAt": started}}
    elif terminated:
        state = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": at(50)}}
    else:
        state = {"waiting": {"reason": waiting or "ContainerCreating"}}
    status: Obj = {
        "name": name,
        "image": "vllm/vllm-openai:v0.10.1",
        "imageID": "",
        "ready": ready,
        "restartCount": restarts,
        "started": started is not None,
        "state": state,
        "lastState": {},
    }
    if ran_before:
        status["lastState"] = {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
    return status


def _pod(
    name: str,
    uid: str,
    *,
    rv: str,
    annotations: Obj,
    labels: Obj,
    spec: Obj,
    statuses: list[Obj] | None,
    ready: bool | None,
    ready_since: str,
    ip: str | None,
    finalizers: list[str] | None = None,
    deleting: bool = False,
) -> Obj:
    metadata: Obj = {
        "name": name,
        "namespace": NS,
        "uid": uid,
        "resourceVersion": rv,
        "creationTimestamp": at(0),
        "labels": labels,
        "annotations": annotations,
    }
    if finalizers:
        metadata["finalizers"] = finalizers
    if deleting:
        metadata["deletionTimestamp"] = at(500)
        metadata["deletionGracePeriodSeconds"] = 30
    status: Obj = {"phase": "Running" if statuses else "Pending", "qosClass": "Burstable"}
    if ready is not None:
        status["conditions"] = [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": at(0)},
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "lastTransitionTime": ready_since,
            },
        ]
    if ip is not None:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    if statuses is not None:
        status["containerStatuses"] = statuses
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": status}


def requester_pod(
    name: str = "my-req-abcde",
    uid: str = "req-uid-1",
    *,
    rv: str = "100",
    node: str | None = NODE,
    pinned: str | None = None,
    annotations: Obj | None = None,
    patch: str | None = SERVER_PATCH,
    isc: str | None = None,
    labels: Obj | None = None,
    statuses: list[Obj] | None = None,
    finalizers: list[str] | None = None,
    ip: str | None = "10.0.0.5",
    deleting: bool = False,
) -> Obj:
    """A requester of the direct path (``patch``) or the launcher path (``isc``); scheduled on
    ``node`` (None: not yet), pinned to ``pinned`` by a nodeSelector."""
    marks: Obj = {"dual-pods.llm-d.ai/admin-port": "8081"}
    if isc is not None:
        marks["dual-pods.llm-d.ai/inference-server-config"] = isc
    elif patch is not None:
        marks["dual-pods.llm-d.ai/server-patch"] = patch
    spec: Obj = {
        "serviceAccountName": "default",
        "restartPolicy": "Always",
        "containers": [
            {
                "name": "inference-server",
                "image": "ghcr.io/llm-d-fma/fma:1",
                "command": ["fma", "requester", "serve"],
                "resources": {
                    "limits": {"nvidia.com/gpu": "2"},
                    "requests": {"nvidia.com/gpu": "2"},
                },
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
            }
        ],
    }
    if node is not None:
        spec["nodeName"] = node
    if pinned is not None:
        spec["nodeSelector"] = {"kubernetes.io/hostname": pinned}
    if statuses is None and node is not None:
        statuses = [container_status(started=at(10))]
    return _pod(
        name,
        uid,
        rv=rv,
        annotations={**marks, **(annotations or {})},
        labels={"app": "dp-app", "pod-template-hash": "5d8f"} if labels is None else labels,
        spec=spec,
        statuses=statuses,
        ready=False if node is not None else None,
        ready_since=at(10),
        ip=ip if node is not None else None,
        finalizers=finalizers,
        deleting=deleting,
    )


LAUNCHER_CONTAINER: Obj = {
    "name": "inference-server",
    "image": "ghcr.io/llm-d-fma/fma:1",
    "args": ["launcher", "serve"],
    "ports": [{"name": "launcher", "containerPort": 8001}],
    "readinessProbe": {"httpGet": {"path": "/v2/vllm/instances", "port": 8001}},
}


def launcher_pod(
    name: str = "launcher-lc-small-x7k2p",
    uid: str = "launcher-uid-1",
    *,
    rv: str = "200",
    node: str = NODE,
    lc: str = "lc-small",
    annotations: Obj | None = None,
    labels: Obj | None = None,
    ready: bool = True,
    ready_since: str | None = None,
    restarts: int = 0,
    sidecar_restarts: int | None = None,
    ip: str | None = "10.0.1.7",
    deleting: bool = False,
    scheduled: bool = True,
) -> Obj:
    """A launcher Pod pinned to ``node`` by a nodeSelector (and scheduled there)."""
    spec: Obj = {
        "nodeSelector": {"kubernetes.io/hostname": node},
        "containers": [copy.deepcopy(LAUNCHER_CONTAINER)],
    }
    if scheduled:
        spec["nodeName"] = node
    statuses = [container_status(started=at(20), ready=ready, restarts=restarts)]
    if sidecar_restarts is not None:
        spec["containers"].append({"name": "log-shipper", "image": "busybox"})
        statuses.append(container_status("log-shipper", started=at(5), restarts=sidecar_restarts))
    return _pod(
        name,
        uid,
        rv=rv,
        annotations={
            "dual-pods.llm-d.ai/launcher-populator-template-hash": "tmpl-hash-1",
            "dual-pods.llm-d.ai/launcher-config-hash": "cfg-hash-1",
            **(annotations or {}),
        },
        labels={
            "app.kubernetes.io/component": "launcher",
            "dual-pods.llm-d.ai/launcher-config-name": lc,
            "dual-pods.llm-d.ai/node-name": node,
            "dual-pods.llm-d.ai/sleeping": "true",
            **(labels or {}),
        },
        spec=spec,
        statuses=statuses,
        ready=ready,
        ready_since=ready_since or at(30),
        ip=ip,
        finalizers=["dual-pods.llm-d.ai/provider"] if annotations else None,
        deleting=deleting,
    )


DIRECT_CONTAINER: Obj = {
    "name": "inference-server",
    "image": "vllm/vllm-openai:v0.10.1",
    "command": [
        "vllm",
        "serve",
        "--model",
        "facebook/opt-125m",
        "--port",
        "8005",
        "--gpu-memory-utilization",
        "0.8",
    ],
    "env": [
        {"name": "CUDA_VISIBLE_DEVICES", "value": "0,1"},
        {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
    ],
    "resources": {"limits": {"nvidia.com/gpu": "0"}, "requests": {"nvidia.com/gpu": "0"}},
    "readinessProbe": {"httpGet": {"path": "/health", "port": 8005}},
}


def direct_pod(
    name: str = "my-req-abcde-dual-q7r4t",
    uid: str = "direct-uid-1",
    *,
    rv: str = "300",
    node: str = NODE,
    annotations: Obj | None = None,
    status: Obj | None = None,
    ready: bool = True,
    ip: str | None = "10.0.2.9",
) -> Obj:
    """A direct provider bound to requester ``req-uid-1``, its engine running and ready."""
    spec: Obj = {
        "nodeName": node,
        "nodeSelector": {"kubernetes.io/hostname": node},
        "containers": [copy.deepcopy(DIRECT_CONTAINER)],
    }
    if status is None:
        status = container_status(started=at(40), ready=ready)
    return _pod(
        name,
        uid,
        rv=rv,
        annotations={
            "dual-pods.llm-d.ai/requester": "req-uid-1 my-req-abcde",
            "dual-pods.llm-d.ai/nominal": "bm9taW5hbC1oYXNo",
            "dual-pods.llm-d.ai/accelerators": f"{GPU_0},{GPU_1}",
            "dual-pods.llm-d.ai/instance-id": "Idirect-1i",
            "dual-pods.llm-d.ai/actuation-path": "cold",
            "dual-pods.llm-d.ai/bound-at": at(35),
            **(annotations or {}),
        },
        labels={
            "model": "opt-125m",
            "dual-pods.llm-d.ai/dual": "my-req-abcde",
            "dual-pods.llm-d.ai/sleeping": "false",
        },
        spec=spec,
        statuses=[status],
        ready=ready,
        ready_since=at(45),
        ip=ip,
        finalizers=["dual-pods.llm-d.ai/provider"],
    )


def plain_pod(name: str = "coredns-5d78c9869d-abcde", node: str = NODE) -> Obj:
    return _pod(
        name,
        f"uid-{name}",
        rv="50",
        annotations={"kubectl.kubernetes.io/restartedAt": at(0)},
        labels={"k8s-app": "kube-dns"},
        spec={"nodeName": node, "containers": [{"name": "coredns", "image": "coredns:1.11"}]},
        statuses=[container_status("coredns", started=at(1), ready=True)],
        ready=True,
        ready_since=at(2),
        ip="10.0.9.9",
    )


# --- Nodes and the gpu-map -------------------------------------------------------------------


def node_obj(
    name: str = NODE,
    *,
    rv: str = "7",
    gpu_mib: str | None = str(GPU_MIB),
    unschedulable: bool = False,
    ready: bool = True,
    memory: str = "1056291840Ki",
    labels: Obj | None = None,
) -> Obj:
    node_labels: Obj = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
        **(labels or {}),
    }
    if gpu_mib is not None:
        node_labels["nvidia.com/gpu.memory"] = gpu_mib
    spec: Obj = {"podCIDR": "10.0.0.0/24"}
    if unschedulable:
        spec["unschedulable"] = True
        spec["taints"] = [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "resourceVersion": rv,
            "creationTimestamp": at(-86400),
            "labels": node_labels,
        },
        "spec": spec,
        "status": {
            "capacity": {
                "cpu": "96",
                "memory": "1056394240Ki",
                "nvidia.com/gpu": "8",
                "pods": "110",
            },
            "allocatable": {
                "cpu": "95500m",
                "memory": memory,
                "nvidia.com/gpu": "8",
                "pods": "110",
                "ephemeral-storage": "1.5T",
            },
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "lastTransitionTime": at(-86400)},
                {
                    "type": "Ready",
                    "status": "True" if ready else "Unknown",
                    "lastTransitionTime": at(-86000),
                    "reason": "KubeletReady" if ready else "NodeStatusUnknown",
                },
            ],
        },
    }


def gpu_map_obj(entries: dict[str, Any], *, rv: str = "9") -> Obj:
    """The gpu-map ConfigMap; an entry that is not a string is JSON-encoded."""
    data = {k: v if isinstance(v, str) else json.dumps(v) for k, v in entries.items()}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "gpu-map",
            "namespace": NS,
            "uid": "uid-gpu-map",
            "resourceVersion": rv,
        },
        "data": data,
    }


GPU_MAP = {NODE: {GPU_1: 1, GPU_0: 0, GPU_2: 2}, OTHER_NODE: {GPU_OTHER: 0}}


# --- configuration objects -------------------------------------------------------------------


def isc_obj(
    name: str = "opt",
    *,
    rv: str = "400",
    options: str | None = "--model facebook/opt-125m --enable-sleep-mode",
    port: int | str = 8005,
    lc: str = "lc-small",
    errors: list[str] | None = None,
    **config: Any,
) -> Obj:
    obj: Obj = {
        "apiVersion": "fma.llm-d.ai/v1alpha1",
        "kind": "InferenceServerConfig",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "resourceVersion": rv,
            "generation": 1,
            "creationTimestamp": at(-3600),
        },
        "spec": {
            "launcherConfigName": lc,
            "modelServerConfig": {"port": port, "options": options, **config},
        },
    }
    if errors is not None:
        obj["status"] = {"observedGeneration": 1, "errors": errors}
    return obj


def lc_obj(
    name: str = "lc-small",
    *,
    rv: str = "500",
    max_instances: Any = 2,
    template_spec: Obj | None = None,
    errors: list[str] | None = None,
) -> Obj:
    obj: Obj = {
        "apiVersion": "fma.llm-d.ai/v1alpha1",
        "kind": "LauncherConfig",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "resourceVersion": rv,
            "generation": 1,
        },
        "spec": {
            "maxInstances": max_instances,
            "podTemplate": {
                "metadata": {"labels": {"team": "a"}},
                "spec": template_spec
                if template_spec is not None
                else {"containers": [copy.deepcopy(LAUNCHER_CONTAINER)]},
            },
        },
    }
    if errors is not None:
        obj["status"] = {"observedGeneration": 1, "errors": errors}
    return obj


def lpp_obj(
    name: str = "h100-pool",
    *,
    rv: str = "600",
    match_labels: Obj | None = None,
    expressions: list[Obj] | None = None,
    allocatable: Obj | None = None,
    counts: dict[str, int] | None = None,
) -> Obj:
    selector: Obj = {"labelSelector": {"matchLabels": match_labels or {}}}
    if expressions is not None:
        selector["labelSelector"]["matchExpressions"] = expressions
    if allocatable is not None:
        selector["allocatableResources"] = allocatable
    return {
        "apiVersion": "fma.llm-d.ai/v1alpha1",
        "kind": "LauncherPopulationPolicy",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "resourceVersion": rv},
        "spec": {
            "enhancedNodeSelector": selector,
            "countForLauncher": [
                {"launcherConfigName": lc, "launcherCount": n}
                for lc, n in (counts or {"lc-small": 2}).items()
            ],
        },
    }


# --- what launchers report ---------------------------------------------------------------------


def reported(
    instance_id: str,
    *,
    status: InstanceStatus = InstanceStatus.RUNNING,
    options: list[str] | None = None,
    gpus: tuple[str, ...] = (GPU_0,),
    isc: str | None = "opt",
    port: int = 8005,
    env: dict[str, str] | None = None,
) -> ReportedInstance:
    """An instance as a launcher lists it, made from a VllmConfig FMA sent."""
    annotations = {"inference-port": str(port)}
    if isc is not None:
        annotations["isc-name"] = isc
    return ReportedInstance(
        instance_id=instance_id,
        status=status,
        revision=3,
        options=[
            *(options or ["--model", "facebook/opt-125m", "--enable-sleep-mode"]),
            "--port",
            str(port),
        ],
        gpu_uuids=list(gpus),
        env_vars={**(env or {}), "CUDA_VISIBLE_DEVICES": "0"},
        annotations=annotations,
        pid=4242,
        exit_code=1 if status is InstanceStatus.STOPPED else None,
    )
