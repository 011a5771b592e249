"""Tensor parallelism: ``parallelism.tensor`` made real on the model container.

Upstream reads the field and does nothing with it, so ``tensor: 8`` on a base that asks for
one GPU runs an 8-way model on one GPU. Here, when a role gives ``parallelism``, its model
container gets ``nvidia.com/gpu: <tensor>`` in requests and limits, and
``--tensor-parallel-size <tensor>`` is added to its args unless they already say it (saying
another size is an error). ``tensor: 0`` leaves both alone.

The model container is the one named ``vllm``, else the first that asks for GPUs, else the
first.
"""

import copy
from typing import Any, Final

from fma.api.constants import RESOURCE_GPU
from fma.modelservice.errors import RenderError

Obj = dict[str, Any]
TP_FLAGS: Final = ("--tensor-parallel-size", "-tp")
VLLM_CONTAINER: Final = "vllm"


def gpu_count(container: Obj) -> int | None:
    """The GPUs a container asks for (limits, else requests), if it says."""
    resources = container.get("resources") or {}
    for section in ("limits", "requests"):
        value = (resources.get(section) or {}).get(RESOURCE_GPU)
        if value is not None:
            try:
                return int(str(value))
            except ValueError:
                return None
    return None


def model_container_index(containers: list[Obj], name: str | None = None) -> int | None:
    """Index of the container that runs the model (see the module docstring)."""
    if not containers:
        return None
    names = [c.get("name") for c in containers]
    if name is not None:
        return names.index(name) if name in names else None
    if VLLM_CONTAINER in names:
        return names.index(VLLM_CONTAINER)
    for i, container in enumerate(containers):
        if gpu_count(container):
            return i
    return 0


def flag_value(args: list[str], flags: tuple[str, ...]) -> str | None:
    """The value of the first of ``flags`` in ``args`` (``--f v`` or ``--f=v``), if present."""
    for i, arg in enumerate(args):
        for flag in flags:
            if arg == flag and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(flag + "="):
                return arg[len(flag) + 1 :]
    return None


def apply_tensor_parallelism(deployment: Obj, tensor: int, field: str) -> Obj:
    """``deployment`` with its model container sized for ``tensor`` GPUs."""
    if tensor == 0:
        return deployment
    out = copy.deepcopy(deployment)
    pod = out.get("spec", {}).get("template", {}).get("spec", {})
    containers = pod.get("containers") or []
    index = model_container_index(containers)
    if index is None:
        raise RenderError("modelservice", field, "no container to give the GPUs to")
    container = containers[index]
    args = list(container.get("args") or [])
    said = flag_value(args, TP_FLAGS)
    if said is not None and said != str(tensor):
        raise RenderError(
            "modelservice",
            field,
            f"is {tensor} but container {container.get('name')}'s args say "
            f"--tensor-parallel-size {said}",
        )
    if said is None and tensor > 1:
        container["args"] = [*args, TP_FLAGS[0], str(tensor)]
    resources = container.setdefault("resources", {})
    for section in ("requests", "limits"):
        resources.setdefault(section, {})[RESOURCE_GPU] = tensor
    return out
