"""A container's environment, resolved the way the kubelet resolves it.

Order and rules follow ``kubelet_pods.go`` (``makeEnvironmentVariables``): ``envFrom``
sources first (ConfigMaps and Secrets, with their prefix; keys that cannot be variable names
are skipped), then ``env`` in order, where a ``value`` may refer to variables defined before
it as ``$(NAME)`` and a ``valueFrom`` reads

- ``fieldRef``: ``metadata.name|namespace|uid``, ``metadata.labels|annotations`` (whole, or
  ``['key']``), ``spec.nodeName``, ``spec.serviceAccountName``, ``status.podIP(s)``,
  ``status.hostIP(s)``;
- ``resourceFieldRef``: ``limits.*``/``requests.*`` of ``cpu``, ``memory``,
  ``ephemeral-storage`` (and hugepages), with a divisor, rounded up; an unset limit is the
  node's allocatable, as on a kubelet;
- ``configMapKeyRef``/``secretKeyRef``: read through the API, ``optional`` honoured.

Finally the service variables of the ``kubernetes`` Service (``KUBERNETES_SERVICE_HOST``
...), pointing at the apiserver's address on the Pod network, are added unless the Pod
defines them. A reference that cannot be resolved raises :class:`ConfigError`, whose
message becomes the container's ``CreateContainerConfigError``.
"""

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fma.testcluster.podrunner.expansion import expand, mapping_for


class ConfigError(ValueError):
    """The environment cannot be built (yet); the message is the kubelet's kind of text."""


Reader = Callable[[str, str], dict[str, str] | None]
"""``(namespace, name) -> data``, or None when the object does not exist."""


@dataclass(frozen=True)
class EnvSources:
    """Where ``valueFrom`` and ``envFrom`` read from."""

    read_config_map: Reader
    read_secret: Reader
    node_allocatable: Mapping[str, str] = field(default_factory=dict)


def service_env(host: str, port: int) -> dict[str, str]:
    """The variables the kubelet sets for the ``kubernetes`` Service, at ``host:port``.

    There is no kube-proxy, so they name the apiserver itself rather than a ClusterIP.
    """
    url = f"tcp://{host}:{port}"
    prefix = f"KUBERNETES_PORT_{port}_TCP"
    return {
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": str(port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(port),
        "KUBERNETES_PORT": url,
        prefix: url,
        f"{prefix}_PROTO": "tcp",
        f"{prefix}_PORT": str(port),
        f"{prefix}_ADDR": host,
    }


def _format_map(values: Mapping[str, str]) -> str:
    # fieldpath.FormatMap: sorted `key="value"` lines (Go's %q; JSON quoting agrees for text).
    return "\n".join(f"{k}={json.dumps(values[k])}" for k in sorted(values))


def _subscript(path: str, prefix: str) -> str | None:
    """``key`` for ``<prefix>['key']`` (or ``["key"]``), else None."""
    if not path.startswith(prefix + "[") or not path.endswith("]"):
        return None
    inner = path[len(prefix) + 1 : -1]
    if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
        return inner[1:-1]
    return None


