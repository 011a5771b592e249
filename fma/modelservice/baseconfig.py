"""Parse rendered BaseConfig values into the base objects the merge starts from.

Each known key holds one object (``configMaps``: a list of ConfigMaps). ``apiVersion`` and
``kind`` may be omitted; the kind is always the key's, as upstream's typed decoding makes it.
Top-level fields the kind does not have are dropped with a warning, as that decoding drops
them silently (upstream's own test sample puts a Service's ``type`` beside ``spec``).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from fma.modelservice.errors import RenderError

Obj = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    fields: frozenset[str]


_OBJECT_FIELDS: Final = frozenset({"apiVersion", "kind", "metadata", "spec"})
DEPLOYMENT: Final = Kind("apps/v1", "Deployment", _OBJECT_FIELDS)
SERVICE: Final = Kind("v1", "Service", _OBJECT_FIELDS)
CONFIG_MAP: Final = Kind(
    "v1",
    "ConfigMap",
    frozenset({"apiVersion", "kind", "metadata", "data", "binaryData", "immutable"}),
)
HTTP_ROUTE: Final = Kind("gateway.networking.k8s.io/v1", "HTTPRoute", _OBJECT_FIELDS)
INFERENCE_POOL: Final = Kind(
    "inference.networking.x-k8s.io/v1alpha2", "InferencePool", _OBJECT_FIELDS
)
INFERENCE_MODEL: Final = Kind(
    "inference.networking.x-k8s.io/v1alpha2", "InferenceModel", _OBJECT_FIELDS
)
SERVICE_ACCOUNT: Final = Kind("v1", "ServiceAccount", frozenset())
ROLE_BINDING: Final = Kind("rbac.authorization.k8s.io/v1", "RoleBinding", frozenset())

KIND_OF_KEY: Final[Mapping[str, Kind]] = {
    "configMaps": CONFIG_MAP,
    "prefillDeployment": DEPLOYMENT,
    "decodeDeployment": DEPLOYMENT,
    "prefillService": SERVICE,
    "decodeService": SERVICE,
    "httpRoute": HTTP_ROUTE,
    "inferencePool": INFERENCE_POOL,
    "inferenceModel": INFERENCE_MODEL,
    "eppDeployment": DEPLOYMENT,
    "eppService": SERVICE,
}


@dataclass(frozen=True)
class BaseObjects:
    """The objects a BaseConfig provides, by key; a key it lacks is absent."""

    config_maps: tuple[Obj, ...] = ()
    objects: Mapping[str, Obj] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def get(self, key: str) -> Obj | None:
        return self.objects.get(key)


def _load(text: str, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or "bad YAML"
        at = f"line {mark.line + 1}: " if mark is not None else ""
        message = f"not valid YAML after templating: {at}{problem}"
        raise RenderError("baseconfig", where, message) from None


def _object(value: Any, kind: Kind, where: str, warnings: list[str]) -> Obj:
    if not isinstance(value, dict):
        raise RenderError("baseconfig", where, f"expected one {kind.kind} (a mapping)")
    for name in ("metadata", "spec"):
        if name in value and not isinstance(value[name], dict | None):
            raise RenderError("baseconfig", f"{where}.{name}", "expected a mapping")
    given = value.get("kind")
    if given is not None and given != kind.kind:
        warnings.append(f"{where}: kind {given} is rendered as a {kind.kind}")
    out: Obj = {"apiVersion": kind.api_version, "kind": kind.kind}
    for key, item in value.items():
        if key in ("apiVersion", "kind") or item is None:
            continue
        if key in kind.fields:
            out[key] = item
        else:
            warnings.append(f"{where}.{key}: not a field of a {kind.kind}; dropped")
    return out


def parse_base_objects(rendered: Mapping[str, str]) -> BaseObjects:
    """The base objects of rendered BaseConfig values (see :func:`interpolate_baseconfig`)."""
    warnings: list[str] = []
    objects: dict[str, Obj] = {}
    config_maps: list[Obj] = []
    for key, text in rendered.items():
        where = f"data.{key}"
        value = _load(text, where)
        if value is None:
            continue
        kind = KIND_OF_KEY[key]
        if key == "configMaps":
            if not isinstance(value, list):
                raise RenderError("baseconfig", where, "expected a list of ConfigMaps")
            for i, item in enumerate(value):
                config_map = _object(item, kind, f"{where}[{i}]", warnings)
                name = (config_map.get("metadata") or {}).get("name")
                if not isinstance(name, str) or not name:
                    raise RenderError("baseconfig", f"{where}[{i}].metadata.name", "required")
                config_maps.append(config_map)
        else:
            objects[key] = _object(value, kind, where, warnings)
    return BaseObjects(tuple(config_maps), objects, tuple(warnings))
