"""Strict checks of a Pod's fields, and the small edits FMA makes to a Pod spec.

The checks stand in for the API server's strict decoding of a Pod (unknown fields are errors)
and for the validation that matters to FMA, so that a bad server patch or launcher template
is reported with the field at fault before anything is sent. Each problem is one line,
``<path>: <reason>``, with containers named by their name (``spec.containers[vllm].image``).

Field lists are those of ``k8s.io/api/core/v1`` (Kubernetes 1.34); a field newer than that is
reported as unknown.
"""

import copy
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from fma.adapters.k8s.render.errors import key_path
from fma.adapters.k8s.render.names import label_value_problem, qualified_name_problem
from fma.api.constants import RESOURCE_GPU

Obj = dict[str, Any]

POD_FIELDS: Final = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})
OBJECT_META_FIELDS: Final = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
POD_SPEC_FIELDS: Final = frozenset(
    {
        "volumes",
        "initContainers",
        "containers",
        "ephemeralContainers",
        "restartPolicy",
        "terminationGracePeriodSeconds",
        "activeDeadlineSeconds",
        "dnsPolicy",
        "nodeSelector",
        "serviceAccountName",
        "serviceAccount",
        "automountServiceAccountToken",
        "nodeName",
        "hostNetwork",
        "hostPID",
        "hostIPC",
        "shareProcessNamespace",
        "securityContext",
        "imagePullSecrets",
        "hostname",
        "hostnameOverride",
        "subdomain",
        "affinity",
        "schedulerName",
        "tolerations",
        "hostAliases",
        "priorityClassName",
        "priority",
        "dnsConfig",
        "readinessGates",
        "runtimeClassName",
        "enableServiceLinks",
        "preemptionPolicy",
        "overhead",
        "topologySpreadConstraints",
        "setHostnameAsFQDN",
        "os",
        "hostUsers",
        "schedulingGates",
        "resourceClaims",
        "resources",
    }
)
CONTAINER_FIELDS: Final = frozenset(
    {
        "name",
        "image",
        "command",
        "args",
        "workingDir",
        "ports",
        "envFrom",
        "env",
        "resources",
        "resizePolicy",
        "restartPolicy",
        "restartPolicyRules",
        "volumeMounts",
        "volumeDevices",
        "livenessProbe",
        "readinessProbe",
        "startupProbe",
        "lifecycle",
        "terminationMessagePath",
        "terminationMessagePolicy",
        "imagePullPolicy",
        "securityContext",
        "stdin",
        "stdinOnce",
        "tty",
    }
)
ENV_VAR_FIELDS: Final = frozenset({"name", "value", "valueFrom"})
PORT_FIELDS: Final = frozenset({"name", "containerPort", "hostPort", "hostIP", "protocol"})
RESOURCES_FIELDS: Final = frozenset({"limits", "requests", "claims"})

DRA_UNSUPPORTED: Final = (
    "dynamic resource allocation is not supported: ask for GPUs as nvidia.com/gpu"
)
"""FMA shares a node's GPUs between a requester and its provider through the device plugin's
``nvidia.com/gpu`` and ``NVIDIA_VISIBLE_DEVICES``; a claimed device cannot be shared so."""

API_ACCESS_VOLUME_RE: Final = re.compile(r"kube-api-access-[a-z0-9]+")
"""The ServiceAccount token volume the API server adds to every Pod: individual to a Pod."""


# --- reading -----------------------------------------------------------------------------------


def containers(spec: Mapping[str, Any]) -> list[Obj]:
    """The spec's containers that are maps (the checks report the others)."""
    found = spec.get("containers")
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def find_container(spec: Mapping[str, Any], name: str) -> Obj | None:
    """The container called ``name`` in ``spec.containers``, or None."""
    return next((c for c in containers(spec) if c.get("name") == name), None)


# --- checks ------------------------------------------------------------------------------------


def pod_problems(pod: Mapping[str, Any]) -> list[str]:
    """What is wrong with a whole Pod manifest (paths from the Pod's root)."""
    problems = [f"{key}: unknown field" for key in sorted(set(pod) - POD_FIELDS)]
    metadata = pod.get("metadata", {})
    if not isinstance(metadata, Mapping):
        problems.append("metadata: must be a map")
    else:
        problems += [
            f"metadata.{key}: unknown field" for key in sorted(set(metadata) - OBJECT_META_FIELDS)
        ]
        problems += labels_problems(metadata.get("labels"), "metadata.labels")
        problems += annotations_problems(metadata.get("annotations"), "metadata.annotations")
        problems += string_list_problems(metadata.get("finalizers"), "metadata.finalizers")
    spec = pod.get("spec")
    if not isinstance(spec, Mapping):
        problems.append("spec: must be a map")
    else:
        problems += pod_spec_problems(spec, "spec")
    return problems


