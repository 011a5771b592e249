"""Launcher Pods from a LauncherConfig (upstream's labels, annotations and hashes).

A LauncherConfig's Pod template becomes one launcher Pod per (node, launch): the template's
metadata and spec, what is individual to a Pod removed, FMA's labels and annotations added,
the ``inference-server`` container made a launcher (its environment, probes, port, and no
GPUs of its own: it sees all of the node's through ``NVIDIA_VISIBLE_DEVICES=all``), and the
Pod pinned to its node with a ``nodeSelector``.

Unlike upstream, there is no notifier sidecar: FMA follows the launcher's watch stream
instead of polling for annotation churn. Probes the template sets are kept.

Two hashes identify a launcher's template (both in annotations):

- the *template hash*, node-independent, over the canonical template (see
  :func:`launcher_template_hash`): a launcher whose hash differs from its LauncherConfig's is
  stale;
- the *launcher-config hash*, the template hash specialised to a node: the key the controller
  matches launchers by.
"""

import copy
from collections.abc import Callable, Mapping
from typing import Any, Final

from fma.adapters.k8s.render.binding import Binding
from fma.adapters.k8s.render.errors import RenderError, key_path
from fma.adapters.k8s.render.hashing import canonical_json, sha256_base64, sha256_base64url
from fma.adapters.k8s.render.names import generate_name, label_value_problem
from fma.adapters.k8s.render.podspec import (
    annotations_problems,
    containers,
    deindividualized,
    find_container,
    labels_problems,
    pod_spec_problems,
    set_env,
    zero_gpus,
)
from fma.api.constants import (
    ANN_ACTUATION_PATH,
    ANN_BOUND_AT,
    ANN_INSTANCE_ID,
    ANN_LAUNCHER_CONFIG_HASH,
    ANN_LAUNCHER_TEMPLATE_HASH,
    ANN_REQUESTER,
    API_VERSION,
    COMPONENT_LAUNCHER,
    CONTAINER_INFERENCE_SERVER,
    ENV_NAMESPACE,
    ENV_NODE_NAME,
    FINALIZER_PROVIDER,
    KIND_LAUNCHER_CONFIG,
    LABEL_COMPONENT,
    LABEL_DUAL,
    LABEL_HOSTNAME,
    LABEL_LAUNCHER_CONFIG_NAME,
    LABEL_NODE_NAME,
    LABEL_SLEEPING,
    LAUNCHER_CONTAINER_ENV,
    LAUNCHER_PORT,
    LAUNCHER_PORT_NAME,
    RESERVED_KEY_PREFIXES,
    RESOURCE_GPU,
)
from fma.api.crds import LauncherConfig
from fma.launcher.api import HEALTH_PATH, INSTANCES_PATH

Obj = dict[str, Any]

SPEC_PATH: Final = "spec.podTemplate.spec"
METADATA_PATH: Final = "spec.podTemplate.metadata"
FMA_PREFIX: Final = RESERVED_KEY_PREFIXES[0]
"""``dual-pods.llm-d.ai/``: FMA's own keys, which a template may not set."""

LIVENESS_PROBE: Final = {
    "httpGet": {"path": HEALTH_PATH, "port": LAUNCHER_PORT},
    "initialDelaySeconds": 10,
    "periodSeconds": 20,
    "timeoutSeconds": 1,
    "failureThreshold": 3,
}
READINESS_PROBE: Final = {
    "httpGet": {"path": INSTANCES_PATH, "port": LAUNCHER_PORT},
    "initialDelaySeconds": 2,
    "periodSeconds": 5,
    "timeoutSeconds": 2,
    "failureThreshold": 3,
}
"""Ready once the launcher lists its instances: the controller asks nothing of it before."""


def launcher_template_problems(lc: LauncherConfig) -> tuple[str, ...]:
    """What makes the LauncherConfig's Pod template unusable, each one line naming the field
    (``spec.podTemplate.spec.containers: no container named inference-server``); () when a
    launcher Pod can be rendered from it."""
    problems: list[str] = []
    name_problem = label_value_problem(lc.metadata.name)
    if name_problem:
        problems.append(
            f"metadata.name: is the launchers' {LABEL_LAUNCHER_CONFIG_NAME} label, which "
            f"{name_problem}"
        )
    template = lc.spec.pod_template
    if template is None or template.spec is None:
        problems.append(
            f"{SPEC_PATH}: required: a Pod spec with a container named {CONTAINER_INFERENCE_SERVER}"
        )
        return tuple(problems)
    if template.metadata is not None:
        problems += _metadata_problems(template.metadata.labels, "labels", labels_problems)
        problems += _metadata_problems(
            template.metadata.annotations, "annotations", annotations_problems
        )
    spec = template.spec
    problems += pod_spec_problems(spec, SPEC_PATH)
    if spec.get("nodeName"):
        problems.append(f"{SPEC_PATH}.nodeName: must not be set: FMA places each launcher")
    server = find_container(spec, CONTAINER_INFERENCE_SERVER)
    if server is None:
        if isinstance(spec.get("containers"), list):
            problems.append(
                f"{SPEC_PATH}.containers: no container named {CONTAINER_INFERENCE_SERVER}"
            )
    else:
        problems += _launcher_port_problems(server)
    return tuple(problems)


