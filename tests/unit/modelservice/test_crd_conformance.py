"""Rendered routing objects and the ModelService samples against their CRDs' schemas.

A small structural-schema check (types, required fields, unknown fields, enums, ranges) run
offline; ``kubectl apply --dry-run=server`` on the test control plane is the full check
(crds/thirdparty/README.md).
"""

from pathlib import Path
from typing import Any

import pytest
import yaml

from fma.api.crdgen import KINDS, crd_manifest
from tests.unit.modelservice.helpers import REPO_SAMPLES, ROOT, SHARED_SAMPLES, load_sample, run

THIRD_PARTY = ROOT / "crds" / "thirdparty"
_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


def _schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) to the openAPIV3Schema, for the third-party CRDs and ModelService."""
    crds = [
        d for p in sorted(THIRD_PARTY.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text())
    ]
    crds += [crd_manifest(info) for info in KINDS if info.kind == "ModelService"]
    out = {}
    for crd in crds:
        for version in crd["spec"]["versions"]:
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            out[key] = version["schema"]["openAPIV3Schema"]
    return out


def violations(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Where ``value`` breaks ``schema`` (as the API server's strict decoding would see it)."""
    if schema.get("x-kubernetes-int-or-string"):
        ok = isinstance(value, int | str) and not isinstance(value, bool)
        return [] if ok else [f"{path}: not an int or string"]
    kind = schema.get("type")
    if kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{path}: not an integer"]
        low, high = schema.get("minimum", value), schema.get("maximum", value)
        return [] if low <= value <= high else [f"{path}: {value} out of [{low}, {high}]"]
    if kind in _TYPES and not isinstance(value, _TYPES[kind]):
        return [f"{path}: not a {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path}: {value!r} not in {schema['enum']}"]
    problems: list[str] = []
    if path == ".metadata":
        return problems  # ObjectMeta is the API server's own
    if kind == "object" and not schema.get("x-kubernetes-preserve-unknown-fields"):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        problems += [f"{path}.{r}: required" for r in schema.get("required", []) if r not in value]
        for key, item in value.items():
            if properties is not None and key in properties:
                problems += violations(item, properties[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                problems += violations(item, extra, f"{path}.{key}")
            elif properties is not None or extra is None:
                problems.append(f"{path}.{key}: unknown field")
    if kind == "array":
        for i, item in enumerate(value):
            problems += violations(item, schema.get("items", {}), f"{path}[{i}]")
    return problems


def test_the_validator_catches_what_the_server_would() -> None:
    schema = _schemas()[("inference.networking.x-k8s.io/v1alpha2", "InferencePool")]
    bad = {"spec": {"selector": {"a": 1}, "targetPortNumber": 0, "extra": True}}
    assert violations(bad, schema) == [
        ".spec.extensionRef: required",
        ".spec.selector.a: not a string",
        ".spec.targetPortNumber: 0 out of [1, 65535]",
        ".spec.extra: unknown field",
    ]


def _routed_samples() -> list[tuple[Path, str]]:
    samples = [
        (REPO_SAMPLES, p.name.removesuffix("-msvc.yaml"))
        for p in sorted(REPO_SAMPLES.glob("*-msvc.yaml"))
    ]
    if SHARED_SAMPLES.is_dir():
        samples += [
            (SHARED_SAMPLES, p.name.removesuffix("-msvc.yaml"))
            for p in sorted(SHARED_SAMPLES.glob("*-msvc.yaml"))
        ]
    return samples


@pytest.mark.parametrize(
    ("directory", "sample"), _routed_samples(), ids=lambda v: getattr(v, "name", v)
)
def test_rendered_routing_objects_and_the_modelservice_match_their_crds(
    directory: Path, sample: str
) -> None:
    schemas = _schemas()
    model, config = load_sample(directory, sample)
    checked = 0
    for obj in run(model, config).objects:
        schema = schemas.get((obj["apiVersion"], obj["kind"]))
        if schema is not None:
            assert violations(obj, schema) == [], obj["kind"]
            checked += 1
    msvc = yaml.safe_load((directory / f"{sample}-msvc.yaml").read_text())
    assert violations(msvc, schemas[("llm-d.ai/v1alpha1", "ModelService")]) == []
    assert checked == sum(
        1
        for o in run(model, config).objects
        if o["kind"] in ("InferencePool", "InferenceModel", "HTTPRoute")
    )
