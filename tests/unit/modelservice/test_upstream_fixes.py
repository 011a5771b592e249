"""Where upstream's renderer is wrong, ours differs; one test per fix (docs/modelservice.md)."""

import pytest

from fma.modelservice.errors import RenderError
from tests.unit.modelservice.helpers import (
    SHARED_SAMPLES,
    base,
    container,
    find,
    kinds_and_names,
    load_sample,
    msvc,
    pod,
    run,
)

VLLM_BASE = """
    spec:
      template:
        spec:
          containers:
            - name: vllm
              command: [vllm, serve]
              args: ["--port", "8000"]
              env:
                - {name: FROM_BASE, value: "1"}
              volumeMounts:
                - {name: model-storage, mountPath: /model-cache}
              resources:
                limits: {nvidia.com/gpu: 1}
                requests: {cpu: "4", nvidia.com/gpu: 1}
          volumes:
            - name: model-storage
              emptyDir: {sizeLimit: 20Gi}
"""
shared = pytest.mark.skipif(
    not SHARED_SAMPLES.is_dir(), reason=f"upstream's samples are not at {SHARED_SAMPLES}"
)


def _decode(**decode: object) -> dict[str, object]:
    return {"decode": {"containers": [{"name": "vllm"}], **decode}}


def test_model_storage_is_not_duplicated() -> None:
    """Upstream appends its model-storage volume to a base that already has one."""
    decode = find(run(msvc(_decode()), base(decodeDeployment=VLLM_BASE)), "Deployment", "m-decode")
    assert pod(decode)["volumes"] == [{"name": "model-storage", "emptyDir": {"sizeLimit": "20Gi"}}]
    sized = msvc({**_decode(), "modelArtifacts": {"uri": "hf://org/model", "size": "5Gi"}})
    decode = find(run(sized, base(decodeDeployment=VLLM_BASE)), "Deployment", "m-decode")
    assert pod(decode)["volumes"] == [{"name": "model-storage", "emptyDir": {"sizeLimit": "5Gi"}}]
    claim = msvc({**_decode(), "modelArtifacts": {"uri": "pvc://claim/m"}})
    decode = find(run(claim, base(decodeDeployment=VLLM_BASE)), "Deployment", "m-decode")
    assert pod(decode)["volumes"] == [
        {"name": "model-storage", "persistentVolumeClaim": {"claimName": "claim", "readOnly": True}}
    ]


@shared
def test_model_storage_is_not_duplicated_on_upstreams_sample() -> None:
    rendering = run(*load_sample(SHARED_SAMPLES, "nixl-pd"))
    for role in ("prefill", "decode"):
        volumes = pod(find(rendering, "Deployment", f"facebook-opt-125m-nixl-{role}"))["volumes"]
        assert volumes == [{"name": "model-storage", "emptyDir": {"sizeLimit": "20Gi"}}]


def test_a_containers_own_env_survives_mount_model_volume() -> None:
    """Upstream replaces the env of a mountModelVolume container with the URI's env."""
    spec = {
        "decode": {
            "containers": [
                {
                    "name": "vllm",
                    "mountModelVolume": True,
                    "env": [{"name": "OWN", "value": "x"}, {"name": "HF_HOME", "value": "/mine"}],
                }
            ]
        },
        "modelArtifacts": {"uri": "hf://org/model", "authSecretName": "hf-secret"},
    }
    vllm = container(
        find(run(msvc(spec), base(decodeDeployment=VLLM_BASE)), "Deployment", "m-decode"), "vllm"
    )
    assert vllm["env"] == [
        {"name": "FROM_BASE", "value": "1"},
        {"name": "OWN", "value": "x"},
        {"name": "HF_HOME", "value": "/mine"},
        {
            "name": "HF_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "hf-secret", "key": "HF_TOKEN"}},
        },
    ]
    # The base already mounts model-storage at /model-cache: one mount, not two.
    assert vllm["volumeMounts"] == [{"name": "model-storage", "mountPath": "/model-cache"}]