def _metadata_problems(
    values: Mapping[str, str] | None, kind: str, check: Callable[[Any, str], list[str]]
) -> list[str]:
    path = f"{METADATA_PATH}.{kind}"
    problems = check(values, path)
    for key in values or {}:
        if isinstance(key, str) and key.startswith(FMA_PREFIX):
            problems.append(f"{key_path(path, key)}: reserved prefix {FMA_PREFIX}")
    return problems


def _launcher_port_problems(server: Obj) -> list[str]:
    ports = server.get("ports")
    if not isinstance(ports, list):
        return []
    where = f"{SPEC_PATH}.containers[{CONTAINER_INFERENCE_SERVER}].ports"
    return [
        f"{where}: the port named {LAUNCHER_PORT_NAME} must be {LAUNCHER_PORT}"
        for port in ports
        if isinstance(port, dict)
        and port.get("name") == LAUNCHER_PORT_NAME
        and port.get("containerPort") != LAUNCHER_PORT
    ]


def launcher_template_hash(lc: LauncherConfig) -> str:
    """The node-independent hash of the LauncherConfig's Pod template: unpadded base64url of
    SHA-256 over the canonical JSON of ``{launcherConfig: <name>, metadata: {labels,
    annotations}, spec: <canonical spec>}``.

    The spec is canonicalised as upstream canonicalises it, so that an equivalent template hashes
    alike: the ServiceAccount token volume (and its mounts), ``nodeName`` and ephemeral
    containers are dropped; ``volumes``, ``tolerations``, ``imagePullSecrets`` and each
    container's (and init container's) ``volumeMounts``, ``ports`` and ``envFrom`` are sorted
    (by their canonical JSON). It is taken before FMA's injections, so it changes only when
    the user's template does. The LauncherConfig's name is part of it (upstream's hashed Pod
    carries it as a label): two LauncherConfigs with one template are not interchangeable,
    since their caps may differ.
    """
    template = lc.spec.pod_template
    metadata = template.metadata if template is not None else None
    spec = template.spec if template is not None and template.spec is not None else {}
    document = {
        "launcherConfig": lc.metadata.name,
        "metadata": {
            "labels": dict(metadata.labels or {}) if metadata else {},
            "annotations": dict(metadata.annotations or {}) if metadata else {},
        },
        "spec": canonical_template_spec(spec),
    }
    return sha256_base64url(canonical_json(document))


_SORTED_SPEC_LISTS: Final = ("volumes", "tolerations", "imagePullSecrets")
_SORTED_CONTAINER_LISTS: Final = ("volumeMounts", "ports", "envFrom")


def canonical_template_spec(spec: dict[str, Any]) -> Obj:
    """The template spec as it is hashed (see :func:`launcher_template_hash`)."""
    out = deindividualized(spec)
    for key in _SORTED_SPEC_LISTS:
        _sort_list(out, key)
    for kind in ("initContainers", "containers"):
        listed = out.get(kind)
        if isinstance(listed, list):
            for container in listed:
                if isinstance(container, dict):
                    for key in _SORTED_CONTAINER_LISTS:
                        _sort_list(container, key)
    return out


def _sort_list(holder: Obj, key: str) -> None:
    value = holder.get(key)
    if isinstance(value, list):
        holder[key] = sorted(value, key=canonical_json)


def launcher_config_hash(template_hash: str, node: str) -> str:
    """Upstream's ``launcher-config-hash``: unpadded base64 of SHA-256 over
    ``<template hash>;node=<node>``."""
    return sha256_base64(template_hash, ";node=", node)


