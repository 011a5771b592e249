"""Upstream's identities and values: the objects upstream's tools look up by name, and each of
upstream's chart values accepted with the meaning docs/upstream-compat.md gives it, or refused
with a message saying why."""

from pathlib import Path
from typing import Any

import yaml

import fma
from fma.api.constants import FMA_IMAGE, LABEL_COMPONENT
from tests.unit.chart.conftest import CHART, NAMESPACE, RELEASE, Helm, Render, of_kind, one

CONTROLLER = f"{RELEASE}-dual-pods-controller"
POPULATOR = f"{RELEASE}-launcher-populator"
CONTROLLERS_SA = f"{RELEASE}-fma-controllers"


def container(objects: list[dict[str, Any]], deployment: str) -> dict[str, Any]:
    (found,) = one(objects, "Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    return found


def test_both_deployments_carry_upstreams_names_labels_account_and_metrics_port(
    render: Render,
) -> None:
    objects = render()
    assert sorted(d["metadata"]["name"] for d in of_kind(objects, "Deployment")) == [
        CONTROLLER,
        POPULATOR,
    ]
    for name, component, container_name in (
        (CONTROLLER, "dual-pods-controller", "controller"),
        (POPULATOR, "launcher-populator", "launcher-populator"),
    ):
        deployment = one(objects, "Deployment", name)
        pod = deployment["spec"]["template"]
        assert deployment["metadata"]["labels"][LABEL_COMPONENT] == component
        assert pod["metadata"]["labels"][LABEL_COMPONENT] == component
        assert deployment["spec"]["selector"]["matchLabels"][LABEL_COMPONENT] == component
        assert pod["spec"]["serviceAccountName"] == CONTROLLERS_SA
        (found,) = pod["spec"]["containers"]
        assert found["name"] == container_name
        assert {"name": "metrics", "containerPort": 8002} in found["ports"]
    assert [sa["metadata"]["name"] for sa in of_kind(objects, "ServiceAccount")] == [
        CONTROLLERS_SA,
        "fma-launcher",
    ]
    policies = of_kind(objects, "ValidatingAdmissionPolicy")
    assert sorted(p["metadata"]["name"] for p in policies) == [
        "fma-bound-serverreqpod",
        "fma-immutable-fields",
    ]


def test_the_populator_is_the_same_operator_deferring_to_the_controller(render: Render) -> None:
    objects = render()
    controller, populator = container(objects, CONTROLLER), container(objects, POPULATOR)
    assert populator["args"] == [*controller["args"], "--takeover-delay=10"]
    assert "--lease-name=fma-controller" in controller["args"]
    assert not [a for a in controller["args"] if a.startswith("--takeover-delay")]
    assert populator["image"] == controller["image"]


def test_launcher_populator_values(render: Render) -> None:
    resources = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
    objects = render(
        {
            "launcherPopulator": {
                "enabled": True,
                "replicaCount": 3,
                "pullPolicy": "Always",
                "resources": resources,
                "takeoverDelaySeconds": 4.5,
            }
        }
    )
    populator = one(objects, "Deployment", POPULATOR)
    assert populator["spec"]["replicas"] == 3
    (found,) = populator["spec"]["template"]["spec"]["containers"]
    assert found["imagePullPolicy"] == "Always"
    assert found["resources"] == resources
    assert found["args"][-1] == "--takeover-delay=4.5"
    assert container(objects, CONTROLLER)["imagePullPolicy"] == "IfNotPresent"

    off = render({"launcherPopulator": {"enabled": False}})
    assert [d["metadata"]["name"] for d in of_kind(off, "Deployment")] == [CONTROLLER]


def test_global_image_values_choose_registry_tag_and_pulls(render: Render) -> None:
    default = container(render(), CONTROLLER)["image"]
    assert default == f"{FMA_IMAGE}:{fma.__version__}"
    objects = render(
        {
            "global": {
                "imageRegistry": "my-registry.example/mirror/",
                "imageTag": "v9",
                "local": True,
            }
        }
    )
    for name in (CONTROLLER, POPULATOR):
        found = container(objects, name)
        assert found["image"] == "my-registry.example/mirror/fma:v9"
        assert found["imagePullPolicy"] == "Never"
    only_tag = container(render({"global": {"imageTag": "v9"}}), CONTROLLER)
    assert only_tag["image"] == f"{FMA_IMAGE}:v9"


def test_a_node_view_cluster_role_replaces_the_charts_node_rights(render: Render) -> None:
    objects = render({"global": {"nodeViewClusterRole": "node-viewer"}})
    assert not [r for r in of_kind(objects, "ClusterRole")]  # nothing else cluster-wide to grant
    (binding,) = of_kind(objects, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "node-viewer",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": CONTROLLERS_SA, "namespace": NAMESPACE}
    ]
    with_epp = render(
        {"global": {"nodeViewClusterRole": "node-viewer"}, "modelService": {"eppClusterRole": "e"}}
    )
    (own,) = of_kind(with_epp, "ClusterRole")
    assert [rule["resources"] for rule in own["rules"]] == [["clusterroles"]]
    assert len(of_kind(with_epp, "ClusterRoleBinding")) == 2


def test_upstreams_sleeper_and_debug_values_are_accepted(render: Render) -> None:
    objects = render(
        {"dualPodsController": {"enabled": True, "sleeperLimit": 2, "debugAcceleratorMemory": True}}
    )
    assert container(objects, CONTROLLER)["args"] == container(render(), CONTROLLER)["args"]


def refusal(helm: Helm, tmp_path: Path, values: dict[str, Any]) -> str:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    done = helm("template", RELEASE, str(CHART), "--values", str(path))
    assert done.returncode != 0, f"accepted: {values}"
    assert "Traceback" not in done.stderr
    return done.stderr


def test_turning_the_dual_pods_controller_off_is_refused_saying_why(
    helm: Helm, tmp_path: Path
) -> None:
    message = refusal(helm, tmp_path, {"dualPodsController": {"enabled": False}})
    assert "dualPodsController.enabled=false" in message
    assert "nothing would serve requesters" in message


def test_a_populator_without_leader_election_is_refused_saying_why(
    helm: Helm, tmp_path: Path
) -> None:
    message = refusal(
        helm, tmp_path, {"controller": {"leaderElection": {"enabled": False, "leaseName": "x"}}}
    )
    assert "would otherwise all act at once" in message


def test_bad_upstream_values_are_refused_naming_the_field(helm: Helm, tmp_path: Path) -> None:
    for values, named in (
        ({"dualPodsController": {"sleeperLimit": "two"}}, "/dualPodsController/sleeperLimit"),
        ({"dualPodsController": {"sleeperLimit": -1}}, "/dualPodsController/sleeperLimit"),
        ({"launcherPopulator": {"replicaCount": -1}}, "/launcherPopulator/replicaCount"),
        ({"launcherPopulator": {"pullPolicy": "Sometimes"}}, "/launcherPopulator/pullPolicy"),
        ({"global": {"local": "yes"}}, "/global/local"),
        ({"dualPodsController": {"image": {"tag": "x"}}}, "'image' not allowed"),
    ):
        assert named in refusal(helm, tmp_path, values), values
