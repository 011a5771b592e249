"""The chart grants exactly what the code calls: every Kubernetes API call in the operator
(its informer's lists, Kopf's watches, the executor's writes, the Lease) and in the launcher is
found in the source, turned into (API group, resource, verb), and compared with the rendered
Roles — nothing missing (the operator would be denied) and nothing more (least privilege).

A new API call without its rule in ``charts/fma/templates/rbac.yaml`` fails here.
"""

import re
from pathlib import Path
from typing import Any

from kubernetes import client

from fma.adapters.k8s.executor import PLURALS
from fma.adapters.k8s.modelservice import controller as ms_controller
from fma.adapters.k8s.modelservice.kinds import CHILDREN, EVENT, MODELSERVICE, Resource
from fma.adapters.k8s.operator import WATCHED
from fma.api.constants import CONFIGMAP_GPU_MAP
from tests.unit.chart.conftest import RELEASE, Render, one

ROOT = Path(__file__).resolve().parents[3]
Grant = tuple[str, str, str]
"""(API group, resource, verb)."""

CALL = re.compile(r"\.((?:list|read|create|patch|replace|delete)_[a-z_]+)\b")
VERBS = {"list": "list", "read": "get", "create": "create", "patch": "patch",
         "replace": "update", "delete": "delete"}  # fmt: skip
# The API classes the code uses, by group; a method both have (create_namespaced_event) is
# the first's: the operator writes core/v1 Events.
APIS: tuple[tuple[type, str], ...] = (
    (client.CoreV1Api, ""),
    (client.CoordinationV1Api, "coordination.k8s.io"),
)


def api_calls(package: str) -> set[str]:
    """The Kubernetes client methods the package's source calls."""
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        found |= set(CALL.findall(path.read_text()))
    kinds = (*(api for api, _ in APIS), client.CustomObjectsApi)
    return {name for name in found if any(hasattr(api, name) for api in kinds)}


CUSTOM = [(group, plural) for group, _, plural in WATCHED.values() if group]
"""FMA's own kinds the operator watches."""


def grants_of_call(name: str) -> set[Grant]:
    """What one client method needs. Custom objects: the operator lists what it watches and
    writes the status of the kinds its executor does (the plurals are the code's own)."""
    if name == "list_namespaced_custom_object":
        return {(group, plural, "list") for group, plural in CUSTOM}
    if name == "patch_namespaced_custom_object_status":
        return {(g, f"{p}/status", "patch") for g, p in CUSTOM if p in PLURALS.values()}
    verb = VERBS[name.split("_", 1)[0]]
    group = next(group for api, group in APIS if hasattr(api, name))
    kind = name.split("_", 1)[1].removeprefix("namespaced_")
    status = kind.endswith("_status")
    resource = kind.removesuffix("_status").replace("_", "") + "s"
    return {(group, resource + ("/status" if status else ""), verb)}


MODELSERVICE_CALLS: dict[str, tuple[tuple[Resource, ...], tuple[str, ...]]] = {
    "list_items": (ms_controller.WATCHED, ("list",)),
    "get": (CHILDREN, ("get",)),
    "apply": (CHILDREN, ("create", "patch")),  # server-side apply creates what is missing
    "delete": (CHILDREN, ("delete",)),
    "set_owner_references": (CHILDREN, ("patch",)),
    "create": ((EVENT,), ("create",)),
}
"""What each call of the ModelService reconciler's client needs (``kube.<call>``)."""


def used_by_modelservices() -> set[Grant]:
    """The ModelService reconciler's calls (through its own client), and Kopf's watches: it
    runs inside the operator, with its rights."""
    package = ROOT / "fma" / "adapters" / "k8s" / "modelservice"
    calls = {
        c
        for path in package.glob("*.py")
        for c in re.findall(r"\bkube\.([a-z_]+)\b", path.read_text())
    }
    used: set[Grant] = set()
    if "patch_status" in calls:
        calls.discard("patch_status")
        used.add((MODELSERVICE.group, f"{MODELSERVICE.plural}/status", "patch"))
    for call in calls:
        assert call in MODELSERVICE_CALLS, f"teach this test what kube.{call} needs"
        resources, verbs = MODELSERVICE_CALLS[call]
        used |= {(r.group, r.plural, verb) for r in resources for verb in verbs}
    return used | {(r.group, r.plural, "watch") for r in ms_controller.WATCHED}


def used_by_operator() -> set[Grant]:
    used = {grant for name in api_calls("fma/adapters/k8s") for grant in grants_of_call(name)}
    # Kopf lists, then watches, every kind the operator watches.
    used |= {
        (group, plural, verb) for group, _, plural in WATCHED.values() for verb in ("list", "watch")
    }
    return used | used_by_modelservices()


def granted(rules: list[dict[str, Any]]) -> set[Grant]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_the_operator_is_granted_exactly_what_it_calls(render: Render) -> None:
    objects = render()
    role = one(objects, "Role", f"{RELEASE}-fma-controllers")["rules"]
    cluster = one(objects, "ClusterRole", f"{RELEASE}-fma-system-fma-controllers")["rules"]
    used = used_by_operator()
    assert ("", "nodes", "watch") in used and ("", "pods", "delete") in used  # the scan works
    assert granted(role) | granted(cluster) == used
    assert granted(cluster) == {g for g in used if g[1] == "nodes"}  # cluster-scoped only


def test_the_lease_is_read_and_renewed_by_name_only(render: Render) -> None:
    rules = one(render(), "Role", f"{RELEASE}-fma-controllers")["rules"]
    by_name = [r for r in rules if r.get("resourceNames")]
    assert by_name == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["fma-controller"],
            "verbs": ["get", "update"],
        }
    ]


def test_the_endpoint_pickers_cluster_role_may_be_bound_and_no_other(render: Render) -> None:
    objects = render({"modelService": {"eppClusterRole": "epp-reader"}})
    rules = one(objects, "ClusterRole", f"{RELEASE}-fma-system-fma-controllers")["rules"]
    assert [r for r in rules if r["resources"] == ["clusterroles"]] == [
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["clusterroles"],
            "resourceNames": ["epp-reader"],
            "verbs": ["bind"],
        }
    ]
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    assert len(deployments) == 2
    for deployment in deployments:
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        assert "--epp-cluster-role=epp-reader" in args


def test_the_launcher_is_granted_exactly_the_gpu_map(render: Render) -> None:
    used = {grant for name in api_calls("fma/launcher") for grant in grants_of_call(name)}
    (rule,) = one(render(), "Role", f"{RELEASE}-fma-launcher")["rules"]
    assert granted([rule]) == used == {("", "configmaps", "get")}
    assert rule["resourceNames"] == [CONFIGMAP_GPU_MAP]
