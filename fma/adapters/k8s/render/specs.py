"""An InferenceServerConfig as the core sees it (a :class:`ServerSpec`) and as a launcher
is asked to run it (a VllmConfig, the body of ``PUT /v2/vllm/instances/<id>``)."""

import shlex
from collections.abc import Sequence
from typing import Any, Final

from fma.adapters.k8s.render.errors import RenderError
from fma.adapters.k8s.render.flags import (
    MODEL_FLAGS,
    PORT_FLAGS,
    flag_value,
    gpu_memory_utilization,
    has_flag,
    tensor_parallel_size,
)
from fma.api.constants import VLLM_CONFIG_INFERENCE_PORT, VLLM_CONFIG_ISC_NAME
from fma.api.crds import InferenceServerConfig
from fma.api.quantity import quantity_bytes
from fma.core.model import ServerSpec

OPTIONS_PATH: Final = "spec.modelServerConfig.options"
UNKNOWN_MODEL: Final = "unknown"


def isc_options(isc: InferenceServerConfig) -> tuple[str, ...]:
    """The ISC's options split with shell-like quoting (never run by a shell); a
    :class:`RenderError` when they cannot be split or contain ``--port``."""
    who = f"InferenceServerConfig {isc.metadata.name}: {OPTIONS_PATH}"
    text = isc.spec.model_server_config.options or ""
    try:
        options = tuple(shlex.split(text))
    except ValueError as error:
        raise RenderError(f"{who}: cannot be split: {error}") from None
    if has_flag(options, PORT_FLAGS):
        raise RenderError(
            f"{who}: must not contain --port: the port is spec.modelServerConfig.port"
        )
    return options


def isc_server_spec(isc: InferenceServerConfig, *, gpu_memory_bytes: int) -> ServerSpec:
    """The server an InferenceServerConfig asks for.

    - ``model``: ``--model`` in the options, else the first option when it is not a flag
      (``<model> --dtype half``), else ``"unknown"``;
    - ``port``: ``spec.modelServerConfig.port``; ``options``: :func:`isc_options`;
      ``env``: the ``env_vars``, sorted by name;
    - ``weights_bytes``: ``weightsSize``, or, unset, the most the engine may claim:
      ``gpu_memory_utilization`` x ``gpu_memory_bytes`` (one GPU's memory) x the
      tensor-parallel size (``--tensor-parallel-size`` or ``-tp``, default 1), so that the
      sleeping budget errs on the safe side;
    - ``gpu_memory_utilization``: ``--gpu-memory-utilization`` (default 0.9; in (0, 1]);
    - ``engine_init_s``: the default.

    Raises :class:`RenderError` naming the ISC and the field.
    """
    config = isc.spec.model_server_config
    options = isc_options(isc)
    who = f"InferenceServerConfig {isc.metadata.name}: {OPTIONS_PATH}"
    try:
        model = flag_value(options, MODEL_FLAGS)
        share = gpu_memory_utilization(options)
        tensor = tensor_parallel_size(options)
    except ValueError as error:
        raise RenderError(f"{who}: {error}") from None
    if model is None:
        model = options[0] if options and not options[0].startswith("-") else UNKNOWN_MODEL
    if config.weights_size is not None:
        weights = quantity_bytes(config.weights_size)  # the model validated it
    else:
        weights = int(share * gpu_memory_bytes * tensor)
    return ServerSpec(
        model=model,
        port=config.port,
        options=options,
        env=tuple(sorted((config.env_vars or {}).items())),
        weights_bytes=weights,
        gpu_memory_utilization=share,
    )


def vllm_config(
    spec: ServerSpec, *, gpu_uuids: Sequence[str], isc_name: str | None
) -> dict[str, Any]:
    """The launcher's ``PUT`` body for ``spec`` on ``gpu_uuids``: options as a list (the
    launcher's preferred form: no argument is ever re-split) followed by ``--port <port>``,
    the GPU UUIDs, the environment, and the annotations ``isc-name`` (when given) and
    ``inference-port``."""
    annotations = {VLLM_CONFIG_INFERENCE_PORT: str(spec.port)}
    if isc_name is not None:
        annotations = {VLLM_CONFIG_ISC_NAME: isc_name, **annotations}
    return {
        "options": [*spec.options, PORT_FLAGS[0], str(spec.port)],
        "gpu_uuids": list(gpu_uuids),
        "env_vars": dict(spec.env),
        "annotations": annotations,
    }
