"""The direct path: the nominal provider, its hash and identity, and the provider Pod."""

import base64
import copy
import hashlib
import json
from typing import Any

import pytest

from fma.adapters.k8s.render.binding import Binding
from fma.adapters.k8s.render.direct import (
    direct_engine_port,
    direct_provider_pod,
    direct_server_spec,
    nominal_hash,
    nominal_provider,
)
from fma.adapters.k8s.render.errors import RenderError
from fma.core.model import ActuationPath, ServerSpec

Obj = dict[str, Any]
PATCH_KEY = "dual-pods.llm-d.ai/server-patch"

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
    env:
    - name: B
      value: "3"
    - name: VLLM_HOST_NODE
      value: "{{ .NodeName }}"
    readinessProbe:
      httpGet:
        path: /health
        port: 8005
"""

API_ACCESS_MOUNT = {
    "name": "kube-api-access-x7k2p",
    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
    "readOnly": True,
}
TOLERATIONS = [
    {
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    }
]
RESOURCES = {
    "limits": {"nvidia.com/gpu": "2", "cpu": "1"},
    "requests": {"nvidia.com/gpu": "2", "cpu": "1"},
}


def requester(patch: str = SERVER_PATCH, **annotations: str) -> Obj:
    """A requester as the API server returns it: server-set fields and all."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "my-req-abcde",
            "generateName": "my-req-",
            "namespace": "team-a",
            "uid": "req-uid-9",
            "resourceVersion": "4242",
            "creationTimestamp": "2026-03-04T05:00:00Z",
            "labels": {"app": "dp-app", "pod-template-hash": "5d8f"},
            "annotations": {
                PATCH_KEY: patch,
                "dual-pods.llm-d.ai/admin-port": "8081",
                **annotations,
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "my-req",
                    "uid": "rs-uid",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "finalizers": ["dual-pods.llm-d.ai/requester"],
            "managedFields": [{"manager": "kube-controller-manager", "operation": "Update"}],
        },
        "spec": {
            "nodeName": "node-a",
            "serviceAccountName": "default",
            "restartPolicy": "Always",
            "priority": 0,
            "containers": [
                {
                    "name": "inference-server",
                    "image": "ghcr.io/llm-d-fma/fma:1",
                    "command": ["fma", "requester", "serve"],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    "resources": copy.deepcopy(RESOURCES),
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
                    "volumeMounts": [dict(API_ACCESS_MOUNT)],
                }
            ],
            "volumes": [{"name": "kube-api-access-x7k2p", "projected": {"sources": []}}],
            "tolerations": copy.deepcopy(TOLERATIONS),
            "ephemeralContainers": [{"name": "debugger", "image": "busybox"}],
        },
        "status": {"phase": "Running", "podIP": "10.0.0.5"},
    }


VLLM_COMMAND = [
    "vllm",
    "serve",
    "--model",
    "facebook/opt-125m",
    "--port",
    "8005",
    "--gpu-memory-utilization",
    "0.8",
]


def expected_nominal() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "namespace": "team-a",
            "labels": {"pod-template-hash": "5d8f", "model": "opt-125m"},
        },
        "spec": {
            "serviceAccountName": "default",
            "restartPolicy": "Always",
            "containers": [
                {
                    "name": "inference-server",
                    "image": "vllm/vllm-openai:v0.10.1",
                    "command": VLLM_COMMAND,
                    "env": [
                        {"name": "A", "value": "1"},
                        {"name": "B", "value": "3"},
                        {"name": "VLLM_HOST_NODE", "value": "node-a"},
                    ],
                    "resources": RESOURCES,
                    "readinessProbe": {"httpGet": {"path": "/health", "port": 8005}},
                }
            ],
            "tolerations": TOLERATIONS,
        },
    }


