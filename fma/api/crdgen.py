"""Generate CustomResourceDefinition manifests from the pydantic models of :mod:`fma.api.crds`.

The API server accepts only *structural* OpenAPI v3 schemas: every node typed, no ``$ref``,
no ``anyOf`` of types, no ``title``. Pydantic's JSON schema is turned into one here by inlining
references and collapsing ``X | None`` into ``X``; the Kubernetes extensions
(``x-kubernetes-*``) and formats come from the models' ``json_schema_extra``.
"""

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from fma.api.constants import GROUP, MS_GROUP, VERSION
from fma.api.crds import InferenceServerConfig, LauncherConfig, LauncherPopulationPolicy
from fma.api.modelservice import ModelService

JsonSchema = dict[str, Any]


@dataclass(frozen=True)
class CrdInfo:
    """Names and printer columns of one kind; its schema comes from ``model``."""

    model: type[BaseModel]
    kind: str
    plural: str
    short_name: str
    columns: tuple[tuple[str, str, str], ...]  # (name, type, jsonPath)
    group: str = GROUP


KINDS: tuple[CrdInfo, ...] = (
    CrdInfo(
        InferenceServerConfig,
        "InferenceServerConfig",
        "inferenceserverconfigs",
        "isc",
        (
            ("LauncherConfig", "string", ".spec.launcherConfigName"),
            ("Port", "integer", ".spec.modelServerConfig.port"),
        ),
    ),
    CrdInfo(
        LauncherConfig,
        "LauncherConfig",
        "launcherconfigs",
        "lcfg",
        (("MaxInstances", "integer", ".spec.maxInstances"),),
    ),
    CrdInfo(
        LauncherPopulationPolicy,
        "LauncherPopulationPolicy",
        "launcherpopulationpolicies",
        "lpp",
        (("Launchers", "string", ".spec.countForLauncher[*].launcherConfigName"),),
    ),
    CrdInfo(
        ModelService,
        "ModelService",
        "modelservices",
        "msvc",
        (
            ("Decouple Scaling", "boolean", ".spec.decoupleScaling"),
            ("Prefill READY", "string", ".status.prefillReady"),
            ("Prefill AVAIL", "integer", ".status.prefillAvailable"),
            ("Decode READY", "string", ".status.decodeReady"),
            ("Decode AVAIL", "integer", ".status.decodeAvailable"),
        ),
        group=MS_GROUP,
    ),
)

_DROPPED_KEYS = frozenset({"title", "$defs", "discriminator"})


def _structural(node: Any, defs: dict[str, JsonSchema]) -> Any:
    """Return ``node`` with references inlined and nullable unions collapsed."""
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if len(options) == 1:
            return _structural({**options[0], **rest}, defs)
        if rest.get("x-kubernetes-int-or-string"):
            return _structural(rest, defs)
        raise ValueError(f"cannot express a union of {options} in a structural schema")
    out: JsonSchema = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "default" and value is None:
            continue  # "no default" is how pydantic spells optional; the API server needs none
        if key == "additionalProperties" and value is False:
            continue  # forbidden in structural schemas; pruning drops unknown fields instead
        if key == "properties":
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        else:
            out[key] = _structural(value, defs)
    if out.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("type", "object")
        # A free-form map's `additionalProperties: true` beside preserve-unknown-fields makes
        # the API server prune every nested field of, e.g., a Pod template: drop it.
        if out.get("additionalProperties") is True:
            del out["additionalProperties"]
    if "const" in out:
        out["enum"] = [out.pop("const")]
    return out


def openapi_schema(model: type[BaseModel]) -> JsonSchema:
    """The structural OpenAPI v3 schema of one custom resource model."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    schema: JsonSchema = _structural(raw, defs)
    properties = schema["properties"]
    # apiVersion, kind and metadata are validated by the API server itself.
    properties["apiVersion"] = {"type": "string"}
    properties["kind"] = {"type": "string"}
    properties["metadata"] = {"type": "object"}
    schema["required"] = [r for r in schema.get("required", []) if r != "metadata"]
    schema.pop("additionalProperties", None)
    return schema


def crd_manifest(info: CrdInfo) -> JsonSchema:
    """The CustomResourceDefinition of one kind: namespaced, with a status subresource."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{info.plural}.{info.group}"},
        "spec": {
            "group": info.group,
            "scope": "Namespaced",
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.kind.lower(),
                "shortNames": [info.short_name],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": openapi_schema(info.model)},
                    "additionalPrinterColumns": [
                        {"name": name, "type": type_, "jsonPath": path}
                        for name, type_, path in info.columns
                    ]
                    + [
                        {
                            "name": "Age",
                            "type": "date",
                            "jsonPath": ".metadata.creationTimestamp",
                        }
                    ],
                }
            ],
        },
    }


def all_manifests() -> list[JsonSchema]:
    """Every CRD manifest, in a stable order."""
    return [crd_manifest(info) for info in KINDS]
