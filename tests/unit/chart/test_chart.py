"""The chart: lint, files generated from the code and in step with it, values checked by the
schema, and what each toggle renders."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import fma
from fma.api.constants import CONTROLLER_USER_PATTERN, FMA_IMAGE, GROUP, LABEL_COMPONENT
from fma.api.crdgen import KINDS, crd_manifest
from fma.api.policygen import policy_manifests
from tests.unit.chart.conftest import CHART, NAMESPACE, RELEASE, Helm, Render, of_kind, one

CONTROLLER = f"{RELEASE}-dual-pods-controller"
CONTROLLERS_SA = f"{RELEASE}-fma-controllers"


def test_the_chart_lints_clean(helm: Helm) -> None:
    done = helm("lint", str(CHART), "--strict")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_crds_are_fmas_and_the_modelservice_as_fma_crds_makes_them() -> None:
    expected = {
        f"{info.plural}.yaml": yaml.safe_dump(crd_manifest(info), sort_keys=False) for info in KINDS
    }
    assert {info.group for info in KINDS} == {GROUP, "llm-d.ai"}
    assert "modelservices.yaml" in expected
    found = {path.name: path.read_text() for path in (CHART / "crds").glob("*.yaml")}
    assert found == expected, "charts/fma/crds differs from `fma crds`: run `make crds`"


def test_the_admission_policies_are_fma_policies_output() -> None:
    generated = (CHART / "files" / "admission-policies.yaml").read_text()
    assert generated == yaml.safe_dump_all(policy_manifests(), sort_keys=False), (
        "charts/fma/files/admission-policies.yaml differs from `fma policies`: run `make crds`"
    )


def test_the_chart_renders_the_policies_it_ships(render: Render) -> None:
    rendered = [o for o in render() if o["apiVersion"].startswith("admissionregistration.k8s.io/")]

    def by_name(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(manifests, key=lambda m: (m["kind"], m["metadata"]["name"]))

    assert by_name(rendered) == by_name(policy_manifests())


def test_the_policies_exempt_the_charts_service_account(render: Render) -> None:
    for namespace in ("fma-system", "team-a"):
        objects = render(release="prod", namespace=namespace)
        (account,) = [
            sa["metadata"]["name"]
            for sa in of_kind(objects, "ServiceAccount")
            if sa["metadata"]["name"].endswith("-fma-controllers")
        ]
        deployment = one(objects, "Deployment", "prod-dual-pods-controller")
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == account
        assert re.match(CONTROLLER_USER_PATTERN, f"system:serviceaccount:{namespace}:{account}")


def test_the_operator_deployment(render: Render) -> None:
    deployment = one(render(), "Deployment", CONTROLLER)
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"][LABEL_COMPONENT] == "dual-pods-controller"
    assert deployment["spec"]["selector"]["matchLabels"][LABEL_COMPONENT] == "dual-pods-controller"
    (container,) = pod["spec"]["containers"]
    assert container["image"] == f"{FMA_IMAGE}:{fma.__version__}"
    assert container["args"][:3] == ["operator", "run", f"--namespace={NAMESPACE}"]
    assert "--leader-elect" in container["args"]
    assert "--lease-name=fma-controller" in container["args"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8081, "metrics": 8002}
    assert "--health-port=8081" in container["args"]
    assert "--metrics-port=8002" in container["args"]
    # A standby is ready (a rolling update's new replica must be, before the old one goes).
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_the_chart_version_and_the_image_tag_follow_the_package() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == fma.__version__


def test_toggles_turn_their_objects_off(render: Render) -> None:
    objects = render(
        {
            "admissionPolicies": {"enabled": False},
            "launcher": {"serviceAccount": {"create": False, "name": "fma-launcher"}},
            "controller": {"leaderElection": {"enabled": False, "leaseName": "x"}},
            "launcherPopulator": {
                "enabled": False,
                "replicaCount": 1,
                "takeoverDelaySeconds": 10,
            },
        }
    )
    kinds = {o["kind"] for o in objects}
    assert not kinds & {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    assert [sa["metadata"]["name"] for sa in of_kind(objects, "ServiceAccount")] == [CONTROLLERS_SA]
    role = one(objects, "Role", CONTROLLERS_SA)
    assert not [r for r in role["rules"] if "coordination.k8s.io" in r["apiGroups"]]
    (container,) = one(objects, "Deployment", CONTROLLER)["spec"]["template"]["spec"]["containers"]
    assert "--no-leader-elect" in container["args"]
    assert not [a for a in container["args"] if a.startswith("--lease-name")]


def test_optional_objects_turn_on(render: Render) -> None:
    gpus = {"gpu-node-0": {"GPU-a": 0, "GPU-b": 1}}
    objects = render({"gpuMap": gpus, "monitoring": {"podMonitors": {"enabled": True}}})
    data = one(objects, "ConfigMap", "gpu-map")["data"]
    assert {node: yaml.safe_load(text) for node, text in data.items()} == gpus
    monitors = {m["metadata"]["name"]: m for m in of_kind(objects, "PodMonitor")}
    launchers = monitors[f"{RELEASE}-launchers"]["spec"]
    assert launchers["selector"]["matchLabels"] == {LABEL_COMPONENT: "launcher"}
    assert launchers["podMetricsEndpoints"][0]["port"] == "launcher"
    controller = monitors[CONTROLLER]["spec"]
    assert controller["podMetricsEndpoints"][0]["port"] == "metrics"


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"controller": {"replica": 2}}, "'replica' not allowed"),
        ({"controller": {"replicas": "two"}}, "/controller/replicas"),
        ({"controller": {"metricsPort": 70000}}, "/controller/metricsPort"),
        ({"controller": {"logLevel": "chatty"}}, "/controller/logLevel"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"gpuMap": {"node-a": {"GPU-a": -1}}}, "/gpuMap/node-a/GPU-a"),
        ({"admissionPolicy": {"enabled": False}}, "'admissionPolicy' not allowed"),
    ],
)
def test_bad_values_are_refused_naming_the_field(
    helm: Helm, tmp_path: Path, values: dict[str, Any], named: str
) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    done = helm("template", RELEASE, str(CHART), "--values", str(path))
    assert done.returncode != 0
    assert named in done.stderr
    assert "Traceback" not in done.stderr