def expected_hash(nominal: Obj, gpus: str, node: str) -> str:
    text = json.dumps(nominal, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(f"{text};gpus={gpus};node={node}".encode()).digest()
    return base64.b64encode(digest).decode().rstrip("=")


def render_error(patch: str, node: str = "node-a") -> str:
    with pytest.raises(RenderError) as raised:
        nominal_provider(requester(patch), node=node)
    return str(raised.value)


WHO = "Pod team-a/my-req-abcde: annotation dual-pods.llm-d.ai/server-patch"


# --- the nominal provider ----------------------------------------------------------------------


def test_nominal_provider_renders_the_patch_and_applies_it() -> None:
    """.NodeName rendered, a label removed with null, env merged by name, command replaced;
    the requester's annotations, server-set metadata, status, nodeName, priority, ephemeral
    containers and API-access volume are gone."""
    original = requester()
    assert nominal_provider(original, node="node-a") == expected_nominal()
    assert original == requester()


def test_a_patch_that_deletes_a_container() -> None:
    base = requester()
    base["spec"]["containers"].append({"name": "sidecar", "image": "busybox"})
    base["metadata"]["annotations"][PATCH_KEY] = (
        SERVER_PATCH + "  - name: sidecar\n    $patch: delete\n"
    )
    assert nominal_provider(base, node="node-a") == expected_nominal()


def test_a_patch_that_keeps_every_label_is_an_error() -> None:
    patch = SERVER_PATCH.replace("    app: null\n", "")
    assert render_error(patch) == (
        f"{WHO}: the patched Pod is invalid: metadata.labels: the patch must change or remove "
        'at least one of the requester\'s labels (e.g. "app": null), or the provider would '
        "match the selector of the requester's owner"
    )


def test_changing_a_labels_value_is_enough() -> None:
    patch = SERVER_PATCH.replace("app: null", "app: dp-provider")
    labels = nominal_provider(requester(patch), node="node-a")["metadata"]["labels"]
    assert labels == {"app": "dp-provider", "pod-template-hash": "5d8f", "model": "opt-125m"}


def test_a_missing_key_is_an_error_naming_it() -> None:
    patch = SERVER_PATCH.replace("{{ .NodeName }}", "{{ .Node }}")
    assert render_error(patch) == f"{WHO}: line 15: unknown key .Node (missingkey=error)"


def test_local_volume_is_empty() -> None:
    patch = SERVER_PATCH.replace('"{{ .NodeName }}"', '"[{{ .LocalVolume }}]"')
    nominal = nominal_provider(requester(patch), node="node-a")
    assert nominal["spec"]["containers"][0]["env"][2] == {"name": "VLLM_HOST_NODE", "value": "[]"}


def test_a_template_that_does_not_parse() -> None:
    assert render_error("metadata: {{ .NodeName ").startswith(f"{WHO}: line 1: ")


def test_a_patch_that_is_not_yaml() -> None:
    assert render_error("metadata: [unclosed\n").startswith(f"{WHO}: not YAML: line ")


def test_a_patch_that_is_not_a_map() -> None:
    assert render_error("- a\n- b\n") == f"{WHO}: must render to a map (a patch of the Pod)"


def test_a_missing_patch() -> None:
    assert render_error("   ") == f"{WHO}: missing or empty"


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            ("    image: vllm", "    imagee: vllm"),
            "spec.containers[inference-server].imagee: unknown field",
        ),
        (("spec:\n", "spec:\n  nodeSelectr: {a: b}\n"), "spec.nodeSelectr: unknown field"),
        (("metadata:\n", "metadata:\n  name: fixed\n"), "metadata.name: must not be set"),
        (("metadata:\n", "status: {phase: Running}\nmetadata:\n"), "status: must not be set"),
        (("    model: opt-125m", "    model: 1.5"), 'metadata.labels["model"]: must be a string'),
        (
            ("    model: opt-125m", "    model: -bad-"),
            'metadata.labels["model"]: value must consist of',
        ),
        (
            ('      value: "3"', '      value: "3"\n      valueFrom: {fieldRef: {fieldPath: x}}'),
            "spec.containers[inference-server].env[B]: value and valueFrom are mutually exclusive",
        ),
        (
            ("  - name: inference-server\n", "  - name: inference-server\n    $patch: delete\n"),
            "spec.containers: required",
        ),
        (
            ("  containers:\n", "  containers:\n  - name: extra\n"),
            "spec.containers[extra].image: required",
        ),
    ],
)
def test_strict_validation_names_the_field(edit: tuple[str, str], problem: str) -> None:
    patch = SERVER_PATCH.replace(*edit)
    assert patch != SERVER_PATCH
    message = render_error(patch)
    assert message.startswith(f"{WHO}: the patched Pod is invalid: ")
    assert problem in message


