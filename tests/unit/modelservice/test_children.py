"""Children's names, labels and owner references."""

import pytest

from fma.modelservice.children import owned, owner_references
from fma.modelservice.names import ChildNames, common_labels, model_label, pod_labels, sanitize
from tests.unit.modelservice.helpers import base, find, kinds_and_names, msvc, pod, run

DECODE = """
    spec:
      template:
        spec:
          containers:
            - name: vllm
              image: vllm
"""


def test_names_are_upstreams() -> None:
    names = ChildNames("facebook-opt-125m-nixl")
    assert names.deployment("decode") == "facebook-opt-125m-nixl-decode"
    assert names.deployment("prefill") == "facebook-opt-125m-nixl-prefill"
    assert names.service("decode") == "facebook-opt-125m-nixl-service-decode"
    assert names.service("prefill") == "facebook-opt-125m-nixl-service-prefill"
    assert names.pd_service_account == "facebook-opt-125m-nixl-sa"
    assert names.epp_deployment == "facebook-opt-125m-nixl-epp"
    assert names.epp_service == "facebook-opt-125m-nixl-epp-service"
    assert names.epp_service_account == "facebook-opt-125m-nixl-epp-sa"
    assert names.epp_role_binding == "facebook-opt-125m-nixl-epp-rolebinding"
    assert names.inference_pool == "facebook-opt-125m-nixl-inference-pool"
    assert names.inference_model == "facebook-opt-125m-nixl"
    assert names.http_route == "facebook-opt-125m-nixl-http-route"
    assert names.requester_deployment == "facebook-opt-125m-nixl-decode-requester"
    assert names.inference_server_config == "facebook-opt-125m-nixl-decode"
    assert names.launcher_config == "facebook-opt-125m-nixl-launcher"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("facebook/opt-125m", "facebook-opt-125m"),
        ("meta-llama/Llama-4-Scout-17B-16E", "meta-llama-llama-4-scout-17b-16e"),
        ("ibm-granite/granite-3.3-2b-base", "ibm-granite-granite-3-3-2b-base"),
        ("  Spaced Out  ", "spaced-out"),
        ("__edge..", "edge"),
        ("a" * 62 + "/b", "a" * 62),  # cut at 63, then no trailing "-"
    ],
)
def test_sanitize(text: str, expected: str) -> None:
    assert sanitize(text) == expected


def test_long_names_keep_their_suffix_and_stay_distinct() -> None:
    names = ChildNames("x" * 70)
    decode, prefill = names.deployment("decode"), names.deployment("prefill")
    assert decode == "x" * 56 + "-decode" and len(decode) == 63
    assert prefill == "x" * 55 + "-prefill"
    assert decode != prefill


def test_labels() -> None:
    assert model_label("facebook/opt-125m") == "facebook-opt-125m"
    assert common_labels("facebook/opt-125m") == {
        "llm-d.ai/inferenceServing": "true",
        "llm-d.ai/model": "facebook-opt-125m",
    }
    assert pod_labels("facebook/opt-125m", "decode") == {
        "llm-d.ai/inferenceServing": "true",
        "llm-d.ai/model": "facebook-opt-125m",
        "llm-d.ai/role": "decode",
    }


def test_owner_references_are_a_pure_function_of_name_and_uid() -> None:
    assert owner_references("m", "uid-1") == [
        {"apiVersion": "llm-d.ai/v1alpha1", "kind": "ModelService", "name": "m", "uid": "uid-1"}
    ]
    assert owner_references("m", None) == []
    assert owner_references("m", "") == []


