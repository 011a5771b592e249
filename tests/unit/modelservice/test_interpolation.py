"""What is a template, when it is rendered, and how a bad template or base object is reported."""

import pytest

from fma.modelservice.errors import RenderError
from tests.unit.modelservice.helpers import base, container, find, msvc, pod, run

DECODE_WITH_PORT = """
    spec:
      template:
        spec:
          containers:
            - name: vllm
              command: [vllm, serve]
              args: ["--port", "{{ "app_port" | getPort }}"]
              ports:
                - containerPort: {{ "app_port" | getPort }}
"""


def test_base_values_are_rendered_before_they_are_parsed() -> None:
    rendering = run(msvc({"decode": {}}), base(decodeDeployment=DECODE_WITH_PORT))
    vllm = container(find(rendering, "Deployment", "m-decode"), "vllm")
    assert vllm["args"] == ["--port", "8000"]
    assert vllm["ports"] == [{"containerPort": 8000}]  # a number, not a string


def test_only_prefill_and_decode_args_are_templates() -> None:
    spec = {
        "decode": {
            "containers": [
                {
                    "name": "vllm",
                    "command": ["{{ .ModelName }}"],
                    "args": ["{{ .ModelName }}", "--served-model-name={{ .SanitizedModelName }}"],
                    "env": [{"name": "X", "value": "{{ .ModelName }}"}],
                }
            ],
            "initContainers": [{"name": "init", "args": ["{{ .ModelPath }}"]}],
        },
        "prefill": {"containers": [{"name": "vllm", "args": ["{{ .HFModelName }}"]}]},
        "endpointPicker": {"containers": [{"name": "epp", "args": ["{{ .ModelName }}"]}]},
    }
    rendering = run(msvc(spec), base(eppDeployment="spec: {}"))
    decode = find(rendering, "Deployment", "m-decode")
    vllm = container(decode, "vllm")
    assert vllm["args"] == ["org/model", "--served-model-name=org-model"]
    assert vllm["command"] == ["{{ .ModelName }}"]
    assert vllm["env"] == [{"name": "X", "value": "{{ .ModelName }}"}]
    assert container(decode, "init", init=True)["args"] == ["org/model"]
    assert container(find(rendering, "Deployment", "m-prefill"), "vllm")["args"] == ["org/model"]
    assert container(find(rendering, "Deployment", "m-epp"), "epp")["args"] == ["{{ .ModelName }}"]


def test_an_unknown_key_in_a_modelservice_arg_names_the_arg() -> None:
    spec = {"decode": {"containers": [{"name": "vllm", "args": ["ok", "{{ .Nope }}"]}]}}
    with pytest.raises(RenderError) as error:
        run(msvc(spec))
    assert error.value.source == "modelservice"
    assert str(error.value) == (
        "spec.decode.containers[0].args[1]: template line 1: unknown key .Nope (missingkey=error)"
    )


def test_an_unknown_key_in_the_base_config_names_the_key_and_line() -> None:
    text = "spec:\n  template:\n    spec:\n      serviceAccountName: {{ .ModelServiceNmae }}\n"
    with pytest.raises(RenderError) as error:
        run(msvc({"decode": {}}), base(decodeDeployment=text))
    assert error.value.source == "baseconfig"
    assert str(error.value) == (
        "data.decodeDeployment: template line 4: unknown key .ModelServiceNmae (missingkey=error)"
    )


def test_an_unknown_port_is_an_error_not_minus_one() -> None:
    with pytest.raises(
        RenderError,
        match=r"data.inferencePool: template line 1: error calling getPort: "
        r"no port named 'internal_port' in spec.routing.ports \(known: app_port\)",
    ):
        run(msvc(), base(inferencePool='spec: {targetPortNumber: {{ "internal_port" | getPort }}}'))


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"decodeDeployment": "spec: [unclosed"},
            "data.decodeDeployment",
            "not valid YAML after templating: line 1:",
        ),
        (
            {"decodeDeployment": "- a list"},
            "data.decodeDeployment",
            "expected one Deployment (a mapping)",
        ),
        ({"decodeDeployment": "spec: 3"}, "data.decodeDeployment.spec", "expected a mapping"),
        ({"configMaps": "metadata: {name: x}"}, "data.configMaps", "expected a list of ConfigMaps"),
        ({"configMaps": "- data: {a: b}"}, "data.configMaps[0].metadata.name", "required"),
    ],
)
def test_bad_base_objects_name_the_key(data: dict[str, str], field: str, message: str) -> None:
    with pytest.raises(RenderError) as error:
        run(msvc({"decode": {}}), base(**data))
    assert (error.value.source, error.value.field) == ("baseconfig", field)
    assert error.value.message.startswith(message)


def test_blank_and_comment_only_values_are_absent() -> None:
    rendering = run(msvc(), base(decodeDeployment="   \n", prefillDeployment="# nothing here\n"))
    assert rendering.objects == ()


def test_fields_a_kind_lacks_are_dropped_with_a_warning_and_unknown_keys_are_said() -> None:
    config = base(
        decodeDeployment="kind: StatefulSet\nspec: {}\nstatus: {replicas: 3}",
        decodeSrevice="spec: {}",
    )
    rendering = run(msvc({"decode": {}}), config)
    decode = find(rendering, "Deployment", "m-decode")
    assert decode["apiVersion"] == "apps/v1" and "status" not in decode
    assert rendering.warnings == (
        "data.decodeSrevice: not a BaseConfig key; ignored (keys: configMaps, prefillDeployment, "
        "decodeDeployment, prefillService, decodeService, httpRoute, inferencePool, "
        "inferenceModel, eppDeployment, eppService)",
        "data.decodeDeployment: kind StatefulSet is rendered as a Deployment",
        "data.decodeDeployment.status: not a field of a Deployment; dropped",
    )


def test_config_maps_keep_their_names_and_get_the_namespace() -> None:
    config = base(configMaps="- metadata: {name: lmcache}\n  data: {a: b}\n- metadata: {name: two}")
    rendering = run(msvc(namespace="team"), config)
    assert [o["metadata"] for o in rendering.objects] == [
        {"name": "lmcache", "namespace": "team"},
        {"name": "two", "namespace": "team"},
    ]
    assert rendering.objects[0]["data"] == {"a": "b"}


def test_a_base_only_decode_deployment_is_rendered_and_a_spec_only_one_too() -> None:
    base_only = run(msvc(), base(decodeDeployment="spec: {replicas: 3}"))
    assert find(base_only, "Deployment", "m-decode")["spec"]["replicas"] == 3
    spec_only = run(msvc({"decode": {"containers": [{"name": "vllm", "image": "v"}]}}))
    decode = find(spec_only, "Deployment", "m-decode")
    assert pod(decode)["containers"] == [{"name": "vllm", "image": "v"}]
    assert decode["spec"]["replicas"] == 1


def test_a_service_is_rendered_only_with_its_deployment() -> None:
    rendering = run(msvc({"decode": {}}), base(prefillService="spec: {}", decodeService="spec: {}"))
    assert [o["metadata"]["name"] for o in rendering.objects if o["kind"] == "Service"] == [
        "m-service-decode"
    ]


def test_http_route_from_gateway_refs_alone() -> None:
    spec = {"routing": {"modelName": "m", "gatewayRefs": [{"name": "gw", "namespace": "infra"}]}}
    route = find(run(msvc(spec)), "HTTPRoute", "m-http-route")
    assert route["spec"] == {"parentRefs": [{"name": "gw", "namespace": "infra"}]}