def test_a_patch_without_inference_server_left() -> None:
    base = requester(
        "metadata: {labels: {app: null}}\nspec: {containers: [{$patch: replace}, "
        "{name: vllm, image: v}]}\n"
    )
    with pytest.raises(RenderError) as raised:
        nominal_provider(base, node="node-a")
    assert str(raised.value) == (
        f"{WHO}: the patched Pod is invalid: spec.containers: no container named inference-server"
    )


# --- the engine port ---------------------------------------------------------------------------


def pod_with_probe_port(port: object, ports: list[Obj] | None = None) -> Obj:
    container: Obj = {"name": "inference-server", "image": "i"}
    container["readinessProbe"] = {"httpGet": {"path": "/health", "port": port}}
    if ports is not None:
        container["ports"] = ports
    return {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"containers": [container]}}


@pytest.mark.parametrize(
    ("port", "ports", "expected"),
    [
        (8005, None, 8005),
        ("http", None, 80),
        ("HTTP", None, 80),
        ("api", [{"name": "api", "containerPort": 8000}], 8000),
        ("http", [{"name": "http", "containerPort": 8080}], 8080),
        ("8006", None, 8006),
    ],
)
def test_direct_engine_port(port: object, ports: list[Obj] | None, expected: int) -> None:
    assert direct_engine_port(pod_with_probe_port(port, ports)) == expected


def test_an_unknown_port_name_is_an_error() -> None:
    with pytest.raises(RenderError) as raised:
        direct_engine_port(pod_with_probe_port("metrics"))
    assert str(raised.value) == (
        "Pod ns/p: spec.containers[inference-server].readinessProbe.httpGet.port: "
        "'metrics' is not a port"
    )


def test_no_readiness_probe_is_an_error() -> None:
    pod = pod_with_probe_port(1)
    del pod["spec"]["containers"][0]["readinessProbe"]
    with pytest.raises(RenderError) as raised:
        direct_engine_port(pod)
    assert str(raised.value) == (
        "Pod ns/p: spec.containers[inference-server].readinessProbe.httpGet.port: required: "
        "it says which port vLLM serves on"
    )


# --- the nominal hash and the identity ---------------------------------------------------------


def test_nominal_hash_is_the_digest_of_the_nominal_pod_gpus_and_node() -> None:
    nominal = expected_nominal()
    assert nominal_hash(nominal, [0, 1], "node-a") == expected_hash(nominal, "0,1", "node-a")


def test_nominal_hash_changes_with_gpus_and_node() -> None:
    nominal = expected_nominal()
    base = nominal_hash(nominal, [0, 1], "node-a")
    assert nominal_hash(nominal, [0, 2], "node-a") != base
    assert nominal_hash(nominal, [1, 0], "node-a") != base
    assert nominal_hash(nominal, [0, 1], "node-b") != base


def test_nominal_hash_does_not_depend_on_annotation_or_map_order() -> None:
    first = requester(**{"x.example/a": "1", "x.example/b": "2"})
    second = requester()
    second["metadata"]["annotations"] = dict(
        reversed([*second["metadata"]["annotations"].items(), ("x.example/b", "2")])
    )
    patch_with_annotations = SERVER_PATCH.replace(
        "metadata:\n", "metadata:\n  annotations: {p.example/a: '1', p.example/b: '2'}\n"
    )
    reordered_patch = SERVER_PATCH.replace(
        "metadata:\n", "metadata:\n  annotations: {p.example/b: '2', p.example/a: '1'}\n"
    )
    hashes = {
        nominal_hash(nominal_provider(pod, node="node-a"), [0], "node-a") for pod in (first, second)
    }
    assert hashes == {expected_hash(expected_nominal(), "0", "node-a")}
    assert nominal_hash(
        nominal_provider(requester(patch_with_annotations), node="node-a"), [0], "node-a"
    ) == nominal_hash(nominal_provider(requester(reordered_patch), node="node-a"), [0], "node-a")