def field_value(pod: Mapping[str, Any], path: str) -> str:
    """The downward-API value of ``path`` for ``pod``; raises ConfigError if unsupported."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    for prefix in ("metadata.labels", "metadata.annotations"):
        values = meta.get(prefix.split(".")[1]) or {}
        if path == prefix:
            return _format_map(values)
        key = _subscript(path, prefix)
        if key is not None:
            return str(values.get(key, ""))
    simple: dict[str, Any] = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP"),
        "status.hostIP": status.get("hostIP"),
        "status.podIPs": ",".join(i.get("ip", "") for i in status.get("podIPs") or []),
        "status.hostIPs": ",".join(i.get("ip", "") for i in status.get("hostIPs") or []),
    }
    if path not in simple:
        raise ConfigError(f"unsupported fieldRef fieldPath {path!r}")
    return str(simple[path] or "")


def _quantity(text: str) -> Decimal:
    from kubernetes import utils  # heavy module; the runner has it loaded anyway

    parse: Any = utils.parse_quantity
    return Decimal(parse(text))


def resource_value(
    container: Mapping[str, Any], ref: Mapping[str, Any], allocatable: Mapping[str, str]
) -> str:
    """``resourceFieldRef`` of ``container``: the quantity over the divisor, rounded up."""
    resource = str(ref.get("resource", ""))
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not name:
        raise ConfigError(f"unsupported resourceFieldRef resource {resource!r}")
    resources = container.get("resources") or {}
    value = (resources.get(kind) or {}).get(name)
    if value is None and kind == "limits":
        value = allocatable.get(name)
    if value is None and kind == "requests":
        value = (resources.get("limits") or {}).get(name)
    quantity = _quantity(str(value)) if value is not None else Decimal(0)
    divisor = _quantity(str(ref.get("divisor") or "1"))
    if divisor == 0:
        raise ConfigError(f"resourceFieldRef {resource!r} has a zero divisor")
    return str(math.ceil(quantity / divisor))


def _key_ref(kind: str, ref: Mapping[str, Any], namespace: str, read: Reader) -> str | None:
    """The value, or None for a missing optional one; raises ConfigError otherwise."""
    name, key, optional = str(ref.get("name", "")), str(ref.get("key", "")), ref.get("optional")
    data = read(namespace, name)
    if data is None:
        if optional:
            return None
        raise ConfigError(f'{kind.lower()} "{name}" not found')
    if key not in data:
        if optional:
            return None
        raise ConfigError(f"couldn't find key {key} in {kind} {namespace}/{name}")
    return data[key]


def _valid_name(name: str) -> bool:
    # RelaxedEnvironmentVariableValidation (on by default since 1.32): printable, no "=".
    return bool(name) and "=" not in name and all(" " <= ch <= "~" for ch in name)


def resolve(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    *,
    sources: EnvSources,
    services: Mapping[str, str],
) -> dict[str, str]:
    """The container's environment (see the module docstring); raises ConfigError."""
    namespace = str((pod.get("metadata") or {}).get("namespace", ""))
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix") or "")
        for kind, key, read in (
            ("ConfigMap", "configMapRef", sources.read_config_map),
            ("Secret", "secretRef", sources.read_secret),
        ):
            ref = source.get(key)
            if ref is None:
                continue
            data = read(namespace, str(ref.get("name", "")))
            if data is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'{kind.lower()} "{ref.get("name", "")}" not found')
            for name, value in data.items():
                if _valid_name(prefix + name):
                    env[prefix + name] = value
    lookup = mapping_for(env, services)
    for var in container.get("env") or []:
        name = str(var.get("name", ""))
        value_from = var.get("valueFrom")
        if var.get("value"):
            env[name] = expand(str(var["value"]), lookup)
        elif value_from:
            resolved = _value_from(pod, container, value_from, namespace, sources)
            if resolved is None:
                continue  # an optional reference to something missing: not defined
            env[name] = resolved
        else:
            env[name] = ""
    return {**services, **env}


def _value_from(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    value_from: Mapping[str, Any],
    namespace: str,
    sources: EnvSources,
) -> str | None:
    if "fieldRef" in value_from:
        return field_value(pod, str(value_from["fieldRef"].get("fieldPath", "")))
    if "resourceFieldRef" in value_from:
        ref = value_from["resourceFieldRef"]
        target = container
        wanted = ref.get("containerName")
        if wanted and wanted != container.get("name"):
            spec = pod.get("spec") or {}
            matches = [c for c in spec.get("containers") or [] if c.get("name") == wanted]
            if not matches:
                raise ConfigError(f"resourceFieldRef: no container {wanted!r}")
            target = matches[0]
        return resource_value(target, ref, sources.node_allocatable)
    if "configMapKeyRef" in value_from:
        return _key_ref(
            "ConfigMap", value_from["configMapKeyRef"], namespace, sources.read_config_map
        )
    if "secretKeyRef" in value_from:
        return _key_ref("Secret", value_from["secretKeyRef"], namespace, sources.read_secret)
    raise ConfigError(f"unsupported valueFrom {sorted(value_from)}")
