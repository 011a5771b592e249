"""FMA mode: requester Pods and launchers in place of the decode Deployment."""

import shlex
from typing import Any

import pytest
from pydantic import ValidationError

from fma.api.crds import InferenceServerConfig, LauncherConfig, LauncherPopulationPolicy
from fma.modelservice.errors import RenderError
from fma.modelservice.render import Rendering
from tests.unit.modelservice.helpers import (
    REPO_SAMPLES,
    base,
    container,
    find,
    kinds_and_names,
    load_sample,
    msvc,
    pod,
    run,
)

DECODE = """
    spec:
      template:
        spec:
          tolerations: [{key: nvidia.com/gpu, operator: Exists}]
          initContainers:
            - name: routing-proxy
              image: sidecar
          containers:
            - name: vllm
              image: vllm
              command: [vllm, serve]
              args: ["--port", "{{ "app_port" | getPort }}", "--max-model-len", "4096"]
              env:
                - {name: CUDA_VISIBLE_DEVICES, value: "0"}
                - {name: VLLM_LOGGING_LEVEL, value: DEBUG}
                - name: POD_IP
                  valueFrom: {fieldRef: {fieldPath: status.podIP}}
              resources:
                limits: {nvidia.com/gpu: 1}
                requests: {cpu: "8", memory: 16Gi, nvidia.com/gpu: 1}
"""
POOL = 'spec: {targetPortNumber: {{ "app_port" | getPort }}}'


def _spec(fma: dict[str, Any] | None = None, **decode: Any) -> dict[str, Any]:
    return {
        "decode": {
            "replicas": 3,
            "containers": [
                {"name": "vllm", "args": ["{{ .HFModelName }}"], "mountModelVolume": True}
            ],
            "fma": {"enabled": True, **(fma or {})},
            **decode,
        }
    }


def _render(fma: dict[str, Any] | None = None, **decode: Any) -> Rendering:
    config = base(decodeDeployment=DECODE, decodeService="spec: {}", inferencePool=POOL)
    return run(msvc(_spec(fma, **decode), uid="u-1"), config)


def test_the_decode_deployment_is_replaced() -> None:
    rendering = _render()
    assert kinds_and_names(rendering) == [
        ("LauncherConfig", "m-launcher"),
        ("InferenceServerConfig", "m-decode"),
        ("Deployment", "m-decode-requester"),
        ("Service", "m-service-decode"),
        ("ServiceAccount", "m-sa"),
        ("InferencePool", "m-inference-pool"),
    ]
    assert all(o["metadata"]["ownerReferences"][0]["uid"] == "u-1" for o in rendering.objects)