def test_direct_server_spec() -> None:
    spec = direct_server_spec(
        requester(), node="node-a", gpu_indices=[0, 1], weights_bytes=250_000_000
    )
    assert spec == ServerSpec(
        model="facebook/opt-125m",
        port=8005,
        options=("--nominal=" + expected_hash(expected_nominal(), "0,1", "node-a"),),
        env=(),
        weights_bytes=250_000_000,
        gpu_memory_utilization=0.8,
    )


def test_direct_server_spec_model_falls_back_to_serve_and_to_the_image() -> None:
    served = SERVER_PATCH.replace('"--model", "facebook/opt-125m", ', '"facebook/opt-350m", ')
    spec = direct_server_spec(requester(served), node="n", gpu_indices=[0], weights_bytes=1)
    assert (spec.model, spec.gpu_memory_utilization) == ("facebook/opt-350m", 0.8)
    bare = SERVER_PATCH.replace(
        """["vllm", "serve", "--model", "facebook/opt-125m", "--port", "8005",
              "--gpu-memory-utilization", "0.8"]""",
        '["python", "-m", "server"]',
    )
    spec = direct_server_spec(requester(bare), node="n", gpu_indices=[0], weights_bytes=1)
    assert (spec.model, spec.gpu_memory_utilization) == ("vllm/vllm-openai:v0.10.1", 0.9)


def test_direct_server_spec_rejects_a_bad_gpu_memory_utilization() -> None:
    patch = SERVER_PATCH.replace('"0.8"', '"1.5"')
    with pytest.raises(RenderError) as raised:
        direct_server_spec(requester(patch), node="n", gpu_indices=[0], weights_bytes=1)
    assert str(raised.value) == (
        "Pod team-a/my-req-abcde: spec.containers[inference-server].args: "
        "--gpu-memory-utilization '1.5' must be in (0, 1]"
    )


# --- the provider Pod --------------------------------------------------------------------------

BINDING = Binding(
    requester_uid="req-uid-9",
    requester_name="my-req-abcde",
    instance_id="Ixyzi",
    path=ActuationPath.COLD,
    bound_at="2026-03-04T05:06:07.123456Z",
)
UUIDS = ["GPU-aaaa", "GPU-bbbb"]


def test_direct_provider_pod() -> None:
    pod = direct_provider_pod(
        requester(), node="node-a", gpu_uuids=UUIDS, gpu_indices=[3, 5], binding=BINDING
    )
    nominal = expected_nominal()
    assert pod == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "namespace": "team-a",
            "generateName": "my-req-abcde-dual-",
            "labels": {
                "pod-template-hash": "5d8f",
                "model": "opt-125m",
                "dual-pods.llm-d.ai/dual": "my-req-abcde",
                "dual-pods.llm-d.ai/sleeping": "false",
            },
            "annotations": {
                "dual-pods.llm-d.ai/requester": "req-uid-9 my-req-abcde",
                "dual-pods.llm-d.ai/nominal": expected_hash(nominal, "3,5", "node-a"),
                "dual-pods.llm-d.ai/accelerators": "GPU-aaaa,GPU-bbbb",
                "dual-pods.llm-d.ai/instance-id": "Ixyzi",
                "dual-pods.llm-d.ai/actuation-path": "cold",
                "dual-pods.llm-d.ai/bound-at": "2026-03-04T05:06:07.123456Z",
            },
            "finalizers": ["dual-pods.llm-d.ai/provider"],
        },
        "spec": {
            "serviceAccountName": "default",
            "restartPolicy": "Always",
            "nodeSelector": {"kubernetes.io/hostname": "node-a"},
            "containers": [
                {
                    "name": "inference-server",
                    "image": "vllm/vllm-openai:v0.10.1",
                    "command": VLLM_COMMAND,
                    "env": [
                        {"name": "A", "value": "1"},
                        {"name": "B", "value": "3"},
                        {"name": "VLLM_HOST_NODE", "value": "node-a"},
                        {"name": "CUDA_VISIBLE_DEVICES", "value": "3,5"},
                        {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
                    ],
                    "resources": {
                        "limits": {"nvidia.com/gpu": "0", "cpu": "1"},
                        "requests": {"nvidia.com/gpu": "0", "cpu": "1"},
                    },
                    "readinessProbe": {"httpGet": {"path": "/health", "port": 8005}},
                }
            ],
            "tolerations": TOLERATIONS,
        },
    }