def test_owned_keeps_other_owners_and_replaces_its_own() -> None:
    other = {"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "c1"}
    stale = {"apiVersion": "llm-d.ai/v1alpha1", "kind": "ModelService", "name": "m", "uid": "old"}
    obj = {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": {"ownerReferences": [other, stale], "name": "s"},
    }
    result = owned(obj, "m", "new")
    assert list(result) == ["apiVersion", "kind", "metadata"]
    assert list(result["metadata"]) == ["name", "ownerReferences"]
    assert result["metadata"]["ownerReferences"] == [other, {**stale, "uid": "new"}]


def test_every_child_is_owned_when_the_uid_is_known() -> None:
    model = msvc({"decode": {"containers": [{"name": "vllm"}]}}, uid="u-1")
    config = base(
        decodeDeployment=DECODE,
        decodeService="spec: {}",
        eppDeployment="spec: {}",
        eppService="spec: {}",
        inferencePool="spec: {targetPortNumber: 8000}",
        inferenceModel="spec: {}",
        httpRoute="spec: {}",
        configMaps="- metadata: {name: extra}\n  data: {a: b}",
    )
    rendering = run(model, config)
    assert len(rendering.objects) == 11
    for obj in rendering.objects:
        assert obj["metadata"]["ownerReferences"] == owner_references("m", "u-1"), obj["kind"]
    assert (
        run(model, config, uid="u-2").objects[0]["metadata"]["ownerReferences"][0]["uid"] == "u-2"
    )
    unowned = run(msvc({"decode": {"containers": [{"name": "vllm"}]}}), config)
    assert all("ownerReferences" not in o["metadata"] for o in unowned.objects)


def test_pod_labels_selectors_and_service_accounts() -> None:
    model = msvc({"decode": {}, "prefill": {}}, name="svc")
    rendering = run(model, base(decodeService="spec: {selector: {app: base}}"))
    assert kinds_and_names(rendering) == [
        ("Deployment", "svc-prefill"),
        ("Deployment", "svc-decode"),
        ("Service", "svc-service-decode"),
        ("ServiceAccount", "svc-sa"),
    ]
    for role in ("prefill", "decode"):
        deployment = find(rendering, "Deployment", f"svc-{role}")
        labels = pod_labels("org/model", role)
        assert deployment["metadata"]["labels"] == labels
        assert deployment["spec"]["selector"] == {"matchLabels": labels}
        assert deployment["spec"]["template"]["metadata"]["labels"] == labels
        assert pod(deployment)["serviceAccountName"] == "svc-sa"
    service = find(rendering, "Service")
    assert service["spec"]["selector"] == {"app": "base", **pod_labels("org/model", "decode")}


def test_epp_labels_selector_and_service_account() -> None:
    rendering = run(
        msvc(name="svc"),
        base(
            eppDeployment="metadata: {name: epp, namespace: other}\nspec: {replicas: 3}",
            eppService="spec: {}",
        ),
    )
    epp = find(rendering, "Deployment", "svc-epp")
    labels = {"llm-d.ai/epp": "svc-epp"}
    assert epp["metadata"] == {"name": "svc-epp", "namespace": "default", "labels": labels}
    assert epp["spec"]["replicas"] == 3
    assert epp["spec"]["selector"] == {"matchLabels": labels}
    assert pod(epp)["serviceAccountName"] == "svc-epp-sa"
    service = find(rendering, "Service", "svc-epp-service")
    assert service["metadata"]["labels"] == labels and service["spec"]["selector"] == labels
    binding = find(rendering, "RoleBinding", "svc-epp-rolebinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "svc-epp-sa", "namespace": "default"}
    ]
    assert (
        "data.eppDeployment.metadata.namespace: 'other' is replaced by 'default'"
        in rendering.warnings
    )


def test_pull_secrets_go_to_the_service_accounts() -> None:
    rendering = run(
        msvc({"decode": {}}),
        base(eppDeployment="spec: {}"),
        pd_pull_secrets=("a", "b"),
        epp_pull_secrets=("c",),
    )
    assert find(rendering, "ServiceAccount", "m-sa")["imagePullSecrets"] == [
        {"name": "a"},
        {"name": "b"},
    ]
    assert find(rendering, "ServiceAccount", "m-epp-sa")["imagePullSecrets"] == [{"name": "c"}]