def test_requester_pods() -> None:
    deployment = find(_render(), "Deployment", "m-decode-requester")
    labels = {
        "llm-d.ai/component": "fma-requester",
        "llm-d.ai/model": "org-model",
        "llm-d.ai/role": "decode-requester",
    }
    assert deployment["metadata"]["labels"] == labels
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["selector"] == {"matchLabels": labels}
    template = deployment["spec"]["template"]
    assert template["metadata"] == {
        "labels": labels,
        "annotations": {
            "dual-pods.llm-d.ai/inference-server-config": "m-decode",
            "dual-pods.llm-d.ai/admin-port": "8081",
        },
    }
    (requester,) = template["spec"]["containers"]
    assert requester["name"] == "inference-server"
    assert requester["image"] == "ghcr.io/llm-d-fma/fma"
    assert requester["args"] == ["requester", "serve"]
    assert requester["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 8080}
    assert {p["name"]: p["containerPort"] for p in requester["ports"]} == {
        "probes": 8080,
        "spi": 8081,
    }
    assert requester["env"] == [
        {"name": "PROBES_PORT", "value": "8080"},
        {"name": "SPI_PORT", "value": "8081"},
    ]
    assert requester["resources"] == {
        "requests": {"cpu": "100m", "memory": "250Mi", "nvidia.com/gpu": 1},
        "limits": {"cpu": "1", "memory": "250Mi", "nvidia.com/gpu": 1},
    }
    assert template["spec"]["serviceAccountName"] == "m-sa"
    assert template["spec"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists"}]


def test_the_inference_server_config_comes_from_the_model_container() -> None:
    rendering = _render()
    isc = find(rendering, "InferenceServerConfig", "m-decode")
    InferenceServerConfig.model_validate(isc)
    config = isc["spec"]["modelServerConfig"]
    assert shlex.split(config["options"]) == [
        "--model",
        "org/model",
        "--max-model-len",
        "4096",
        "--enable-sleep-mode",
    ]
    assert config["port"] == 8000
    assert config["env_vars"] == {"VLLM_LOGGING_LEVEL": "DEBUG", "HF_HOME": "/model-cache"}
    assert isc["spec"]["launcherConfigName"] == "m-launcher"
    assert "the launcher runs vLLM" not in " ".join(rendering.warnings)
    assert rendering.warnings == (
        "spec.decode.fma: decode containers ['routing-proxy'] do not run in FMA mode "
        "(launchers run only vLLM)",
    )


def test_routing_selects_the_launchers_that_serve_not_the_requesters() -> None:
    rendering = _render()
    routing_labels = find(rendering, "InferenceServerConfig")["spec"]["modelServerConfig"]["labels"]
    assert routing_labels == {
        "llm-d.ai/inferenceServing": "true",
        "llm-d.ai/model": "org-model",
        "llm-d.ai/role": "decode",
    }
    requester_labels = find(rendering, "Deployment")["spec"]["template"]["metadata"]["labels"]
    for selector in (
        find(rendering, "InferencePool")["spec"]["selector"],
        find(rendering, "Service", "m-service-decode")["spec"]["selector"],
    ):
        assert selector.items() <= routing_labels.items()
        assert not selector.items() <= requester_labels.items()


def test_the_launcher_config_runs_the_launcher_with_the_model_containers_needs() -> None:
    lc = find(_render(), "LauncherConfig", "m-launcher")
    LauncherConfig.model_validate(lc)
    assert lc["spec"]["maxInstances"] == 2
    spec = lc["spec"]["podTemplate"]["spec"]
    (launcher,) = spec["containers"]
    assert launcher["name"] == "inference-server"
    assert launcher["args"] == [
        "launcher",
        "serve",
        *("--host", "0.0.0.0", "--port", "8001", "--engine", "vllm"),
    ]
    assert launcher["env"] == [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    ]
    assert launcher["volumeMounts"] == [{"name": "model-storage", "mountPath": "/model-cache"}]
    assert launcher["resources"] == {  # zero GPUs in both maps: one without the other is invalid
        "requests": {"cpu": "8", "memory": "16Gi", "nvidia.com/gpu": 0},
        "limits": {"nvidia.com/gpu": 0},
    }
    assert spec["volumes"] == [{"name": "model-storage", "emptyDir": {}}]
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists"}]


def test_the_launchers_can_run_the_stub_engine() -> None:
    lc = find(_render({"launcherConfig": {"engine": "stub"}}), "LauncherConfig")
    args = lc["spec"]["podTemplate"]["spec"]["containers"][0]["args"]
    assert args[args.index("--engine") + 1] == "stub"
    with pytest.raises(ValidationError, match="engine"):
        _render({"launcherConfig": {"engine": "tgi"}})


def test_tensor_parallelism_sizes_the_requesters_and_the_options() -> None:
    rendering = _render(parallelism={"tensor": 4})
    requester = find(rendering, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert requester["resources"]["limits"]["nvidia.com/gpu"] == 4
    assert requester["resources"]["requests"]["nvidia.com/gpu"] == 4
    options = shlex.split(
        find(rendering, "InferenceServerConfig")["spec"]["modelServerConfig"]["options"]
    )
    assert options[options.index("--tensor-parallel-size") + 1] == "4"


def test_a_population_policy_and_an_existing_launcher_config() -> None:
    accelerators = {"labelKey": "nvidia.com/gpu.product", "labelValues": ["H100"]}
    rendering = _render(
        {"launcherConfig": {"name": "shared-lc"}, "launcherPopulation": {"launchersPerNode": 2}},
        parallelism={"tensor": 2},
        acceleratorTypes=accelerators,
    )
    assert "LauncherConfig" not in [k for k, _ in kinds_and_names(rendering)]
    assert find(rendering, "InferenceServerConfig")["spec"]["launcherConfigName"] == "shared-lc"
    policy = find(rendering, "LauncherPopulationPolicy", "m-launcher")
    LauncherPopulationPolicy.model_validate(policy)
    assert policy["spec"] == {
        "enhancedNodeSelector": {
            "labelSelector": {
                "matchLabels": {"nvidia.com/gpu.present": "true"},
                "matchExpressions": [
                    {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["H100"]}
                ],
            },
            "allocatableResources": {"nvidia.com/gpu": {"min": 2}},
        },
        "countForLauncher": [{"launcherConfigName": "shared-lc", "launcherCount": 2}],
    }
    affinity = pod(find(rendering, "Deployment"))["affinity"]
    assert affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]


def test_without_a_pool_the_port_is_the_containers() -> None:
    rendering = run(
        msvc(_spec()),
        base(decodeDeployment=DECODE.replace('"{{ "app_port" | getPort }}"', '"9000"')),
    )
    assert find(rendering, "InferenceServerConfig")["spec"]["modelServerConfig"]["port"] == 9000
    bare = run(
        msvc({"decode": {"containers": [{"name": "vllm", "image": "v"}], "fma": {"enabled": True}}})
    )
    config = find(bare, "InferenceServerConfig")["spec"]["modelServerConfig"]
    assert (config["port"], config["options"]) == (8000, "--enable-sleep-mode")


def test_disabled_fma_renders_the_decode_deployment() -> None:
    rendering = _render({"enabled": False})
    assert find(rendering, "Deployment", "m-decode")
    assert "InferenceServerConfig" not in [k for k, _ in kinds_and_names(rendering)]


def test_an_unknown_fma_container_is_an_error() -> None:
    with pytest.raises(RenderError) as error:
        _render({"container": "nope"})
    assert (error.value.field, error.value.message) == (
        "spec.decode.fma.container",
        "no decode container named 'nope'",
    )


def test_max_instances_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="maxInstances"):
        _render({"launcherConfig": {"maxInstances": 0}})


def test_the_launchers_port_is_refused_for_vllm() -> None:
    spec = {"routing": {"modelName": "m", "ports": [{"name": "app_port", "port": 8001}]}, **_spec()}
    with pytest.raises(RenderError, match="vLLM port 8001 is the launcher's own port"):
        run(msvc(spec), base(decodeDeployment=DECODE, inferencePool=POOL))


def test_the_repo_sample() -> None:
    rendering = run(*load_sample(REPO_SAMPLES, "opt125m-fma"))
    assert "Deployment" not in [k for k, n in kinds_and_names(rendering) if n.endswith("-decode")]
    config = find(rendering, "InferenceServerConfig")["spec"]["modelServerConfig"]
    assert shlex.split(config["options"]) == ["--model", "facebook/opt-125m", "--enable-sleep-mode"]
    assert config["port"] == find(rendering, "InferencePool")["spec"]["targetPortNumber"] == 8000
    requester = find(rendering, "Deployment", "facebook-opt-125m-fma-decode-requester")
    assert container(requester, "inference-server")["resources"]["limits"]["nvidia.com/gpu"] == 1


def test_the_stub_sample_runs_the_stub_engine_with_its_latencies() -> None:
    rendering = run(*load_sample(REPO_SAMPLES, "opt125m-fma-stub"))
    launcher = find(rendering, "LauncherConfig")["spec"]["podTemplate"]["spec"]["containers"][0]
    assert launcher["args"][-2:] == ["--engine", "stub"]
    config = find(rendering, "InferenceServerConfig")["spec"]["modelServerConfig"]
    assert config["env_vars"]["FMA_STUB_START_S"] == "0.5"