def test_the_provider_keeps_its_requesters_weights_size() -> None:
    sized = requester(**{"dual-pods.llm-d.ai/weights-size": "5Gi"})
    pod = direct_provider_pod(
        sized, node="node-a", gpu_uuids=UUIDS, gpu_indices=[3, 5], binding=BINDING
    )
    assert pod["metadata"]["annotations"]["dual-pods.llm-d.ai/weights-size"] == "5Gi"
    # Not part of the identity: the same requester without it is served by the same sleeper.
    unsized = direct_provider_pod(
        requester(), node="node-a", gpu_uuids=UUIDS, gpu_indices=[3, 5], binding=BINDING
    )
    nominal = "dual-pods.llm-d.ai/nominal"
    assert pod["metadata"]["annotations"][nominal] == unsized["metadata"]["annotations"][nominal]


def test_cuda_visible_devices_in_the_patch_is_overwritten() -> None:
    patch = SERVER_PATCH.replace(
        "    env:\n",
        "    env:\n    - name: CUDA_VISIBLE_DEVICES\n      value: '7'\n"
        "    - name: NVIDIA_VISIBLE_DEVICES\n      value: GPU-aaaa\n",
    )
    pod = direct_provider_pod(
        requester(patch), node="node-a", gpu_uuids=UUIDS, gpu_indices=[3, 5], binding=BINDING
    )
    assert pod["spec"]["containers"][0]["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "3"},
        {"name": "CUDA_VISIBLE_DEVICES", "value": "3,5"},
        {"name": "NVIDIA_VISIBLE_DEVICES", "value": "GPU-aaaa"},
        {"name": "VLLM_HOST_NODE", "value": "node-a"},
    ]


def test_the_provider_without_resources_gets_zero_gpus() -> None:
    base = requester()
    del base["spec"]["containers"][0]["resources"]
    pod = direct_provider_pod(
        base, node="node-a", gpu_uuids=UUIDS, gpu_indices=[0], binding=BINDING
    )
    assert pod["spec"]["containers"][0]["resources"] == {
        "requests": {"nvidia.com/gpu": "0"},
        "limits": {"nvidia.com/gpu": "0"},
    }


def test_a_long_requester_name_is_cut_for_generate_name() -> None:
    base = requester()
    binding = Binding("u", "r" * 63, "I1i", ActuationPath.COLD, "2026-03-04T05:06:07.1Z")
    pod = direct_provider_pod(base, node="n", gpu_uuids=UUIDS, gpu_indices=[0], binding=binding)
    assert pod["metadata"]["generateName"] == "r" * 52 + "-dual-"
    assert pod["metadata"]["labels"]["dual-pods.llm-d.ai/dual"] == "r" * 63


def test_dynamic_resource_allocation_is_not_supported() -> None:
    base = requester()
    base["spec"]["resourceClaims"] = [{"name": "gpu", "resourceClaimName": "gpu-claim"}]
    base["spec"]["containers"][0]["resources"]["claims"] = [{"name": "gpu"}]
    with pytest.raises(RenderError) as raised:
        nominal_provider(base, node="node-a")
    assert str(raised.value) == (
        f"{WHO}: the patched Pod is invalid: "
        "spec.resourceClaims: dynamic resource allocation is not supported: ask for GPUs as "
        "nvidia.com/gpu; spec.containers[inference-server].resources.claims: dynamic resource "
        "allocation is not supported: ask for GPUs as nvidia.com/gpu"
    )
