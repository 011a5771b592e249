"""The ModelService CRD and BaseConfig models: fields, defaults, rules, and the generated CRD."""

from typing import Any

import pytest
import yaml

from fma.api.crdgen import KINDS, crd_manifest
from fma.api.loading import InputError, parse
from fma.api.modelservice import BASECONFIG_KEYS, BaseConfigMap, ModelService

MSVC: dict[str, Any] = {
    "apiVersion": "llm-d.ai/v1alpha1",
    "kind": "ModelService",
    "metadata": {"name": "m"},
    "spec": {
        "routing": {
            "modelName": "facebook/opt-125m",
            "ports": [{"name": "app_port", "port": 8000}],
        },
        "modelArtifacts": {"uri": "hf://facebook/opt-125m"},
    },
}


def _crd() -> dict[str, Any]:
    (info,) = [k for k in KINDS if k.kind == "ModelService"]
    return crd_manifest(info)


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = _crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _msvc(**spec: Any) -> dict[str, Any]:
    data = yaml.safe_load(yaml.safe_dump(MSVC))
    data["spec"].update(spec)
    return data


def test_crd_names_group_and_status_subresource() -> None:
    crd = _crd()
    assert crd["metadata"]["name"] == "modelservices.llm-d.ai"
    assert crd["spec"]["group"] == "llm-d.ai"
    assert crd["spec"]["scope"] == "Namespaced"
    names = crd["spec"]["names"]
    assert (names["kind"], names["listKind"], names["plural"], names["shortNames"]) == (
        "ModelService",
        "ModelServiceList",
        "modelservices",
        ["msvc"],
    )
    version = crd["spec"]["versions"][0]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}


def test_printer_columns_are_upstreams() -> None:
    columns = _crd()["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [(c["name"], c["type"], c["jsonPath"]) for c in columns] == [
        ("Decouple Scaling", "boolean", ".spec.decoupleScaling"),
        ("Prefill READY", "string", ".status.prefillReady"),
        ("Prefill AVAIL", "integer", ".status.prefillAvailable"),
        ("Decode READY", "string", ".status.decodeReady"),
        ("Decode AVAIL", "integer", ".status.decodeAvailable"),
        ("Age", "date", ".metadata.creationTimestamp"),
    ]


def test_schema_rules() -> None:
    spec = _schema()["properties"]["spec"]
    assert set(spec["required"]) == {"routing", "modelArtifacts"}
    routing = spec["properties"]["routing"]
    model_name = routing["properties"]["modelName"]
    assert model_name["maxLength"] == 256
    assert model_name["x-kubernetes-validations"] == [
        {"rule": "self == oldSelf", "message": "modelName is immutable"}
    ]
    port = routing["properties"]["ports"]["items"]
    assert set(port["required"]) == {"name", "port"}
    assert port["properties"]["port"]["minimum"] == 1
    assert routing["properties"]["gatewayRefs"]["maxItems"] == 32
    decode = spec["properties"]["decode"]["properties"]
    assert decode["replicas"]["minimum"] == 0
    assert decode["replicas"]["default"] == 1
    assert decode["parallelism"]["properties"]["tensor"] == {
        "default": 1,
        "description": decode["parallelism"]["properties"]["tensor"]["description"],
        "format": "int32",
        "maximum": 2**31 - 1,
        "minimum": 0,
        "type": "integer",
    }
    assert decode["acceleratorTypes"]["properties"]["labelValues"]["minItems"] == 1
    container = decode["containers"]["items"]["properties"]
    assert container["mountModelVolume"]["default"] is False
    assert "fma" in decode and "fma" not in spec["properties"]["prefill"]["properties"]
    status = _schema()["properties"]["status"]["properties"]
    for field in (
        "prefillDeploymentRef",
        "decodeDeploymentRef",
        "eppDeploymentRef",
        "httpRouteRef",
        "inferenceModelRef",
        "inferencePoolRef",
        "prefillServiceAccountRef",
        "decodeServiceAccountRef",
        "eppRoleBinding",
        "configMapNames",
        "prefillReady",
        "prefillAvailable",
        "decodeReady",
        "decodeAvailable",
        "eppReady",
        "eppAvailable",
        "conditions",
    ):
        assert field in status


