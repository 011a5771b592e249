"""Builders and finders shared by the ModelService tests."""

from pathlib import Path
from textwrap import dedent
from typing import Any

import yaml

from fma.api.modelservice import BaseConfigMap, ModelService
from fma.modelservice.render import Rendering, RenderOptions, render

ROOT = Path(__file__).parents[3]
REPO_SAMPLES = ROOT / "samples" / "modelservice"
SHARED_SAMPLES = ROOT.parent / "shared" / "samples" / "modelservice"
Obj = dict[str, Any]

INFERENCE_SERVING = "llm-d.ai/inferenceServing"
MODEL = "llm-d.ai/model"
ROLE = "llm-d.ai/role"


def msvc(spec: Obj | None = None, *, name: str = "m", **metadata: Any) -> ModelService:
    """A ModelService: a minimal hf:// one, with ``spec`` keys replaced."""
    body: Obj = {
        "routing": {"modelName": "org/model", "ports": [{"name": "app_port", "port": 8000}]},
        "modelArtifacts": {"uri": "hf://org/model"},
    }
    body.update(spec or {})
    return ModelService.model_validate({"metadata": {"name": name, **metadata}, "spec": body})


def base(**data: str) -> BaseConfigMap:
    """A BaseConfig whose values are the given YAML snippets (dedented)."""
    return BaseConfigMap.model_validate(
        {"metadata": {"name": "base"}, "data": {k: dedent(v) for k, v in data.items()}}
    )


def run(model: ModelService, config: BaseConfigMap | None = None, **options: Any) -> Rendering:
    options.setdefault("epp_cluster_role", "pod-read")
    return render(model, config, RenderOptions(**options))


def find(rendering: Rendering, kind: str, name: str | None = None) -> Obj:
    """The one rendered object of ``kind`` (and ``name``)."""
    found = [
        o
        for o in rendering.objects
        if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''} in {kinds_and_names(rendering)}"
    return found[0]


def kinds_and_names(rendering: Rendering) -> list[tuple[str, str]]:
    return [(o["kind"], o["metadata"]["name"]) for o in rendering.objects]


def pod(deployment: Obj) -> Obj:
    spec: Obj = deployment["spec"]["template"]["spec"]
    return spec


def container(deployment: Obj, name: str, *, init: bool = False) -> Obj:
    listed = pod(deployment).get("initContainers" if init else "containers") or []
    (found,) = [c for c in listed if c["name"] == name]
    return dict(found)


def sample_files(directory: Path, sample: str) -> tuple[Path, Path]:
    """A sample's ModelService file and its BaseConfig's: ``<sample>-baseconfig.yaml``, else
    the ``*-baseconfig.yaml`` whose ConfigMap the ModelService's baseConfigMapRef names (a
    BaseConfig serves several samples)."""
    msvc_file = directory / f"{sample}-msvc.yaml"
    own = directory / f"{sample}-baseconfig.yaml"
    if own.exists():
        return msvc_file, own
    ref = yaml.safe_load(msvc_file.read_text())["spec"]["baseConfigMapRef"]["name"]
    for path in sorted(directory.glob("*-baseconfig.yaml")):
        if yaml.safe_load(path.read_text())["metadata"]["name"] == ref:
            return msvc_file, path
    raise AssertionError(f"{msvc_file}: no BaseConfig named {ref!r} in {directory}")


def load_sample(directory: Path, sample: str) -> tuple[ModelService, BaseConfigMap]:
    msvc_file, base_file = sample_files(directory, sample)
    model = ModelService.model_validate(yaml.safe_load(msvc_file.read_text()))
    config = BaseConfigMap.model_validate(yaml.safe_load(base_file.read_text()))
    return model, config
