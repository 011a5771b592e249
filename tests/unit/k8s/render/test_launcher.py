"""Launcher Pods from a LauncherConfig: problems, hashes, and the manifest, written by hand."""

import base64
import copy
import hashlib
import json
from typing import Any

import pytest

from fma.adapters.k8s.render.binding import Binding
from fma.adapters.k8s.render.errors import RenderError
from fma.adapters.k8s.render.launcher import (
    launcher_config_hash,
    launcher_pod,
    launcher_template_hash,
    launcher_template_problems,
)
from fma.api.crds import LauncherConfig
from fma.core.model import ActuationPath

Obj = dict[str, Any]

SERVER: Obj = {
    "name": "inference-server",
    "image": "ghcr.io/llm-d-fma/fma:1",
    "args": ["launcher", "serve"],
    "env": [
        {"name": "NVIDIA_VISIBLE_DEVICES", "value": "0"},
        {"name": "HF_HOME", "value": "/tmp/hf"},
    ],
    "resources": {"limits": {"nvidia.com/gpu": "1", "cpu": "2"}},
    "volumeMounts": [
        {"name": "models", "mountPath": "/models"},
        {"name": "cache", "mountPath": "/cache"},
    ],
}
TEMPLATE_SPEC: Obj = {
    "serviceAccountName": "fma-launcher",
    "containers": [{"name": "helper", "image": "busybox"}, SERVER],
    "volumes": [{"name": "models", "emptyDir": {}}, {"name": "cache", "emptyDir": {}}],
    "tolerations": [{"key": "b", "operator": "Exists"}, {"key": "a", "operator": "Exists"}],
    "overhead": {"nvidia.com/gpu": "1", "cpu": "100m"},
}


def config(spec: Obj | None = None, *, name: str = "lc-small", **template: Any) -> LauncherConfig:
    pod_template: Obj = {
        "metadata": template.get("metadata", {"labels": {"team": "a"}, "annotations": {"n": "x"}}),
        "spec": copy.deepcopy(TEMPLATE_SPEC if spec is None else spec),
    }
    return LauncherConfig.model_validate(
        {
            "metadata": {"name": name, "namespace": "team-a"},
            "spec": {"maxInstances": template.get("max_instances", 2), "podTemplate": pod_template},
        }
    )


