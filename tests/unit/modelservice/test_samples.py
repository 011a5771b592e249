"""Golden tests: upstream's samples and ours render the objects seed 004 and the spec list.

The expected values are written out here from the seed's scenarios and the spec's table of
children (names, replicas, Pod labels, container order, args), not taken from the renderer.
Where upstream is wrong, the expectation is the fixed value (the fix is noted).
"""

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fma.modelservice.render import Rendering
from tests.unit.modelservice.helpers import (
    INFERENCE_SERVING,
    MODEL,
    REPO_SAMPLES,
    ROLE,
    SHARED_SAMPLES,
    container,
    find,
    kinds_and_names,
    load_sample,
    pod,
    run,
)

NIXL_JSON = '{"kv_connector":"NixlConnector", "kv_role":"kv_both"}'
NIXL_JSON_OURS = '{"kv_connector":"NixlConnector","kv_role":"kv_both"}'


@dataclass(frozen=True)
class Expected:
    objects: set[tuple[str, str]]
    replicas: dict[str, int]
    model_label: str
    containers: dict[str, tuple[list[str], list[str]]]  # deployment: (init containers, containers)
    args: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (deployment, container)


def _routed(
    n: str, *, http_route: bool = True, services: tuple[str, ...] = ()
) -> set[tuple[str, str]]:
    """Seed 004 scenario 2's objects: P/D Deployments, EPP, routing and RBAC."""
    objects = {
        ("ServiceAccount", f"{n}-sa"),
        ("Deployment", f"{n}-epp"),
        ("Service", f"{n}-epp-service"),
        ("ServiceAccount", f"{n}-epp-sa"),
        ("RoleBinding", f"{n}-epp-rolebinding"),
        ("InferencePool", f"{n}-inference-pool"),
        ("InferenceModel", n),
    }
    if http_route:
        objects.add(("HTTPRoute", f"{n}-http-route"))
    return objects | {("Service", f"{n}-service-{role}") for role in services}


def _pd(n: str, decode_replicas: int) -> set[tuple[str, str]]:
    return _routed(n) | {("Deployment", f"{n}-prefill"), ("Deployment", f"{n}-decode")}


def _nixl(n: str, decode_replicas: int) -> Expected:
    return Expected(
        objects=_pd(n, decode_replicas),
        replicas={f"{n}-prefill": 1, f"{n}-decode": decode_replicas},
        model_label="facebook-opt-125m",
        containers={f"{n}-decode": (["routing-proxy"], ["vllm"]), f"{n}-prefill": ([], ["vllm"])},
        args={
            (f"{n}-decode", "vllm"): [
                "facebook/opt-125m",
                "--port",
                "8200",
                "--enforce-eager",
                "--kv-transfer-config",
                NIXL_JSON,
            ],
            (f"{n}-decode", "routing-proxy"): [
                "--port=8000",
                "--vllm-port=8200",
                "--connector=nixlv2",
                "-v=6",
            ],
            (f"{n}-prefill", "vllm"): [
                "facebook/opt-125m",
                "--port",
                "8000",
                "--enforce-eager",
                "--kv-transfer-config",
                NIXL_JSON,
            ],
            # Fixed: upstream renders -poolNamespace "" when the ModelService has no namespace.
            (f"{n}-epp", "epp"): [
                "-poolName",
                f"{n}-inference-pool",
                "-poolNamespace",
                "default",
                "serverless-workstream",
                "-v",
                "4",
                "--zap-encoder",
                "json",
                "-grpcPort",
                "9002",
                "-grpcHealthPort",
                "9003",
            ],
        },
    )


LLAMA4 = "meta-llama-4-scout-17b-16e"
LLAMA4_ARGS = [
    "/model-cache/path/to/llama4",
    "--tensor-parallel-size",
    "8",
    "--max-model-len",
    "1000000",
    "--override-generation-config='{\"attn_temperature_tuning\": true}'",
]

