"""The ModelService's side of every child: overlays to merge onto base objects, and the
objects it makes on its own (ServiceAccounts, the EPP's RoleBinding).

Overlays carry only what the ModelService decides: names, namespace, labels and selectors,
replicas, containers, node affinity, the ServiceAccount and the model volume. The merge
(:mod:`fma.modelservice.merge`) puts them onto the base. Owner references are added last, by
:func:`owned`, so that every child, whatever its origin, is owned the same way.
"""

import copy
from typing import Any, Final

from fma.api.constants import MS_API_VERSION
from fma.api.modelservice import AcceleratorTypes, ContainerSpec, ModelService, ModelServicePodSpec
from fma.modelservice.merge import with_key_order
from fma.modelservice.names import ChildNames, common_labels, epp_labels, pod_labels
from fma.modelservice.uris import ModelSource

Obj = dict[str, Any]
RBAC_GROUP: Final = "rbac.authorization.k8s.io"
_META_ORDER: Final = (
    "name",
    "generateName",
    "namespace",
    "labels",
    "annotations",
    "ownerReferences",
)
_TOP_ORDER: Final = ("apiVersion", "kind", "metadata")


def owner_references(owner: str, uid: str | None) -> list[Obj]:
    """The owner reference to ModelService ``owner``; none while its uid is unknown.

    Upstream's dry run prints references with an empty uid, which the API server rejects;
    without a uid there is nothing to refer to, so nothing is written.
    """
    if not uid:
        return []
    return [{"apiVersion": MS_API_VERSION, "kind": "ModelService", "name": owner, "uid": uid}]


def owned(obj: Obj, owner: str, uid: str | None) -> Obj:
    """``obj`` owned by ModelService ``owner`` (other owners kept), keys in a tidy order."""
    out = copy.deepcopy(obj)
    metadata = out.setdefault("metadata", {})
    refs = [
        r
        for r in metadata.get("ownerReferences") or []
        if not (r.get("kind") == "ModelService" and r.get("name") == owner)
    ] + owner_references(owner, uid)
    if refs:
        metadata["ownerReferences"] = refs
    out["metadata"] = with_key_order(metadata, _META_ORDER)
    if out.get("kind") == "Deployment" and isinstance(out.get("spec"), dict):
        spec = with_key_order(out["spec"], ("replicas", "selector", "template"))
        if isinstance(spec.get("template"), dict):
            spec["template"] = with_key_order(spec["template"], ("metadata", "spec"))
        out["spec"] = spec
    return with_key_order(out, _TOP_ORDER)


def metadata(name: str, namespace: str, labels: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = dict(labels)
    return meta


def node_affinity(accelerators: AcceleratorTypes | None) -> Obj | None:
    """A required node affinity to nodes of the given accelerator types."""
    if accelerators is None:
        return None
    expression = {
        "key": accelerators.label_key,
        "operator": "In",
        "values": list(accelerators.label_values),
    }
    terms = [{"matchExpressions": [expression]}]
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}
        }
    }


def container_overlay(spec: ContainerSpec, model: ModelSource | None = None) -> Obj:
    """One container as the ModelService gives it; with ``model`` and ``mountModelVolume``,
    also the model mount and the URI's env (added to the container's own env, which upstream
    drops: its own entries win on a shared name)."""
    container: Obj = {"name": spec.name}
    if spec.image:
        container["image"] = spec.image
    if spec.command:
        container["command"] = list(spec.command)
    if spec.args:
        container["args"] = list(spec.args)
    env = [e.model_dump(by_alias=True, exclude_none=True) for e in spec.env or []]
    if model is not None and spec.mount_model_volume:
        container["volumeMounts"] = [dict(model.mount)]
        own = {e["name"] for e in env}
        env += [copy.deepcopy(e) for e in model.env if e["name"] not in own]
    if env:
        container["env"] = env
    if spec.env_from:
        container["envFrom"] = [
            e.model_dump(by_alias=True, exclude_none=True) for e in spec.env_from
        ]
    if spec.resources is not None:
        resources = spec.resources.model_dump(by_alias=True, exclude_none=True)
        if resources:
            container["resources"] = resources
    return container