def pod_spec_problems(spec: Mapping[str, Any], path: str) -> list[str]:
    """What is wrong with a PodSpec at ``path``: unknown fields, containers without a unique
    name or an image, mistyped fields FMA reads or writes, and resource claims (DRA)."""
    problems = [f"{path}.{key}: unknown field" for key in sorted(set(spec) - POD_SPEC_FIELDS)]
    problems += string_map_problems(spec.get("nodeSelector"), f"{path}.nodeSelector")
    if spec.get("resourceClaims"):
        problems.append(f"{path}.resourceClaims: {DRA_UNSUPPORTED}")
    names: set[str] = set()
    for kind in ("initContainers", "containers"):
        listed = spec.get(kind)
        if listed is None:
            if kind == "containers":
                problems.append(f"{path}.containers: required")
            continue
        if not isinstance(listed, list):
            problems.append(f"{path}.{kind}: must be a list of containers")
            continue
        if kind == "containers" and not listed:
            problems.append(f"{path}.containers: required")
        for index, container in enumerate(listed):
            problems += _container_problems(container, f"{path}.{kind}", index, names)
    for index, volume in enumerate(_list_or_report(spec, "volumes", path, problems)):
        if not isinstance(volume, Mapping) or not isinstance(volume.get("name"), str):
            problems.append(f"{path}.volumes[{index}]: must be a map with a name")
    return problems


def _list_or_report(spec: Mapping[str, Any], key: str, path: str, problems: list[str]) -> list[Any]:
    value = spec.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(f"{path}.{key}: must be a list")
        return []
    return value


def _container_problems(container: Any, path: str, index: int, names: set[str]) -> list[str]:
    if not isinstance(container, Mapping):
        return [f"{path}[{index}]: must be a map"]
    name = container.get("name")
    if not isinstance(name, str) or not name:
        return [f"{path}[{index}].name: required"]
    where = f"{path}[{name}]"
    problems = []
    if name in names:
        problems.append(f"{where}: duplicate container name")
    names.add(name)
    unknown = sorted(set(container) - CONTAINER_FIELDS)
    problems += [f"{where}.{key}: unknown field" for key in unknown]
    image = container.get("image")
    if not isinstance(image, str) or not image:
        problems.append(f"{where}.image: required")
    problems += string_list_problems(container.get("command"), f"{where}.command")
    problems += string_list_problems(container.get("args"), f"{where}.args")
    problems += _env_problems(container.get("env"), f"{where}.env")
    problems += _ports_problems(container.get("ports"), f"{where}.ports")
    problems += _resources_problems(container.get("resources"), f"{where}.resources")
    return problems


def _env_problems(env: Any, path: str) -> list[str]:
    if env is None:
        return []
    if not isinstance(env, list):
        return [f"{path}: must be a list"]
    problems = []
    for index, entry in enumerate(env):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            problems.append(f"{path}[{index}]: must be a map with a name")
            continue
        where = f"{path}[{entry['name']}]"
        problems += [f"{where}.{key}: unknown field" for key in sorted(set(entry) - ENV_VAR_FIELDS)]
        if "value" in entry and not isinstance(entry["value"], str):
            problems.append(f"{where}.value: must be a string")
        if entry.get("value") and entry.get("valueFrom") is not None:
            problems.append(f"{where}: value and valueFrom are mutually exclusive")
    return problems


def _ports_problems(ports: Any, path: str) -> list[str]:
    if ports is None:
        return []
    if not isinstance(ports, list):
        return [f"{path}: must be a list"]
    problems = []
    for index, port in enumerate(ports):
        if not isinstance(port, Mapping):
            problems.append(f"{path}[{index}]: must be a map")
            continue
        problems += [
            f"{path}[{index}].{key}: unknown field" for key in sorted(set(port) - PORT_FIELDS)
        ]
        number = port.get("containerPort")
        if not is_port_number(number):
            problems.append(f"{path}[{index}].containerPort: must be a number from 1 to 65535")
    return problems


def _resources_problems(resources: Any, path: str) -> list[str]:
    if resources is None:
        return []
    if not isinstance(resources, Mapping):
        return [f"{path}: must be a map"]
    problems = [f"{path}.{key}: unknown field" for key in sorted(set(resources) - RESOURCES_FIELDS)]
    for section in ("limits", "requests"):
        value = resources.get(section)
        if value is not None and not isinstance(value, Mapping):
            problems.append(f"{path}.{section}: must be a map")
    if resources.get("claims"):
        problems.append(f"{path}.claims: {DRA_UNSUPPORTED}")
    return problems