SHARED: dict[str, Expected] = {
    "simple-opt125m": Expected(
        objects={
            ("Deployment", "facebook-opt-125m-decode"),
            ("Service", "facebook-opt-125m-service-decode"),
            ("ServiceAccount", "facebook-opt-125m-sa"),
        },
        replicas={"facebook-opt-125m-decode": 1},
        model_label="facebook-opt-125m",
        containers={"facebook-opt-125m-decode": ([], ["vllm"])},
        args={("facebook-opt-125m-decode", "vllm"): ["facebook/opt-125m", "--port", "8000"]},
    ),
    "simple-granite": Expected(
        objects={
            ("Deployment", "granite-base-model-decode"),
            ("Service", "granite-base-model-service-decode"),
            ("ServiceAccount", "granite-base-model-sa"),
        },
        replicas={"granite-base-model-decode": 1},
        model_label="ibm-granite-granite-3-3-2b-base",
        containers={"granite-base-model-decode": ([], ["vllm"])},
        args={
            ("granite-base-model-decode", "vllm"): [
                "ibm-granite/granite-3.3-2b-base",
                "--port",
                "8000",
            ]
        },
    ),
    "nixl-pd": _nixl("facebook-opt-125m-nixl", 1),
    "nixl-pd-rbac": _nixl("facebook-opt-125m-nixl", 1),
    "nixl-xpyd": _nixl("facebook-opt-125m-nixl", 2),
    "facebook-legacy": Expected(
        objects=_routed("facebook-opt-125m", http_route=False, services=("prefill", "decode"))
        | {
            ("ConfigMap", "facebook-opt-125m-config-decoder"),
            ("ConfigMap", "facebook-opt-125m-config-prefiller"),
            ("Deployment", "facebook-opt-125m-prefill"),
            ("Deployment", "facebook-opt-125m-decode"),
        },
        replicas={"facebook-opt-125m-prefill": 1, "facebook-opt-125m-decode": 1},
        model_label="facebook-opt-125m",
        containers={
            "facebook-opt-125m-decode": (["routing-proxy"], ["vllm"]),
            "facebook-opt-125m-prefill": ([], ["vllm"]),
        },
        args={
            ("facebook-opt-125m-decode", "vllm"): [
                "--model",
                "facebook/opt-125m",
                "--port",
                "8200",
                "--kv-transfer-config",
                '{"kv_connector":"LMCacheConnectorV1","kv_role":"kv_consumer",'
                '"kv_connector_extra_config": '
                '{"discard_partial_chunks": false, "lmcache_rpc_port": "consumer1"}}',
            ],
            ("facebook-opt-125m-decode", "routing-proxy"): ["--port=8000", "--vllm-port=8200"],
        },
    ),
    "pvc-llama4": Expected(
        objects=_pd(LLAMA4, 1),
        replicas={f"{LLAMA4}-prefill": 1, f"{LLAMA4}-decode": 1},
        model_label="meta-llama-llama-4-scout-17b-16e",
        containers={
            f"{LLAMA4}-decode": (["routing-proxy"], ["vllm"]),
            f"{LLAMA4}-prefill": ([], ["vllm"]),
        },
        args={
            (f"{LLAMA4}-decode", "vllm"): [
                *LLAMA4_ARGS,
                "--port",
                "8200",
                "--enforce-eager",
                "--kv-transfer-config",
                NIXL_JSON,
            ],
            (f"{LLAMA4}-prefill", "vllm"): [
                *LLAMA4_ARGS,
                "--port",
                "8000",
                "--enforce-eager",
                "--kv-transfer-config",
                NIXL_JSON,
            ],
        },
    ),
    "test-hf": Expected(
        # prefillService is not rendered: there is no prefill (fixed: upstream prints it raw).
        objects=_routed("busybox", services=("decode",)) | {("Deployment", "busybox-decode")},
        replicas={"busybox-decode": 1, "busybox-epp": 1},
        model_label="ibm-granite-granite-3-3-2b-instruct",
        containers={"busybox-decode": ([], ["llm", "sidecar"])},
        args={("busybox-decode", "llm"): ["ibm-granite/granite-3.3-2b-instruct", "/model-cache"]},
    ),
    "test-pvc": Expected(
        objects=_routed("busybox", services=("decode",)) | {("Deployment", "busybox-decode")},
        replicas={"busybox-decode": 1, "busybox-epp": 1},
        model_label="llama-2075",
        containers={"busybox-decode": (["proxy"], ["llm"])},
        args={
            ("busybox-decode", "llm"): ["llama-2075"],
            ("busybox-decode", "proxy"): ["path/to/llama-2075"],
        },
    ),
}

