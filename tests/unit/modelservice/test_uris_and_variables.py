"""Model URIs (volumes, mounts, env) and the template variables they feed."""

import pytest

from fma.api.modelservice import ModelArtifacts
from fma.modelservice.errors import RenderError
from fma.modelservice.uris import model_source
from fma.modelservice.variables import VARIABLE_NAMES, template_variables
from tests.unit.modelservice.helpers import base, container, find, msvc, pod, run

MOUNTED = {"decode": {"containers": [{"name": "vllm", "mountModelVolume": True}]}}


def _artifacts(uri: str, **extra: str) -> ModelArtifacts:
    return ModelArtifacts.model_validate({"uri": uri, **extra})


def test_hf_downloads_into_an_empty_dir_with_token_and_home() -> None:
    source = model_source(_artifacts("hf://facebook/opt-125m", authSecretName="hf", size="5Gi"))
    assert (source.hf_model_name, source.model_path, source.mounted_model_path) == (
        "facebook/opt-125m",
        "facebook/opt-125m",
        "/model-cache",
    )
    assert source.volume == {"name": "model-storage", "emptyDir": {"sizeLimit": "5Gi"}}
    assert source.mount == {"name": "model-storage", "mountPath": "/model-cache"}
    assert source.env == [
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "HF_TOKEN"}}},
        {"name": "HF_HOME", "value": "/model-cache"},
    ]
    plain = model_source(_artifacts("hf://facebook/opt-125m"))
    assert plain.volume == {"name": "model-storage", "emptyDir": {}}
    assert plain.env == [{"name": "HF_HOME", "value": "/model-cache"}]


def test_pvc_mounts_the_claim_read_only() -> None:
    source = model_source(_artifacts("pvc://llama-pvc/path/to/llama4"))
    assert (source.hf_model_name, source.model_path, source.mounted_model_path) == (
        "",
        "path/to/llama4",
        "/model-cache/path/to/llama4",
    )
    assert source.volume == {
        "name": "model-storage",
        "persistentVolumeClaim": {"claimName": "llama-pvc", "readOnly": True},
    }
    assert source.mount == {"name": "model-storage", "mountPath": "/model-cache", "readOnly": True}
    assert source.env == []
    whole = model_source(_artifacts("pvc://llama-pvc"))
    assert (whole.model_path, whole.mounted_model_path) == ("", "/model-cache")
    assert whole.volume["persistentVolumeClaim"]["claimName"] == "llama-pvc"


def test_oci_mounts_an_image_volume() -> None:
    source = model_source(_artifacts("oci://registry.example/models/opt-125m:v1"))
    assert source.volume == {
        "name": "model-storage",
        "image": {"reference": "registry.example/models/opt-125m:v1", "pullPolicy": "IfNotPresent"},
    }
    assert source.mount == {"name": "model-storage", "mountPath": "/model-cache", "readOnly": True}
    assert (source.model_path, source.mounted_model_path) == ("", "/model-cache")


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("hf://facebook", "hf://facebook: expected hf://<repo-id>/<model-id>"),
        ("hf://a/b/c", "hf://a/b/c: expected hf://<repo-id>/<model-id>"),
        ("hf://a/", "hf://a/: expected hf://<repo-id>/<model-id>"),
        ("pvc://Bad_Claim/x", "pvc://Bad_Claim/x: 'Bad_Claim' is not a PersistentVolumeClaim name"),
        ("pvc:///x", "pvc:///x: '' is not a PersistentVolumeClaim name"),
        ("oci://", "oci://: expected oci://<registry>/<repository>[:<tag>|@<digest>]"),
        ("HF://a/b", "'HF://a/b': unsupported; use hf://, pvc:// or oci:// (lower case)"),
        (
            "s3://bucket/model",
            "'s3://bucket/model': unsupported; use hf://, pvc:// or oci:// (lower case)",
        ),
        (
            "facebook/opt-125m",
            "'facebook/opt-125m': unsupported; use hf://, pvc:// or oci:// (lower case)",
        ),
    ],
)
def test_bad_uris_are_errors_naming_the_field(uri: str, message: str) -> None:
    with pytest.raises(RenderError) as error:
        model_source(_artifacts(uri))
    assert (error.value.source, error.value.field, error.value.message) == (
        "modelservice",
        "spec.modelArtifacts.uri",
        message,
    )


def test_mounted_containers_get_the_volume_mount_and_env() -> None:
    rendering = run(msvc({**MOUNTED, "modelArtifacts": {"uri": "pvc://claim/m"}}))
    decode = find(rendering, "Deployment", "m-decode")
    assert pod(decode)["volumes"] == [
        {"name": "model-storage", "persistentVolumeClaim": {"claimName": "claim", "readOnly": True}}
    ]
    assert container(decode, "vllm")["volumeMounts"] == [
        {"name": "model-storage", "mountPath": "/model-cache", "readOnly": True}
    ]


def test_volumes_go_to_prefill_and_decode_only() -> None:
    rendering = run(msvc({"decode": {}}), base(eppDeployment="spec: {}"))
    assert "volumes" in pod(find(rendering, "Deployment", "m-decode"))
    assert "volumes" not in pod(find(rendering, "Deployment", "m-epp"))


def test_template_variables() -> None:
    model = msvc(
        {
            "routing": {"modelName": "Org/Model.V1"},
            "modelArtifacts": {"uri": "pvc://claim/a/b", "authSecretName": "s"},
        },
        name="svc",
    )
    assert template_variables(model, "ns", model_source(model.spec.model_artifacts)) == {
        "ModelServiceName": "svc",
        "ModelServiceNamespace": "ns",
        "ModelName": "Org/Model.V1",
        "HFModelName": "",
        "SanitizedModelName": "org-model-v1",
        "ModelPath": "a/b",
        "MountedModelPath": "/model-cache/a/b",
        "AuthSecretName": "s",
        "EPPServiceName": "svc-epp-service",
        "EPPDeploymentName": "svc-epp",
        "PrefillDeploymentName": "svc-prefill",
        "DecodeDeploymentName": "svc-decode",
        "PrefillServiceName": "svc-service-prefill",
        "DecodeServiceName": "svc-service-decode",
        "InferencePoolName": "svc-inference-pool",
        "InferenceModelName": "svc",
    }
    assert len(VARIABLE_NAMES) == 16


def test_every_variable_renders_in_a_base_config() -> None:
    lines = "\n".join(f"    {name}: '{{{{ .{name} }}}}'" for name in VARIABLE_NAMES)
    config = base(configMaps=f"- metadata: {{name: vars}}\n  data:\n{lines}")
    rendering = run(msvc(namespace="team"), config)
    data = find(rendering, "ConfigMap", "vars")["data"]
    assert data["ModelServiceNamespace"] == "team"
    assert data["HFModelName"] == "org/model"
    assert data["InferencePoolName"] == "m-inference-pool"
    assert set(data) == set(VARIABLE_NAMES)
