"""The resources the ModelService reconciler reads and writes, and their API paths."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from fma.api.constants import GROUP, MS_GROUP, MS_VERSION, VERSION


@dataclass(frozen=True)
class Resource:
    """One namespaced API resource."""

    group: str
    version: str
    kind: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        path = f"{root}/namespaces/{namespace}/{self.plural}"
        if name is not None:
            path += f"/{name}"
        if subresource is not None:
            path += f"/{subresource}"
        return path


MODELSERVICE: Final = Resource(MS_GROUP, MS_VERSION, "ModelService", "modelservices")
CONFIGMAP: Final = Resource("", "v1", "ConfigMap", "configmaps")
DEPLOYMENT: Final = Resource("apps", "v1", "Deployment", "deployments")
EVENT: Final = Resource("", "v1", "Event", "events")

CHILDREN: Final = (
    CONFIGMAP,
    DEPLOYMENT,
    Resource("", "v1", "Service", "services"),
    Resource("", "v1", "ServiceAccount", "serviceaccounts"),
    Resource("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    Resource("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes"),
    Resource("inference.networking.x-k8s.io", "v1alpha2", "InferencePool", "inferencepools"),
    Resource("inference.networking.x-k8s.io", "v1alpha2", "InferenceModel", "inferencemodels"),
    Resource(GROUP, VERSION, "InferenceServerConfig", "inferenceserverconfigs"),
    Resource(GROUP, VERSION, "LauncherConfig", "launcherconfigs"),
    Resource(GROUP, VERSION, "LauncherPopulationPolicy", "launcherpopulationpolicies"),
)
"""Every kind a ModelService may own (what rendering produces); the reconciler watches them
and prunes, among them, only what carries the ModelService's owner reference."""

_BY_KIND: Final = {(r.group, r.kind): r for r in CHILDREN}


def resource_of(obj: Mapping[str, Any]) -> Resource:
    """The resource of a rendered or live child; ``KeyError`` for a kind not in CHILDREN."""
    group = str(obj.get("apiVersion") or "").rpartition("/")[0]
    return _BY_KIND[(group, str(obj.get("kind")))]