REPO: dict[str, Expected] = {
    "opt125m-plain": Expected(
        objects={
            ("Deployment", "facebook-opt-125m-decode"),
            ("Service", "facebook-opt-125m-service-decode"),
            ("ServiceAccount", "facebook-opt-125m-sa"),
        },
        replicas={"facebook-opt-125m-decode": 1},
        model_label="facebook-opt-125m",
        containers={"facebook-opt-125m-decode": ([], ["vllm"])},
        args={("facebook-opt-125m-decode", "vllm"): ["facebook/opt-125m", "--port", "8000"]},
    ),
    "opt125m-pd": Expected(
        objects=_pd("facebook-opt-125m-nixl", 1),
        replicas={"facebook-opt-125m-nixl-prefill": 1, "facebook-opt-125m-nixl-decode": 1},
        model_label="facebook-opt-125m",
        containers={
            "facebook-opt-125m-nixl-decode": (["routing-proxy"], ["vllm"]),
            "facebook-opt-125m-nixl-prefill": ([], ["vllm"]),
        },
        args={
            ("facebook-opt-125m-nixl-decode", "vllm"): [
                "facebook/opt-125m",
                "--port",
                "8200",
                "--enforce-eager",
                "--kv-transfer-config",
                NIXL_JSON_OURS,
            ],
            ("facebook-opt-125m-nixl-prefill", "vllm"): [
                "facebook/opt-125m",
                "--port",
                "8000",
                "--enforce-eager",
                "--kv-transfer-config",
                NIXL_JSON_OURS,
            ],
            ("facebook-opt-125m-nixl-epp", "epp"): [
                "-poolName",
                "facebook-opt-125m-nixl-inference-pool",
                "-poolNamespace",
                "default",
                "-v",
                "4",
                "--zap-encoder",
                "json",
                "-grpcPort",
                "9002",
                "-grpcHealthPort",
                "9003",
            ],
        },
    ),
    "opt125m-xpyd": Expected(
        objects=_pd("facebook-opt-125m-nixl", 2),
        replicas={"facebook-opt-125m-nixl-prefill": 1, "facebook-opt-125m-nixl-decode": 2},
        model_label="facebook-opt-125m",
        containers={
            "facebook-opt-125m-nixl-decode": (["routing-proxy"], ["vllm"]),
            "facebook-opt-125m-nixl-prefill": ([], ["vllm"]),
        },
    ),
    "opt125m-fma": Expected(
        objects=_routed("facebook-opt-125m-fma")
        | {
            ("LauncherConfig", "facebook-opt-125m-fma-launcher"),
            ("InferenceServerConfig", "facebook-opt-125m-fma-decode"),
            ("LauncherPopulationPolicy", "facebook-opt-125m-fma-launcher"),
            ("Deployment", "facebook-opt-125m-fma-decode-requester"),
        },
        replicas={"facebook-opt-125m-fma-decode-requester": 2},
        model_label="facebook-opt-125m",
        containers={"facebook-opt-125m-fma-decode-requester": ([], ["inference-server"])},
        args={
            ("facebook-opt-125m-fma-decode-requester", "inference-server"): ["requester", "serve"]
        },
    ),
}