def test_the_inference_model_name_is_sanitised_and_its_labels_kept() -> None:
    config = base(inferenceModel="metadata: {labels: {team: a}}\nspec: {criticality: Critical}")
    model = find(run(msvc(name="Llama.3_8B"), config), "InferenceModel")
    assert model["metadata"]["name"] == "llama-3-8b"
    assert model["metadata"]["labels"] == {
        "team": "a",
        "llm-d.ai/inferenceServing": "true",
        "llm-d.ai/model": "org-model",
    }
    assert model["spec"] == {
        "criticality": "Critical",
        "modelName": "org/model",
        "poolRef": {"name": "llama-3-8b-inference-pool"},
    }


@shared
def test_no_kind_less_prefill_service_fragment() -> None:
    """Upstream's generate prints the base's prefillService raw when there is no prefill."""
    rendering = run(*load_sample(SHARED_SAMPLES, "test-hf"))
    services = [n for k, n in kinds_and_names(rendering) if k == "Service"]
    assert services == ["busybox-service-decode", "busybox-epp-service"]
    assert all(o.get("kind") and o["metadata"].get("name") for o in rendering.objects)


def test_the_namespace_defaults_and_must_agree() -> None:
    epp = (
        "spec: {template: {spec: {containers: "
        '[{name: epp, args: ["{{ .ModelServiceNamespace }}"]}]}}}'
    )
    config = base(eppDeployment=epp)

    def namespace_arg(own: str | None = None, requested: str | None = None) -> str:
        model = msvc(namespace=own) if own else msvc()
        rendering = run(model, config, namespace=requested)
        assert {o["metadata"]["namespace"] for o in rendering.objects} == {rendering.namespace}
        arg: str = container(find(rendering, "Deployment", "m-epp"), "epp")["args"][0]
        return arg

    assert namespace_arg() == "default"  # upstream: ""
    assert namespace_arg(requested="team") == "team"
    assert namespace_arg(own="own") == "own"
    assert namespace_arg(own="own", requested="own") == "own"
    with pytest.raises(RenderError) as error:
        namespace_arg(own="own", requested="other")
    assert (error.value.source, error.value.field) == ("option", "--namespace")


def test_the_epp_role_binding_needs_a_role() -> None:
    """Upstream renders roleRef.name "" without --epp-cluster-role."""
    with pytest.raises(RenderError) as error:
        run(msvc(), base(eppDeployment="spec: {}"), epp_cluster_role=None)
    assert (error.value.source, error.value.field) == ("option", "--epp-cluster-role")
    assert run(msvc(), base(decodeDeployment="spec: {}"), epp_cluster_role=None).objects


def test_an_owner_reference_that_cannot_be_made_is_an_error() -> None:
    """Upstream logs "unable to set owner reference" and carries on (exit 0)."""
    config = base(configMaps="- metadata: {name: c, namespace: elsewhere}")
    with pytest.raises(RenderError) as error:
        run(msvc(uid="u"), config)
    assert (error.value.source, error.value.field) == (
        "baseconfig",
        "data.configMaps[0].metadata.namespace",
    )
    assert "owner references cannot cross namespaces" in error.value.message
    same = run(msvc(uid="u"), base(configMaps="- metadata: {name: c, namespace: default}"))
    assert same.objects[0]["metadata"]["ownerReferences"][0]["uid"] == "u"


def test_decouple_scaling_marks_the_deployments_and_keeps_live_replicas() -> None:
    """Upstream's dry run ignores decoupleScaling; the operator passes live replicas in."""
    spec = {"decoupleScaling": True, "decode": {"replicas": 2}, "prefill": {"replicas": 1}}
    fresh = run(msvc(spec))
    decode = find(fresh, "Deployment", "m-decode")
    assert decode["metadata"]["annotations"] == {"llm-d.ai/decouple-scaling": "true"}
    assert decode["spec"]["replicas"] == 2  # at creation, the ModelService's count
    live = run(msvc(spec), live_replicas={"m-decode": 7})
    assert find(live, "Deployment", "m-decode")["spec"]["replicas"] == 7
    assert find(live, "Deployment", "m-prefill")["spec"]["replicas"] == 1  # not live yet
    coupled = run(msvc({"decode": {"replicas": 2}}), live_replicas={"m-decode": 7})
    decode = find(coupled, "Deployment", "m-decode")
    assert decode["spec"]["replicas"] == 2 and "annotations" not in decode["metadata"]


