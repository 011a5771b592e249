"""Smoke tests of the local control plane: nodes, scheduling, GC, RBAC, admission, helm."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from fma.api.constants import CONFIGMAP_GPU_MAP, LABEL_GPU_PRESENT, RESOURCE_GPU
from fma.testcluster.cluster import kubectl
from fma.testcluster.state import LocalCluster
from fma.testcluster.wait import wait_until
from tests.integration.conftest import helm_in

pytestmark = pytest.mark.integration

TIMEOUT = 60.0


def _pod(name: str, *, gpus: int = 0, labels: dict[str, str] | None = None) -> dict[str, Any]:
    resources = {"limits": {RESOURCE_GPU: str(gpus)}} if gpus else {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "containers": [{"name": "c", "image": "registry.invalid/none", "resources": resources}]
        },
    }


def _ready(pod: Any) -> bool:
    conds = pod.status.conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conds)


def test_nodes_are_ready_with_gpus(testcluster: LocalCluster, api: Any) -> None:
    core = client.CoreV1Api(api)
    nodes = {n.metadata.name: n for n in core.list_node().items}
    assert set(testcluster.nodes) <= set(nodes)
    for name in testcluster.nodes:
        node = nodes[name]
        assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
        assert node.status.allocatable[RESOURCE_GPU] == str(testcluster.gpus_per_node)
        assert node.metadata.labels[LABEL_GPU_PRESENT] == "true"
    cm = core.read_namespaced_config_map(CONFIGMAP_GPU_MAP, testcluster.namespace)
    assert set(cm.data) == set(testcluster.nodes)
    for name in testcluster.nodes:
        mapping = json.loads(cm.data[name])
        assert sorted(mapping.values()) == list(range(testcluster.gpus_per_node))
        assert all(uuid.startswith(f"GPU-{name}-") for uuid in mapping)


def test_deployment_pods_become_ready_with_ips(api: Any, namespace: str) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": _pod("x")["spec"],
                },
            },
        },
    )
    wait_until(
        lambda: (apps.read_namespaced_deployment("web", namespace).status.ready_replicas or 0) == 3,
        timeout=TIMEOUT,
        what="3 ready replicas of Deployment web",
    )
    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 3
    assert all(p.status.phase == "Running" and _ready(p) for p in pods)
    ips = [p.status.pod_ip for p in pods]
    assert all(ips) and len(set(ips)) == 3


def test_gpu_pods_are_placed_only_where_gpus_are_free(
    testcluster: LocalCluster, api: Any, namespace: str
) -> None:
    assert len(testcluster.nodes) == 2 and testcluster.gpus_per_node == 8
    core = client.CoreV1Api(api)
    for i in range(3):
        core.create_namespaced_pod(namespace, _pod(f"gpu-{i}", gpus=6, labels={"gpu": "6"}))

    def settled() -> list[Any] | None:
        pods = core.list_namespaced_pod(namespace, label_selector="gpu=6").items
        running = [p for p in pods if p.status.phase == "Running" and _ready(p)]
        unschedulable = [
            p
            for p in pods
            if any(
                c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"
                for c in p.status.conditions or []
            )
        ]
        return pods if len(running) == 2 and len(unschedulable) == 1 else None

    pods = wait_until(settled, timeout=TIMEOUT, what="2 GPU pods Running and 1 Unschedulable")
    placed = [p.spec.node_name for p in pods if p.spec.node_name]
    assert sorted(placed) == sorted(testcluster.nodes)  # one per node, on different nodes
    pending = [p for p in pods if not p.spec.node_name]
    assert len(pending) == 1 and pending[0].status.phase == "Pending"
    # Free one node's GPUs: the pending pod is then scheduled there.
    victim = next(p for p in pods if p.spec.node_name)
    core.delete_namespaced_pod(victim.metadata.name, namespace, grace_period_seconds=0)
    wait_until(
        lambda: _ready(core.read_namespaced_pod(pending[0].metadata.name, namespace)),
        timeout=TIMEOUT,
        what="the pending GPU pod to run once GPUs are free",
    )
    moved = core.read_namespaced_pod(pending[0].metadata.name, namespace)
    assert moved.spec.node_name == victim.spec.node_name


def test_garbage_collector_deletes_owned_objects(api: Any, namespace: str) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    for i in range(2):
        core.create_namespaced_config_map(
            namespace, {"metadata": {"name": f"owned-{i}", "ownerReferences": [ref]}}
        )
    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")

    def owned_gone() -> bool:
        names = {cm.metadata.name for cm in core.list_namespaced_config_map(namespace).items}
        return not names & {"owned-0", "owned-1"}

    wait_until(owned_gone, timeout=TIMEOUT, what="the garbage collector to delete owned objects")


def test_rbac_denies_a_service_account_without_permissions(
    testcluster: LocalCluster, api: Any, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "nobody"}})
    token = core.create_namespaced_service_account_token(
        "nobody", namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    config = client.Configuration()
    config.host = testcluster.server
    config.ssl_ca_cert = api.configuration.ssl_ca_cert
    config.api_key = {"authorization": f"Bearer {token}"}
    with client.ApiClient(config) as as_nobody:
        nobody = client.CoreV1Api(as_nobody)
        with pytest.raises(ApiException) as denied:
            nobody.list_namespaced_secret(namespace)
        assert denied.value.status == 403
        # Authenticated, not anonymous: the token is valid, only authorization says no.
        assert f"system:serviceaccount:{namespace}:nobody" in denied.value.body
    user = f"system:serviceaccount:{namespace}:nobody"
    proc = kubectl(testcluster, f"--as={user}", "get", "secrets", "-n", namespace, check=False)
    assert proc.returncode != 0 and "Forbidden" in proc.stderr
    can = kubectl(testcluster, "auth", "can-i", "list", "secrets", f"--as={user}", check=False)
    assert can.stdout.strip() == "no"


def test_validating_admission_policy_is_enforced(
    testcluster: LocalCluster, api: Any, namespace: str
) -> None:
    adm = client.AdmissionregistrationV1Api(api)
    core = client.CoreV1Api(api)
    name = f"deny-forbidden-{namespace}"
    adm.create_validating_admission_policy(
        {
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["configmaps"],
                        }
                    ]
                },
                "validations": [
                    {"expression": "!has(object.data) || !('forbidden' in object.data)"}
                ],
            },
        }
    )
    adm.create_validating_admission_policy_binding(
        {
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
                },
            },
        }
    )
    try:
        bad = {"metadata": {"name": "bad"}, "data": {"forbidden": "x"}}

        def denied() -> bool:
            try:
                core.create_namespaced_config_map(namespace, bad, dry_run="All")
            except ApiException as exc:
                assert exc.status in (400, 403, 422), exc.body
                return True
            return False  # the policy is not loaded by the admission plugin yet

        wait_until(denied, timeout=TIMEOUT, what="the ValidatingAdmissionPolicy to deny")
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "good"}})
    finally:
        adm.delete_validating_admission_policy_binding(name)
        adm.delete_validating_admission_policy(name)


def test_helm_installs_a_chart_and_waits(
    testcluster: LocalCluster, namespace: str, tmp_path: Any
) -> None:
    helm = helm_in(testcluster, tmp_path, timeout=120)

    assert helm("version", "--short").stdout.startswith("v3.")
    chart = tmp_path / "tiny"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: tiny\nversion: 0.1.0\nkubeVersion: '>=1.33.0-0'\n"
    )
    (chart / "templates" / "deploy.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: tiny}\n"
        "spec:\n  replicas: 2\n  selector: {matchLabels: {app: tiny}}\n"
        "  template:\n    metadata: {labels: {app: tiny}}\n"
        "    spec: {containers: [{name: c, image: registry.invalid/none}]}\n"
    )
    lint = helm("lint", str(chart))
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # Offline rendering checks kubeVersion against the version stamped into helm at build
    # time (upstream's default without the stamp is 1.20, which this chart refuses).
    template = helm("template", "tiny", str(chart))
    assert template.returncode == 0, template.stderr
    assert "kind: Deployment" in template.stdout
    install = helm("install", "tiny", str(chart), "-n", namespace, "--wait", "--timeout", "60s")
    assert install.returncode == 0, install.stderr
    assert "STATUS: deployed" in install.stdout
