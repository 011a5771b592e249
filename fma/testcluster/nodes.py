"""Manifests of the fake GPU nodes and the ``gpu-map`` ConfigMap (pure, no I/O).

Node ``i`` is named ``gpu-node-<i>``, carries ``nvidia.com/gpu.present=true`` and
``gpus`` allocatable ``nvidia.com/gpu``; its GPU ``j`` has the UUID ``GPU-<node>-<j>``
(readable on purpose: a test failure then names the node and index it is about). The
``gpu-map`` ConfigMap maps every node name to the JSON object ``{uuid: index}``, the format the
dual-pods controller reads. KWOK takes over the nodes through the ``kwok.x-k8s.io/node: fake``
annotation and keeps them Ready; the status given here is what the scheduler sees.
"""

import json
from collections.abc import Callable
from typing import Any, Final

from fma.api.constants import CONFIGMAP_GPU_MAP, LABEL_GPU_PRESENT, LABEL_HOSTNAME, RESOURCE_GPU

KWOK_ANNOTATION: Final = "kwok.x-k8s.io/node"
KUBELET_ADDRESS_TYPE: Final = "InternalDNS"
"""The node address the apiserver reaches the node's kubelet API at: ``localhost``, where
KWOK serves it for every node (the InternalIP stays the node's own, distinct address)."""
KWOK_ANNOTATION_VALUE: Final = "fake"
NODE_PREFIX: Final = "gpu-node-"

Manifest = dict[str, Any]


def node_names(count: int) -> list[str]:
    """The names of ``count`` fake nodes, in index order."""
    return [f"{NODE_PREFIX}{i}" for i in range(count)]


def gpu_uuid(node: str, index: int) -> str:
    """The UUID of GPU ``index`` on ``node``."""
    return f"GPU-{node}-{index}"


def gpu_map(nodes: list[str], gpus: int) -> dict[str, dict[str, int]]:
    """``{node: {uuid: index}}`` for every node with ``gpus`` GPUs each."""
    return {node: {gpu_uuid(node, i): i for i in range(gpus)} for node in nodes}


def default_pod_cidr(index: int) -> str:
    """Node ``index``'s pod CIDR in a cluster without a pod runner: ``10.244.<index>.0/24``."""
    return f"10.244.{index}.0/24"


def node_manifest(name: str, index: int, gpus: int, pod_cidr: str | None = None) -> Manifest:
    """A v1 Node KWOK manages, with ``gpus`` GPUs and room for many small pods.

    Each node gets its own pod CIDR (``pod_cidr``, by default ``10.244.<index>.0/24``; a
    cluster with a pod runner passes its Pod network's) so pod IPs are distinct per node,
    and its own InternalIP (``10.0.0.<index+2>``).
    """
    resources = {
        "cpu": "64",
        "memory": "512Gi",
        "ephemeral-storage": "1Ti",
        "pods": "110",
        RESOURCE_GPU: str(gpus),
    }
    cidr = pod_cidr or default_pod_cidr(index)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_ANNOTATION: KWOK_ANNOTATION_VALUE},
            "labels": {
                LABEL_HOSTNAME: name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                LABEL_GPU_PRESENT: "true",
            },
        },
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "addresses": [
                {"type": "InternalIP", "address": f"10.0.0.{index + 2}"},
                {"type": "Hostname", "address": name},
                {"type": KUBELET_ADDRESS_TYPE, "address": "localhost"},
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": "fake",
                "kubeProxyVersion": "fake",
                "containerRuntimeVersion": "fake",
                "osImage": "fake",
                "kernelVersion": "fake",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        },
    }


def gpu_map_configmap(nodes: list[str], gpus: int, namespace: str) -> Manifest:
    """The ``gpu-map`` ConfigMap in ``namespace``: node name -> JSON ``{uuid: index}``."""
    data = {node: json.dumps(m, sort_keys=True) for node, m in gpu_map(nodes, gpus).items()}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIGMAP_GPU_MAP, "namespace": namespace},
        "data": data,
    }


def cluster_objects(
    count: int, gpus: int, namespace: str, pod_cidr: Callable[[int], str] = default_pod_cidr
) -> Manifest:
    """A v1 List of the namespace, the nodes and the ConfigMap, ready for ``kubectl apply``."""
    names = node_names(count)
    items: list[Manifest] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        *(node_manifest(name, i, gpus, pod_cidr(i)) for i, name in enumerate(names)),
        gpu_map_configmap(names, gpus, namespace),
    ]
    return {"apiVersion": "v1", "kind": "List", "items": items}