def string_map_problems(value: Any, path: str) -> list[str]:
    """Problems of a map of strings to strings (labels, annotations, a nodeSelector)."""
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [f"{path}: must be a map of strings"]
    problems = []
    for key, item in value.items():
        if not isinstance(key, str):
            problems.append(f"{path}: keys must be strings")
        elif not isinstance(item, str):
            problems.append(f"{key_path(path, key)}: must be a string")
    return problems


def labels_problems(value: Any, path: str) -> list[str]:
    """Problems of a label map: strings, qualified-name keys, valid label values."""
    problems = string_map_problems(value, path)
    if problems or value is None:
        return problems
    for key, item in value.items():
        key_problem = qualified_name_problem(key)
        if key_problem:
            problems.append(f"{key_path(path, key)}: key {key_problem}")
        value_problem = label_value_problem(item)
        if value_problem:
            problems.append(f"{key_path(path, key)}: value {value_problem}")
    return problems


def annotations_problems(value: Any, path: str) -> list[str]:
    """Problems of an annotation map: strings with qualified-name keys."""
    problems = string_map_problems(value, path)
    if problems or value is None:
        return problems
    for key in value:
        key_problem = qualified_name_problem(key)
        if key_problem:
            problems.append(f"{key_path(path, key)}: key {key_problem}")
    return problems


def string_list_problems(value: Any, path: str) -> list[str]:
    """Problems of a list of strings (a command, args, finalizers)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return [f"{path}: must be a list of strings"]
    return []


def is_port_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


# --- edits -------------------------------------------------------------------------------------


def deindividualized(spec: Mapping[str, Any]) -> Obj:
    """A copy of ``spec`` without what is individual to one Pod: ``nodeName``, ephemeral
    containers, and the ServiceAccount token volume (``kube-api-access-*``) with its mounts."""
    out = copy.deepcopy(dict(spec))
    out.pop("nodeName", None)
    out.pop("ephemeralContainers", None)
    volumes = out.get("volumes")
    if isinstance(volumes, list):
        dropped = {
            v["name"]
            for v in volumes
            if isinstance(v, Mapping)
            and isinstance(v.get("name"), str)
            and API_ACCESS_VOLUME_RE.fullmatch(v["name"])
        }
        if dropped:
            kept = [v for v in volumes if not (isinstance(v, Mapping) and v.get("name") in dropped)]
            if kept:
                out["volumes"] = kept
            else:
                del out["volumes"]
            for container in _all_containers(out):
                _drop_mounts(container, dropped)
    return out


def _all_containers(spec: Mapping[str, Any]) -> Iterator[Obj]:
    for kind in ("initContainers", "containers"):
        listed = spec.get(kind)
        if isinstance(listed, list):
            yield from (c for c in listed if isinstance(c, dict))


def _drop_mounts(container: Obj, volumes: set[str]) -> None:
    mounts = container.get("volumeMounts")
    if not isinstance(mounts, list):
        return
    kept = [m for m in mounts if not (isinstance(m, Mapping) and m.get("name") in volumes)]
    if kept:
        container["volumeMounts"] = kept
    else:
        del container["volumeMounts"]


def set_env(container: Obj, name: str, value: str | None = None, *, field_path: str = "") -> None:
    """Give ``container`` the variable ``name``, set to ``value`` or, with ``field_path``, from
    the downward API; an existing entry of that name is replaced whole (so ``value`` and
    ``valueFrom`` never end up together), others are kept in order."""
    entry: Obj = (
        {"name": name, "valueFrom": {"fieldRef": {"fieldPath": field_path}}}
        if field_path
        else {"name": name, "value": value if value is not None else ""}
    )
    env = container.get("env")
    if not isinstance(env, list):
        env = []
    for index, existing in enumerate(env):
        if isinstance(existing, Mapping) and existing.get("name") == name:
            env[index] = entry
            break
    else:
        env.append(entry)
    container["env"] = env


def has_env(container: Mapping[str, Any], name: str) -> bool:
    env = container.get("env")
    return isinstance(env, list) and any(
        isinstance(e, Mapping) and e.get("name") == name for e in env
    )


def zero_gpus(container: Obj, *, create: bool) -> None:
    """Set ``nvidia.com/gpu`` to 0 in the container's requests and limits: in both, created
    when missing (``create``), or only in those maps that exist."""
    resources = container.get("resources")
    if not isinstance(resources, dict):
        if not create:
            return
        resources = {}
        container["resources"] = resources
    for section in ("requests", "limits"):
        amounts = resources.get(section)
        if isinstance(amounts, dict):
            amounts[RESOURCE_GPU] = "0"
        elif create:
            resources[section] = {RESOURCE_GPU: "0"}