def expected_template_hash() -> str:
    """The hash, by the rule: base64url SHA-256 of canonical JSON of the canonical template."""
    canonical_spec = {
        "serviceAccountName": "fma-launcher",
        "containers": [
            {"name": "helper", "image": "busybox"},
            {
                **SERVER,
                "volumeMounts": [
                    {"name": "cache", "mountPath": "/cache"},
                    {"name": "models", "mountPath": "/models"},
                ],
            },
        ],
        "volumes": [{"name": "cache", "emptyDir": {}}, {"name": "models", "emptyDir": {}}],
        "tolerations": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}],
        "overhead": {"nvidia.com/gpu": "1", "cpu": "100m"},
    }
    document = {
        "launcherConfig": "lc-small",
        "metadata": {"labels": {"team": "a"}, "annotations": {"n": "x"}},
        "spec": canonical_spec,
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(text.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def expected_config_hash(template_hash: str, node: str) -> str:
    digest = hashlib.sha256(f"{template_hash};node={node}".encode()).digest()
    return base64.b64encode(digest).decode().rstrip("=")


# --- problems ----------------------------------------------------------------------------------


def test_a_good_template_has_no_problems() -> None:
    assert launcher_template_problems(config()) == ()


def test_a_template_without_inference_server() -> None:
    lc = config({"containers": [{"name": "vllm", "image": "v"}]})
    assert launcher_template_problems(lc) == (
        "spec.podTemplate.spec.containers: no container named inference-server",
    )
    with pytest.raises(RenderError) as raised:
        launcher_pod(lc, namespace="team-a", node="node-a", lc_uid=None, binding=None)
    assert str(raised.value) == (
        "LauncherConfig lc-small: spec.podTemplate.spec.containers: "
        "no container named inference-server"
    )


def test_a_template_without_a_spec() -> None:
    lc = LauncherConfig.model_validate({"metadata": {"name": "lc"}, "spec": {"maxInstances": 1}})
    assert launcher_template_problems(lc) == (
        "spec.podTemplate.spec: required: a Pod spec with a container named inference-server",
    )


def test_template_problems_name_each_field() -> None:
    spec = {
        "nodeName": "node-b",
        "containers": [
            {"name": "inference-server", "image": "i", "imagePullPolicy": "Always", "cmd": ["x"]},
            {"name": "inference-server", "image": "i"},
            {"name": "other"},
        ],
        "volumes": "none",
    }
    metadata = {"labels": {"dual-pods.llm-d.ai/sleeping": "x", "ok": "bad value!"}}
    assert launcher_template_problems(config(spec, metadata=metadata)) == (
        'spec.podTemplate.metadata.labels["ok"]: value must consist of alphanumerics, '
        "'-', '_' or '.', and start and end with an alphanumeric",
        'spec.podTemplate.metadata.labels["dual-pods.llm-d.ai/sleeping"]: '
        "reserved prefix dual-pods.llm-d.ai/",
        "spec.podTemplate.spec.containers[inference-server].cmd: unknown field",
        "spec.podTemplate.spec.containers[inference-server]: duplicate container name",
        "spec.podTemplate.spec.containers[other].image: required",
        "spec.podTemplate.spec.volumes: must be a list",
        "spec.podTemplate.spec.nodeName: must not be set: FMA places each launcher",
    )


def test_a_launcher_port_name_on_another_port_is_a_problem() -> None:
    server = {**SERVER, "ports": [{"name": "launcher", "containerPort": 9000}]}
    assert launcher_template_problems(config({"containers": [server]})) == (
        "spec.podTemplate.spec.containers[inference-server].ports: "
        "the port named launcher must be 8001",
    )


def test_a_name_that_cannot_be_a_label_value_is_a_problem() -> None:
    lc = config(name="l" * 64)
    assert launcher_template_problems(lc) == (
        "metadata.name: is the launchers' dual-pods.llm-d.ai/launcher-config-name label, "
        "which must be at most 63 characters",
    )


# --- hashes ------------------------------------------------------------------------------------


def test_template_hash_is_the_canonical_templates_digest() -> None:
    assert launcher_template_hash(config()) == expected_template_hash()


def test_template_hash_is_stable_under_reordering_and_the_api_access_volume() -> None:
    spec = copy.deepcopy(TEMPLATE_SPEC)
    spec["volumes"].reverse()
    spec["volumes"].insert(1, {"name": "kube-api-access-x7k2p", "projected": {"sources": []}})
    spec["tolerations"].reverse()
    spec["containers"][1]["volumeMounts"].reverse()
    spec["containers"][1]["volumeMounts"].append(
        {"name": "kube-api-access-x7k2p", "mountPath": "/var/run/secrets/kubernetes.io/sa"}
    )
    reordered = config(spec, metadata={"annotations": {"n": "x"}, "labels": {"team": "a"}})
    assert launcher_template_hash(reordered) == expected_template_hash()
    assert launcher_template_hash(config(max_instances=7)) == expected_template_hash()


def test_template_hash_changes_with_what_the_launcher_runs() -> None:
    spec = copy.deepcopy(TEMPLATE_SPEC)
    spec["containers"][1]["image"] = "ghcr.io/llm-d-fma/fma:2"
    assert launcher_template_hash(config(spec)) != expected_template_hash()
    relabelled = config(metadata={"labels": {"team": "b"}, "annotations": {"n": "x"}})
    assert launcher_template_hash(relabelled) != expected_template_hash()
    assert launcher_template_hash(config(name="lc-other")) != expected_template_hash()
    env_reordered = copy.deepcopy(TEMPLATE_SPEC)
    env_reordered["containers"][1]["env"].reverse()  # env order matters: $(VAR) references
    assert launcher_template_hash(config(env_reordered)) != expected_template_hash()


def test_template_hash_is_unchanged_by_the_injections() -> None:
    lc = config()
    pod = launcher_pod(lc, namespace="team-a", node="node-a", lc_uid="u", binding=None)
    assert launcher_template_hash(lc) == expected_template_hash()
    annotations = pod["metadata"]["annotations"]
    recorded = annotations["dual-pods.llm-d.ai/launcher-populator-template-hash"]
    assert recorded == expected_template_hash()


def test_launcher_config_hash_specialises_the_template_hash_to_a_node() -> None:
    assert launcher_config_hash("abc", "node-a") == expected_config_hash("abc", "node-a")
    assert launcher_config_hash("abc", "node-a") != launcher_config_hash("abc", "node-b")


# --- the Pod -----------------------------------------------------------------------------------


def expected_launcher_pod() -> Obj:
    template_hash = expected_template_hash()
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "launcher-lc-small-",
            "namespace": "team-a",
            "labels": {
                "team": "a",
                "app.kubernetes.io/component": "launcher",
                "dual-pods.llm-d.ai/launcher-config-name": "lc-small",
                "dual-pods.llm-d.ai/node-name": "node-a",
                "dual-pods.llm-d.ai/sleeping": "true",
            },
            "annotations": {
                "n": "x",
                "dual-pods.llm-d.ai/launcher-populator-template-hash": template_hash,
                "dual-pods.llm-d.ai/launcher-config-hash": expected_config_hash(
                    template_hash, "node-a"
                ),
            },
            "ownerReferences": [
                {
                    "apiVersion": "fma.llm-d.ai/v1alpha1",
                    "kind": "LauncherConfig",
                    "name": "lc-small",
                    "uid": "lc-uid-1",
                    "controller": False,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": {
            "serviceAccountName": "fma-launcher",
            "nodeSelector": {"kubernetes.io/hostname": "node-a"},
            "containers": [
                {
                    "name": "inference-server",
                    "image": "ghcr.io/llm-d-fma/fma:1",
                    "args": ["launcher", "serve"],
                    "env": [
                        {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
                        {"name": "HF_HOME", "value": "/tmp/hf"},
                        {"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "compute,utility"},
                        {"name": "VLLM_SERVER_DEV_MODE", "value": "1"},
                        {
                            "name": "NODE_NAME",
                            "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
                        },
                        {
                            "name": "NAMESPACE",
                            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
                        },
                    ],
                    "resources": {"limits": {"nvidia.com/gpu": "0", "cpu": "2"}},
                    "volumeMounts": [
                        {"name": "models", "mountPath": "/models"},
                        {"name": "cache", "mountPath": "/cache"},
                    ],
                    "livenessProbe": {
                        "httpGet": {"path": "/health", "port": 8001},
                        "initialDelaySeconds": 10,
                        "periodSeconds": 20,
                        "timeoutSeconds": 1,
                        "failureThreshold": 3,
                    },
                    "readinessProbe": {
                        "httpGet": {"path": "/v2/vllm/instances", "port": 8001},
                        "initialDelaySeconds": 2,
                        "periodSeconds": 5,
                        "timeoutSeconds": 2,
                        "failureThreshold": 3,
                    },
                    "ports": [{"name": "launcher", "containerPort": 8001}],
                },
                {"name": "helper", "image": "busybox"},
            ],
            "volumes": [{"name": "models", "emptyDir": {}}, {"name": "cache", "emptyDir": {}}],
            "tolerations": [{"key": "b", "operator": "Exists"}, {"key": "a", "operator": "Exists"}],
            "overhead": {"cpu": "100m"},
        },
    }


def test_launcher_pod_without_binding() -> None:
    lc = config()
    pod = launcher_pod(lc, namespace="team-a", node="node-a", lc_uid="lc-uid-1", binding=None)
    assert pod == expected_launcher_pod()
    assert "containers" in json.dumps(pod)  # plain JSON-able data
    assert lc == config()  # the LauncherConfig is not changed


def test_launcher_pod_with_binding() -> None:
    binding = Binding(
        requester_uid="req-uid-9",
        requester_name="my-req-abcde",
        instance_id="Iabc_-i",
        path=ActuationPath.COLD_LAUNCHER,
        bound_at="2026-03-04T05:06:07.123456Z",
    )
    pod = launcher_pod(config(), namespace="team-a", node="node-a", lc_uid=None, binding=binding)
    expected = expected_launcher_pod()
    del expected["metadata"]["ownerReferences"]
    expected["metadata"]["annotations"] |= {
        "dual-pods.llm-d.ai/requester": "req-uid-9 my-req-abcde",
        "dual-pods.llm-d.ai/instance-id": "Iabc_-i",
        "dual-pods.llm-d.ai/actuation-path": "cold_launcher",
        "dual-pods.llm-d.ai/bound-at": "2026-03-04T05:06:07.123456Z",
    }
    expected["metadata"]["labels"]["dual-pods.llm-d.ai/dual"] = "my-req-abcde"
    expected["metadata"]["finalizers"] = ["dual-pods.llm-d.ai/provider"]
    assert pod == expected


def test_the_templates_own_probes_and_port_are_kept_and_missing_gpu_maps_stay_missing() -> None:
    server = {
        "name": "inference-server",
        "image": "i",
        "ports": [{"name": "api", "containerPort": 8001}],
        "livenessProbe": {"tcpSocket": {"port": 8001}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8001}},
        "resources": {"requests": {"cpu": "1"}},
    }
    pod = launcher_pod(
        config({"containers": [server], "nodeSelector": {"pool": "gpu"}}),
        namespace="ns",
        node="node-a",
        lc_uid=None,
        binding=None,
    )
    rendered = pod["spec"]["containers"][0]
    assert rendered["ports"] == [{"name": "api", "containerPort": 8001}]
    assert rendered["livenessProbe"] == {"tcpSocket": {"port": 8001}}
    assert rendered["readinessProbe"] == {"httpGet": {"path": "/ready", "port": 8001}}
    assert rendered["resources"] == {"requests": {"cpu": "1", "nvidia.com/gpu": "0"}}
    assert pod["spec"]["nodeSelector"] == {"pool": "gpu", "kubernetes.io/hostname": "node-a"}
    assert "overhead" not in pod["spec"]


def test_a_long_launcher_config_name_is_cut_for_generate_name() -> None:
    pod = launcher_pod(config(name="x" * 60), namespace="ns", node="n", lc_uid=None, binding=None)
    assert pod["metadata"]["generateName"] == "launcher-" + "x" * 48 + "-"


def test_a_node_name_that_cannot_be_a_label_value_is_an_error() -> None:
    with pytest.raises(RenderError) as raised:
        launcher_pod(config(), namespace="ns", node="n" * 64, lc_uid=None, binding=None)
    assert str(raised.value) == (
        f"Node {'n' * 64}: the name is the dual-pods.llm-d.ai/node-name label, which must be "
        "at most 63 characters"
    )
