"""The project's CRDs (``crds/*.yaml``) on a real apiserver: accepted, and their schemas bite."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from fma.api.constants import GROUP, MS_GROUP, VERSION
from fma.testcluster.cluster import kubectl
from fma.testcluster.state import LocalCluster
from fma.testcluster.wait import wait_until

pytestmark = pytest.mark.integration

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"
TIMEOUT = 60.0


def _crd_files() -> list[Path]:
    files = sorted(CRD_DIR.glob("*.yaml"))
    if not files:
        pytest.fail(f"{CRD_DIR} holds no *.yaml: generate the CRDs with `make crds`")
    return files


def _crds() -> list[dict[str, Any]]:
    docs = []
    for path in _crd_files():
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return [d for d in docs if d.get("kind") == "CustomResourceDefinition"]


def _install(testcluster: LocalCluster, api: Any, crds: list[dict[str, Any]]) -> None:
    """Apply ``crds`` and wait until each is Established."""
    ext = client.ApiextensionsV1Api(api)
    for crd in crds:
        proc = kubectl(testcluster, "apply", "-f", "-", stdin=yaml.safe_dump(crd), check=False)
        assert proc.returncode == 0, proc.stderr

    def established() -> bool:
        for crd in crds:
            got = ext.read_custom_resource_definition(crd["metadata"]["name"])
            conds = got.status.conditions or []
            if not any(c.type == "Established" and c.status == "True" for c in conds):
                return False
        return True

    wait_until(established, timeout=TIMEOUT, what="the CRDs to be Established")


def _plural(crds: list[dict[str, Any]], kind: str) -> str:
    for crd in crds:
        if crd["spec"]["names"]["kind"] == kind:
            return str(crd["spec"]["names"]["plural"])
    raise AssertionError(f"no CRD of kind {kind} in {CRD_DIR}")


def _rejected(custom: Any, plural: str, namespace: str, obj: dict[str, Any]) -> ApiException:
    with pytest.raises(ApiException) as exc:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, obj)
    assert exc.value.status == 422, exc.value.body
    return exc.value


def test_crds_pass_server_side_dry_run(testcluster: LocalCluster) -> None:
    _crd_files()
    proc = kubectl(testcluster, "apply", "--dry-run=server", "-f", str(CRD_DIR), check=False)
    assert proc.returncode == 0, proc.stderr
    assert "(server dry run)" in proc.stdout


def test_crds_are_accepted_and_reject_malformed_objects(
    testcluster: LocalCluster, api: Any, namespace: str
) -> None:
    crds = _crds()
    kinds = {crd["spec"]["names"]["kind"] for crd in crds}
    assert {"InferenceServerConfig", "LauncherConfig", "LauncherPopulationPolicy"} <= kinds
    assert {crd["spec"]["group"] for crd in crds} == {GROUP, MS_GROUP}
    _install(testcluster, api, crds)
    custom = client.CustomObjectsApi(api)
    plural = _plural(crds, "InferenceServerConfig")
    good = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceServerConfig",
        "metadata": {"name": "ok"},
        "spec": {"modelServerConfig": {"port": 8000}, "launcherConfigName": "lc"},
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, good)

    no_port = copy.deepcopy(good)
    no_port["metadata"]["name"] = "no-port"
    del no_port["spec"]["modelServerConfig"]["port"]
    err = _rejected(custom, plural, namespace, no_port)
    assert "spec.modelServerConfig.port" in err.body

    big_port = copy.deepcopy(good)
    big_port["metadata"]["name"] = "big-port"
    big_port["spec"]["modelServerConfig"]["port"] = 70000
    err = _rejected(custom, plural, namespace, big_port)
    assert "spec.modelServerConfig.port" in err.body


def test_a_launcher_config_keeps_its_whole_pod_template(
    testcluster: LocalCluster, api: Any, namespace: str
) -> None:
    """The Pod template is free-form in the schema: the API server must store it whole (a
    structural-schema slip once made it prune every nested field), and an ISC's weightsSize
    is an int-or-string quantity."""
    crds = _crds()
    _install(testcluster, api, crds)
    custom = client.CustomObjectsApi(api)
    container = {
        "name": "inference-server",
        "image": "ghcr.io/llm-d-fma/fma:dev",
        "args": ["launcher", "serve", "--engine", "stub"],
        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
    }
    lc = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LauncherConfig",
        "metadata": {"name": "whole"},
        "spec": {"maxInstances": 2, "podTemplate": {"spec": {"containers": [container]}}},
    }
    plural = _plural(crds, "LauncherConfig")
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, lc)
    stored = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, "whole")
    assert stored["spec"]["podTemplate"]["spec"]["containers"] == [container]
    isc = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceServerConfig",
        "metadata": {"name": "sized"},
        "spec": {
            "modelServerConfig": {"port": 8005, "weightsSize": "16Gi"},
            "launcherConfigName": "whole",
        },
    }
    isc_plural = _plural(crds, "InferenceServerConfig")
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, isc_plural, isc)
    got = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, isc_plural, "sized")
    assert got["spec"]["modelServerConfig"]["weightsSize"] == "16Gi"


WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.testcluster.fma.llm-d.ai"},
    "spec": {
        "group": "testcluster.fma.llm-d.ai",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "required": ["spec"],
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["port"],
                                "properties": {
                                    "port": {"type": "integer", "minimum": 1, "maximum": 65535}
                                },
                            }
                        },
                    }
                },
            }
        ],
    },
}


def test_any_crd_schema_is_enforced(testcluster: LocalCluster, api: Any, namespace: str) -> None:
    """The apiserver's structural-schema validation works, independently of the project's CRDs."""
    _install(testcluster, api, [WIDGET_CRD])
    custom = client.CustomObjectsApi(api)
    group, version, plural = "testcluster.fma.llm-d.ai", "v1", "widgets"

    def widget(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": f"{group}/{version}",
            "kind": "Widget",
            "metadata": {"name": name},
            "spec": spec,
        }

    custom.create_namespaced_custom_object(
        group, version, namespace, plural, widget("a", {"port": 80})
    )
    for name, spec in (("b", {}), ("c", {"port": 70000})):
        with pytest.raises(ApiException) as exc:
            custom.create_namespaced_custom_object(
                group, version, namespace, plural, widget(name, spec)
            )
        assert exc.value.status == 422 and "spec.port" in exc.value.body