REPO["opt125m-fma-stub"] = REPO["opt125m-fma"]  # the same objects, with the stub engine


def _check(rendering: Rendering, expected: Expected) -> None:
    assert set(kinds_and_names(rendering)) == expected.objects
    assert len(rendering.objects) == len(expected.objects)
    for name, replicas in expected.replicas.items():
        assert find(rendering, "Deployment", name)["spec"]["replicas"] == replicas, name
    for name, (init, main) in expected.containers.items():
        deployment = find(rendering, "Deployment", name)
        assert [c["name"] for c in pod(deployment).get("initContainers") or []] == init
        assert [c["name"] for c in pod(deployment)["containers"]] == main
    for (name, container_name), args in expected.args.items():
        deployment = find(rendering, "Deployment", name)
        init = container_name in [c["name"] for c in pod(deployment).get("initContainers") or []]
        assert container(deployment, container_name, init=init)["args"] == args
    for obj in rendering.objects:
        assert obj["metadata"]["namespace"] == "default"
        labels = obj["metadata"].get("labels") or {}
        role = labels.get(ROLE)
        if obj["kind"] == "Deployment" and role in ("prefill", "decode"):
            expected_labels = {INFERENCE_SERVING: "true", MODEL: expected.model_label, ROLE: role}
            assert obj["spec"]["template"]["metadata"]["labels"] == expected_labels
            assert obj["spec"]["selector"]["matchLabels"] == expected_labels
            assert labels == expected_labels
            assert pod(obj)["serviceAccountName"].endswith("-sa")


def _samples(directory: Path, expected: dict[str, Expected]) -> list[str]:
    found = sorted(p.name.removesuffix("-msvc.yaml") for p in directory.glob("*-msvc.yaml"))
    assert found == sorted(expected), f"every sample in {directory} needs an expectation"
    return found


@pytest.mark.parametrize("sample", sorted(REPO))
def test_repo_samples(sample: str) -> None:
    _samples(REPO_SAMPLES, REPO)
    model, config = load_sample(REPO_SAMPLES, sample)
    _check(run(model, config), REPO[sample])


@pytest.mark.skipif(
    not SHARED_SAMPLES.is_dir(), reason=f"upstream's samples are not at {SHARED_SAMPLES}"
)
@pytest.mark.parametrize("sample", sorted(SHARED))
def test_upstream_samples(sample: str) -> None:
    _samples(SHARED_SAMPLES, SHARED)
    model, config = load_sample(SHARED_SAMPLES, sample)
    _check(run(model, config), SHARED[sample])


def test_seed_scenario_2_details() -> None:
    """The details seed 004 shows for scenario 2, on our sample."""
    rendering = run(*load_sample(REPO_SAMPLES, "opt125m-pd"))
    n = "facebook-opt-125m-nixl"
    epp = find(rendering, "Deployment", f"{n}-epp")
    assert pod(epp)["serviceAccountName"] == f"{n}-epp-sa"
    assert find(rendering, "RoleBinding")["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "pod-read",
    }
    model = find(rendering, "InferenceModel", n)
    assert model["spec"]["modelName"] == "facebook/opt-125m"
    assert model["spec"]["poolRef"] == {"name": f"{n}-inference-pool"}
    assert find(rendering, "Service", f"{n}-epp-service")["spec"]["ports"][0]["port"] == 9002
    pool = find(rendering, "InferencePool")
    assert pool["spec"]["selector"] == {INFERENCE_SERVING: "true", MODEL: "facebook-opt-125m"}
    assert pool["spec"]["extensionRef"] == {"name": f"{n}-epp-service"}
    assert pool["spec"]["targetPortNumber"] == 8000
    route = find(rendering, "HTTPRoute")
    assert route["spec"]["rules"][0]["backendRefs"][0]["name"] == f"{n}-inference-pool"
