"""Where templates are rendered: prefill and decode container args, and BaseConfig values.

As upstream: in the ModelService only ``args`` of the prefill and decode containers and init
containers are templates (not ``command``, ``env`` or the endpoint picker); in the BaseConfig
every known ``data`` value is one template, rendered as raw text *before* it is parsed as YAML
(so ``port: {{ "app_port" | getPort }}`` becomes a number).
"""

from collections.abc import Mapping
from typing import TypeVar

from fma.api.modelservice import BASECONFIG_KEYS, BaseConfigMap, ContainerSpec, ModelService, PDSpec
from fma.modelservice.errors import RenderError, Source
from fma.modelservice.gotemplate import Function, TemplateError, render

Spec = TypeVar("Spec", bound=PDSpec)


def render_field(
    text: str,
    data: Mapping[str, object],
    functions: Mapping[str, Function],
    source: Source,
    field: str,
) -> str:
    """``text`` rendered; a template error becomes a RenderError naming ``field``."""
    try:
        return render(text, data, functions)
    except TemplateError as error:
        raise RenderError(source, field, f"template {error}") from None


def _containers(
    containers: list[ContainerSpec] | None,
    field: str,
    data: Mapping[str, object],
    functions: Mapping[str, Function],
) -> list[ContainerSpec] | None:
    if containers is None:
        return None
    out = []
    for i, container in enumerate(containers):
        args = [
            render_field(arg, data, functions, "modelservice", f"{field}[{i}].args[{j}]")
            for j, arg in enumerate(container.args or [])
        ]
        out.append(container.model_copy(update={"args": args}) if container.args else container)
    return out


def _role(
    spec: Spec, field: str, data: Mapping[str, object], functions: Mapping[str, Function]
) -> Spec:
    return spec.model_copy(
        update={
            "containers": _containers(spec.containers, f"{field}.containers", data, functions),
            "init_containers": _containers(
                spec.init_containers, f"{field}.initContainers", data, functions
            ),
        }
    )


def interpolate_modelservice(
    msvc: ModelService, data: Mapping[str, object], functions: Mapping[str, Function]
) -> ModelService:
    """``msvc`` with the args of its prefill and decode containers rendered."""
    spec = msvc.spec
    update: dict[str, object] = {}
    if spec.prefill is not None:
        update["prefill"] = _role(spec.prefill, "spec.prefill", data, functions)
    if spec.decode is not None:
        update["decode"] = _role(spec.decode, "spec.decode", data, functions)
    return msvc.model_copy(update={"spec": spec.model_copy(update=update)})


def interpolate_baseconfig(
    base: BaseConfigMap, data: Mapping[str, object], functions: Mapping[str, Function]
) -> tuple[dict[str, str], list[str]]:
    """The known ``data`` values rendered, and warnings for keys that are ignored.

    Whitespace-only values count as absent. Unknown keys are ignored, as upstream does, but
    said (a misspelt key would otherwise silently render nothing).
    """
    rendered: dict[str, str] = {}
    warnings = [
        f"data.{key}: not a BaseConfig key; ignored (keys: {', '.join(BASECONFIG_KEYS)})"
        for key in base.data
        if key not in BASECONFIG_KEYS
    ]
    for key in BASECONFIG_KEYS:
        text = base.data.get(key)
        if text is None or not text.strip():
            continue
        rendered[key] = render_field(text, data, functions, "baseconfig", f"data.{key}")
    return rendered, warnings