def test_tensor_parallelism_sets_the_gpus_and_the_flag() -> None:
    """Upstream ignores parallelism.tensor."""
    rendering = run(msvc(_decode(parallelism={"tensor": 4})), base(decodeDeployment=VLLM_BASE))
    vllm = container(find(rendering, "Deployment", "m-decode"), "vllm")
    assert vllm["args"] == ["--port", "8000", "--tensor-parallel-size", "4"]
    assert vllm["resources"] == {
        "limits": {"nvidia.com/gpu": 4},
        "requests": {"cpu": "4", "nvidia.com/gpu": 4},
    }


def test_tensor_parallelism_respects_and_checks_the_flag() -> None:
    said = _decode(parallelism={"tensor": 8})
    said["decode"]["containers"][0]["args"] = ["--tensor-parallel-size", "8"]  # type: ignore[index]
    vllm = container(
        find(run(msvc(said), base(decodeDeployment=VLLM_BASE)), "Deployment", "m-decode"), "vllm"
    )
    assert vllm["args"] == ["--tensor-parallel-size", "8", "--port", "8000"]
    said["decode"]["containers"][0]["args"] = ["-tp=2"]  # type: ignore[index]
    with pytest.raises(RenderError) as error:
        run(msvc(said), base(decodeDeployment=VLLM_BASE))
    assert error.value.field == "spec.decode.parallelism.tensor"
    assert error.value.message == "is 8 but container vllm's args say --tensor-parallel-size 2"


def test_tensor_one_sets_one_gpu_without_a_flag_and_zero_leaves_all_alone() -> None:
    one = run(msvc(_decode(parallelism={})), base(decodeDeployment=VLLM_BASE))
    vllm = container(find(one, "Deployment", "m-decode"), "vllm")
    assert vllm["args"] == ["--port", "8000"]
    assert vllm["resources"]["limits"] == {"nvidia.com/gpu": 1}
    zero = run(msvc(_decode(parallelism={"tensor": 0})), base(decodeDeployment=VLLM_BASE))
    assert container(find(zero, "Deployment", "m-decode"), "vllm")["resources"]["requests"] == {
        "cpu": "4",
        "nvidia.com/gpu": 1,
    }


@shared
def test_tensor_parallelism_on_upstreams_llama4_sample() -> None:
    rendering = run(*load_sample(SHARED_SAMPLES, "pvc-llama4"))
    for role in ("prefill", "decode"):
        deployment = find(rendering, "Deployment", f"meta-llama-4-scout-17b-16e-{role}")
        vllm = container(deployment, "vllm")
        assert vllm["resources"]["limits"]["nvidia.com/gpu"] == 8  # upstream: 1
        assert vllm["args"].count("--tensor-parallel-size") == 1


def test_oci_uris_are_served() -> None:
    """Upstream fails every reconcile of an oci:// ModelService."""
    spec = {**_decode(), "modelArtifacts": {"uri": "oci://quay.io/models/opt:1"}}
    spec["decode"]["containers"][0]["mountModelVolume"] = True  # type: ignore[index]
    decode = find(run(msvc(spec)), "Deployment", "m-decode")
    assert pod(decode)["volumes"] == [
        {
            "name": "model-storage",
            "image": {"reference": "quay.io/models/opt:1", "pullPolicy": "IfNotPresent"},
        }
    ]
    assert container(decode, "vllm")["volumeMounts"] == [
        {"name": "model-storage", "mountPath": "/model-cache", "readOnly": True}
    ]


def test_explicit_zero_replicas_win_over_the_base() -> None:
    rendering = run(msvc({"decode": {"replicas": 0}}), base(decodeDeployment="spec: {replicas: 3}"))
    assert find(rendering, "Deployment", "m-decode")["spec"]["replicas"] == 0


def test_a_bad_name_is_an_error_not_a_shared_fallback() -> None:
    with pytest.raises(RenderError) as error:
        run(msvc(name="___"))
    assert error.value.field == "metadata.name"
    with pytest.raises(RenderError) as error:
        run(msvc({"routing": {"modelName": "///"}}))
    assert error.value.field == "spec.routing.modelName"