def launcher_pod(
    lc: LauncherConfig,
    *,
    namespace: str,
    node: str,
    lc_uid: str | None,
    binding: Binding | None,
) -> Obj:
    """The launcher Pod a CreateLauncher action creates on ``node``.

    Metadata: ``generateName: launcher-<lc>-``; the template's labels and annotations, then
    FMA's labels (``app.kubernetes.io/component=launcher``, ``launcher-config-name``,
    ``node-name``, ``sleeping=true``: no instance is known awake) and annotations (the template
    and launcher-config hashes); with ``lc_uid``, an ownerReference to the LauncherConfig
    (not controller, not blocking deletion), so that launchers go with their LauncherConfig.
    With a ``binding`` (a launcher created for a requester) also: the ``requester``,
    ``instance-id``, ``actuation-path`` and ``bound-at`` annotations, the ``dual`` label and the
    provider finalizer, so that the population never takes it for a spare.

    Spec: the template's, without what is individual to a Pod, with
    ``nodeSelector[kubernetes.io/hostname]=<node>`` and no ``nvidia.com/gpu`` in the Pod
    overhead. The ``inference-server`` container is moved first (tools read a launcher's
    first container) and gets ``LAUNCHER_CONTAINER_ENV`` (overwriting), ``NODE_NAME`` and
    ``NAMESPACE`` from the downward API, ``nvidia.com/gpu: 0`` in those of its requests and
    limits that exist, the liveness and readiness probes unless the template sets them, and
    port 8001 named ``launcher`` unless it declares 8001.

    Raises :class:`RenderError` naming the LauncherConfig and the field when the template is
    unusable (:func:`launcher_template_problems`), or when the node or requester name cannot
    be a label value.
    """
    problems = launcher_template_problems(lc)
    if problems:
        raise RenderError(f"LauncherConfig {lc.metadata.name}: " + "; ".join(problems))
    _check_label_value(node, f"Node {node}", LABEL_NODE_NAME)
    template = lc.spec.pod_template
    assert template is not None and template.spec is not None  # checked above
    template_hash = launcher_template_hash(lc)

    labels: dict[str, str] = dict(template.metadata.labels or {}) if template.metadata else {}
    annotations: dict[str, str] = (
        dict(template.metadata.annotations or {}) if template.metadata else {}
    )
    labels |= {
        LABEL_COMPONENT: COMPONENT_LAUNCHER,
        LABEL_LAUNCHER_CONFIG_NAME: lc.metadata.name,
        LABEL_NODE_NAME: node,
        LABEL_SLEEPING: "true",
    }
    annotations |= {
        ANN_LAUNCHER_TEMPLATE_HASH: template_hash,
        ANN_LAUNCHER_CONFIG_HASH: launcher_config_hash(template_hash, node),
    }
    metadata: Obj = {
        "generateName": generate_name("launcher-", lc.metadata.name, "-"),
        "namespace": namespace,
        "labels": labels,
        "annotations": annotations,
    }
    if lc_uid:
        metadata["ownerReferences"] = [
            {
                "apiVersion": API_VERSION,
                "kind": KIND_LAUNCHER_CONFIG,
                "name": lc.metadata.name,
                "uid": lc_uid,
                "controller": False,
                "blockOwnerDeletion": False,
            }
        ]
    if binding is not None:
        _check_label_value(binding.requester_name, f"Pod {binding.requester_name}", LABEL_DUAL)
        annotations |= {
            ANN_REQUESTER: binding.requester_annotation,
            ANN_INSTANCE_ID: binding.instance_id,
            ANN_ACTUATION_PATH: str(binding.path),
            ANN_BOUND_AT: binding.bound_at,
        }
        labels[LABEL_DUAL] = binding.requester_name
        metadata["finalizers"] = [FINALIZER_PROVIDER]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": _launcher_spec(template.spec, node),
    }


def _check_label_value(value: str, who: str, label: str) -> None:
    problem = label_value_problem(value)
    if problem:
        raise RenderError(f"{who}: the name is the {label} label, which {problem}")


def _launcher_spec(template_spec: dict[str, Any], node: str) -> Obj:
    spec = deindividualized(copy.deepcopy(template_spec))
    spec["nodeSelector"] = {**(spec.get("nodeSelector") or {}), LABEL_HOSTNAME: node}
    overhead = spec.get("overhead")
    if isinstance(overhead, dict):
        overhead.pop(RESOURCE_GPU, None)
        if not overhead:
            del spec["overhead"]
    listed = containers(spec)
    server = next(c for c in listed if c.get("name") == CONTAINER_INFERENCE_SERVER)
    spec["containers"] = [server, *(c for c in listed if c is not server)]
    for name, value in LAUNCHER_CONTAINER_ENV.items():
        set_env(server, name, value)
    set_env(server, ENV_NODE_NAME, field_path="spec.nodeName")
    set_env(server, ENV_NAMESPACE, field_path="metadata.namespace")
    zero_gpus(server, create=False)
    if not server.get("livenessProbe"):
        server["livenessProbe"] = copy.deepcopy(LIVENESS_PROBE)
    if not server.get("readinessProbe"):
        server["readinessProbe"] = copy.deepcopy(READINESS_PROBE)
    ports = server.get("ports")
    if not isinstance(ports, list):
        ports = []
    if not any(isinstance(p, dict) and p.get("containerPort") == LAUNCHER_PORT for p in ports):
        ports.append({"name": LAUNCHER_PORT_NAME, "containerPort": LAUNCHER_PORT})
    server["ports"] = ports
    return spec