def _deployment(
    name: str,
    namespace: str,
    labels: dict[str, str],
    spec: ModelServicePodSpec | None,
    pod: Obj,
    model: ModelSource | None,
) -> Obj:
    """A Deployment overlay: ``spec``'s replicas and containers (none when the stanza is
    absent), ``labels`` on it, its selector and its Pods, and the given Pod fields."""
    pod_spec: Obj = {}
    deployment_spec: Obj = {}
    if spec is not None:
        if spec.init_containers:
            pod_spec["initContainers"] = [container_overlay(c, model) for c in spec.init_containers]
        if spec.containers:
            pod_spec["containers"] = [container_overlay(c, model) for c in spec.containers]
        if spec.replicas is not None:
            deployment_spec["replicas"] = spec.replicas
    pod_spec.update(pod)
    deployment_spec["selector"] = {"matchLabels": dict(labels)}
    deployment_spec["template"] = {"metadata": {"labels": dict(labels)}, "spec": pod_spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(name, namespace, labels),
        "spec": deployment_spec,
    }


def pd_overlay(
    msvc: ModelService,
    role: str,
    spec: ModelServicePodSpec | None,
    accelerators: AcceleratorTypes | None,
    namespace: str,
    model: ModelSource,
) -> Obj:
    """The prefill or decode Deployment as the ModelService says it."""
    names = ChildNames(msvc.metadata.name)
    pod: Obj = {}
    affinity = node_affinity(accelerators)
    if affinity is not None:
        pod["affinity"] = affinity
    pod["serviceAccountName"] = names.pd_service_account
    pod["volumes"] = [dict(model.volume)]
    labels = pod_labels(msvc.spec.routing.model_name, role)
    return _deployment(names.deployment(role), namespace, labels, spec, pod, model)


def epp_overlay(msvc: ModelService, namespace: str) -> Obj:
    """The endpoint picker Deployment as the ModelService says it (no templating, no model)."""
    names = ChildNames(msvc.metadata.name)
    pod = {"serviceAccountName": names.epp_service_account}
    spec = msvc.spec.endpoint_picker
    return _deployment(names.epp_deployment, namespace, epp_labels(names), spec, pod, None)


def service_overlay(
    name: str, namespace: str, selector: dict[str, str], labels: dict[str, str] | None = None
) -> Obj:
    """A Service's name, namespace, labels and selector (merged with the base selector)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name, namespace, labels),
        "spec": {"selector": dict(selector)},
    }


def service_account(name: str, namespace: str, pull_secrets: tuple[str, ...]) -> Obj:
    account: Obj = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(name, namespace),
    }
    if pull_secrets:
        account["imagePullSecrets"] = [{"name": s} for s in pull_secrets]
    return account


def epp_role_binding(names: ChildNames, namespace: str, cluster_role: str) -> Obj:
    """Binds the EPP's ServiceAccount to the ClusterRole the EPP needs (``--epp-cluster-role``)."""
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "RoleBinding",
        "metadata": metadata(names.epp_role_binding, namespace),
        "subjects": [
            {"kind": "ServiceAccount", "name": names.epp_service_account, "namespace": namespace}
        ],
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": cluster_role},
    }


def inference_pool_overlay(msvc: ModelService, namespace: str) -> Obj:
    names = ChildNames(msvc.metadata.name)
    return {
        "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
        "kind": "InferencePool",
        "metadata": metadata(names.inference_pool, namespace),
        "spec": {
            "selector": common_labels(msvc.spec.routing.model_name),
            "extensionRef": {"name": names.epp_service},
        },
    }


def inference_model_overlay(msvc: ModelService, namespace: str) -> Obj:
    """The InferenceModel's fields; its labels are added to the base's (upstream replaces
    them, dropping the base's)."""
    names = ChildNames(msvc.metadata.name)
    return {
        "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
        "kind": "InferenceModel",
        "metadata": metadata(
            names.inference_model, namespace, common_labels(msvc.spec.routing.model_name)
        ),
        "spec": {
            "modelName": msvc.spec.routing.model_name,
            "poolRef": {"name": names.inference_pool},
        },
    }


def http_route_overlay(msvc: ModelService, namespace: str) -> Obj:
    names = ChildNames(msvc.metadata.name)
    route: Obj = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": metadata(names.http_route, namespace),
    }
    refs = msvc.spec.routing.gateway_refs or []
    if refs:
        route["spec"] = {
            "parentRefs": [r.model_dump(by_alias=True, exclude_none=True) for r in refs]
        }
    return route


def config_map_overlay(namespace: str) -> Obj:
    """ConfigMaps keep the base's name; only a missing namespace is filled in."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": namespace}}