def test_defaults_are_the_api_servers() -> None:
    msvc = ModelService.model_validate(
        _msvc(decode={"parallelism": {}}, prefill={"replicas": None}, endpointPicker={})
    )
    assert msvc.spec.decouple_scaling is False
    assert msvc.spec.decode is not None and msvc.spec.decode.replicas == 1
    assert msvc.spec.decode.parallelism is not None and msvc.spec.decode.parallelism.tensor == 1
    assert msvc.spec.prefill is not None and msvc.spec.prefill.replicas == 1
    assert msvc.spec.endpoint_picker is not None and msvc.spec.endpoint_picker.replicas == 1
    zero = ModelService.model_validate(_msvc(decode={"replicas": 0}))
    assert zero.spec.decode is not None and zero.spec.decode.replicas == 0


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"routing": {"modelName": "x" * 257}}, "spec.routing.modelName"),
        (
            {"routing": {"modelName": "m", "ports": [{"name": "p", "port": 0}]}},
            "spec.routing.ports[0].port",
        ),
        ({"routing": {"modelName": "m", "ports": [{"port": 80}]}}, "spec.routing.ports[0].name"),
        ({"modelArtifacts": {}}, "spec.modelArtifacts.uri"),
        ({"decode": {"replicas": -1}}, "spec.decode.replicas"),
        ({"decode": {"parallelism": {"tensor": -1}}}, "spec.decode.parallelism.tensor"),
        ({"decode": {"containers": [{"image": "x"}]}}, "spec.decode.containers[0].name"),
        (
            {"decode": {"acceleratorTypes": {"labelKey": "k", "labelValues": []}}},
            "spec.decode.acceleratorTypes.labelValues",
        ),
        ({"prefill": {"fma": {"enabled": True}}}, "spec.prefill.fma"),
        ({"surprise": 1}, "spec.surprise"),
    ],
    ids=[
        "long-model-name",
        "port-0",
        "port-nameless",
        "uri-missing",
        "replicas-negative",
        "tensor-negative",
        "container-nameless",
        "no-accelerators",
        "fma-on-prefill",
        "unknown",
    ],
)
def test_bad_modelservice_names_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as error:
        parse(ModelService, _msvc(**spec), "m.yaml")
    assert str(error.value).startswith(f"m.yaml: {field}:")


def test_duplicate_port_names_and_env_with_two_sources_are_rejected() -> None:
    ports = {"modelName": "m", "ports": [{"name": "p", "port": 1}, {"name": "p", "port": 2}]}
    with pytest.raises(InputError, match="duplicate port name 'p'"):
        parse(ModelService, _msvc(routing=ports), "m.yaml")
    env = [{"name": "A", "value": "1", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]
    with pytest.raises(InputError, match="value or valueFrom"):
        parse(ModelService, _msvc(decode={"containers": [{"name": "c", "env": env}]}), "m.yaml")


def test_missing_required_fields() -> None:
    data = _msvc()
    del data["spec"]["routing"]
    with pytest.raises(InputError, match=r"^m.yaml: spec.routing: Field required"):
        parse(ModelService, data, "m.yaml")
    data = _msvc()
    del data["metadata"]["name"]
    with pytest.raises(InputError, match=r"^m.yaml: metadata.name: Field required"):
        parse(ModelService, data, "m.yaml")


def test_baseconfig_keys_and_shape() -> None:
    assert BASECONFIG_KEYS == (
        "configMaps",
        "prefillDeployment",
        "decodeDeployment",
        "prefillService",
        "decodeService",
        "httpRoute",
        "inferencePool",
        "inferenceModel",
        "eppDeployment",
        "eppService",
    )
    base = BaseConfigMap.model_validate(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "b"},
            "immutable": True,
            "data": {"decodeDeployment": "spec: {}"},
        }
    )
    assert base.data == {"decodeDeployment": "spec: {}"}
    assert BaseConfigMap.model_validate({"data": None}).data == {}
    with pytest.raises(
        InputError, match=r"^b.yaml: data.decodeDeployment: Input should be a valid string"
    ):
        parse(BaseConfigMap, {"data": {"decodeDeployment": {"spec": {}}}}, "b.yaml")
    with pytest.raises(InputError, match=r"^b.yaml: kind: "):
        parse(BaseConfigMap, {"kind": "Secret"}, "b.yaml")
