"""`fma modelservice generate`: multi-document YAML out; bad input is one line and exit 2."""

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fma.cli import app
from tests.unit.modelservice.helpers import REPO_SAMPLES

PD_MSVC = str(REPO_SAMPLES / "opt125m-pd-msvc.yaml")
PD_BASE = str(REPO_SAMPLES / "opt125m-pd-baseconfig.yaml")


def generate(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["modelservice", "generate", *args])
    return result.exit_code, result.stdout, result.stderr


def test_prints_every_object_as_multi_document_yaml() -> None:
    code, out, err = generate(
        "-m",
        PD_MSVC,
        "-b",
        PD_BASE,
        "--epp-cluster-role",
        "pod-read",
        "--epp-pull-secrets",
        "a, b",
        "--pd-pull-secrets",
        "c",
        "--namespace",
        "team",
    )
    assert code == 0, err
    assert err == ""
    documents = list(yaml.safe_load_all(out))
    assert [(d["kind"], d["metadata"]["name"]) for d in documents] == [
        ("Deployment", "facebook-opt-125m-nixl-prefill"),
        ("Deployment", "facebook-opt-125m-nixl-decode"),
        ("ServiceAccount", "facebook-opt-125m-nixl-sa"),
        ("Deployment", "facebook-opt-125m-nixl-epp"),
        ("Service", "facebook-opt-125m-nixl-epp-service"),
        ("ServiceAccount", "facebook-opt-125m-nixl-epp-sa"),
        ("RoleBinding", "facebook-opt-125m-nixl-epp-rolebinding"),
        ("HTTPRoute", "facebook-opt-125m-nixl-http-route"),
        ("InferencePool", "facebook-opt-125m-nixl-inference-pool"),
        ("InferenceModel", "facebook-opt-125m-nixl"),
    ]
    assert {d["metadata"]["namespace"] for d in documents} == {"team"}
    accounts = {d["metadata"]["name"]: d for d in documents if d["kind"] == "ServiceAccount"}
    assert accounts["facebook-opt-125m-nixl-epp-sa"]["imagePullSecrets"] == [
        {"name": "a"},
        {"name": "b"},
    ]
    assert accounts["facebook-opt-125m-nixl-sa"]["imagePullSecrets"] == [{"name": "c"}]


def test_the_base_config_is_optional_and_warnings_go_to_stderr() -> None:
    code, out, err = generate("--modelservice", PD_MSVC)
    assert code == 0
    kinds = [d["kind"] for d in yaml.safe_load_all(out)]
    assert kinds == ["Deployment", "Deployment", "ServiceAccount"]
    assert err == (
        "warning: spec.baseConfigMapRef names 'opt125m-pd-base' "
        "but no BaseConfig was given; none used\n"
    )


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


MSVC = """\
apiVersion: llm-d.ai/v1alpha1
kind: ModelService
metadata: {name: m}
spec:
  routing: {modelName: org/model, ports: [{name: app_port, port: 8000}]}
  modelArtifacts: {uri: hf://org/model}
  decode: {containers: [{name: vllm, args: ["{{ .HFModelName }}"]}]}
"""


@pytest.mark.parametrize(
    ("msvc", "base", "options", "message"),
    [
        ("spec: [", None, [], "{m}: line 1 not valid YAML"),
        ("- a", None, [], "{m}: expected a mapping at the top level"),
        (
            MSVC.replace("  modelArtifacts: {uri: hf://org/model}\n", ""),
            None,
            [],
            "{m}: spec.modelArtifacts: Field required",
        ),
        (
            MSVC.replace("hf://org/model}", "s3://b/m}"),
            None,
            [],
            "{m}: spec.modelArtifacts.uri: 's3://b/m': unsupported; "
            "use hf://, pvc:// or oci:// (lower case)",
        ),
        (
            MSVC.replace(".HFModelName", ".Nope"),
            None,
            [],
            "{m}: spec.decode.containers[0].args[0]: "
            "template line 1: unknown key .Nope (missingkey=error)",
        ),
        (
            MSVC,
            "data: {decodeDeployment: 'x: {{ .Nope }}'}",
            [],
            "{b}: data.decodeDeployment: template line 1: unknown key .Nope (missingkey=error)",
        ),
        (
            MSVC,
            "data: {decodeDeployment: 'spec: [{{ .ModelName }}'}",
            [],
            "{b}: data.decodeDeployment: not valid YAML after templating: line 1: ",
        ),
        (
            MSVC,
            "data: {eppDeployment: 'spec: {}'}",
            [],
            "--epp-cluster-role: required: the BaseConfig has an eppDeployment, "
            "and its RoleBinding needs a ClusterRole",
        ),
        (
            MSVC.replace("{name: m}", "{name: m, namespace: a}"),
            None,
            ["-n", "b"],
            "--namespace: 'b' differs from the ModelService's namespace 'a'",
        ),
        (MSVC, "kind: Secret", [], "{b}: kind: Input should be 'ConfigMap'"),
    ],
    ids=[
        "yaml",
        "not-a-mapping",
        "required",
        "uri",
        "msvc-template",
        "base-template",
        "base-yaml",
        "role",
        "namespace",
        "base-kind",
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, msvc: str, base: str | None, options: list[str], message: str
) -> None:
    m = _write(tmp_path, "m.yaml", msvc)
    args = ["-m", m, *options]
    b = ""
    if base is not None:
        b = _write(tmp_path, "b.yaml", base)
        args += ["-b", b]
    code, out, err = generate(*args)
    assert code == 2
    assert out == ""
    assert err.startswith("error: " + message.format(m=m, b=b)), err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_missing_file_is_one_line() -> None:
    code, _, err = generate("-m", "/nonexistent/m.yaml")
    assert (code, err) == (
        2,
        "error: /nonexistent/m.yaml: cannot read: No such file or directory\n",
    )
