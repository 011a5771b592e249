"""An InferenceServerConfig as a server spec and as a launcher's PUT body."""

from typing import Any

import pytest

from fma.adapters.k8s.render.errors import RenderError
from fma.adapters.k8s.render.specs import isc_server_spec, vllm_config
from fma.api.crds import InferenceServerConfig
from fma.core.model import ServerSpec
from fma.launcher.api import VllmConfig

GIB = 1024**3
GPU_BYTES = 80 * GIB


def isc(options: str | None, **config: Any) -> InferenceServerConfig:
    return InferenceServerConfig.model_validate(
        {
            "metadata": {"name": "opt", "namespace": "team-a"},
            "spec": {
                "launcherConfigName": "lc-small",
                "modelServerConfig": {"port": 8005, "options": options, **config},
            },
        }
    )


def test_a_full_isc() -> None:
    spec = isc_server_spec(
        isc(
            "--model facebook/opt-125m -tp 2 --gpu-memory-utilization=0.5 "
            "--served-model-name 'opt small'",
            env_vars={"VLLM_LOGGING_LEVEL": "DEBUG", "HF_HOME": "/tmp/hf"},
            weightsSize="16Gi",
        ),
        gpu_memory_bytes=GPU_BYTES,
    )
    assert spec == ServerSpec(
        model="facebook/opt-125m",
        port=8005,
        options=(
            "--model",
            "facebook/opt-125m",
            "-tp",
            "2",
            "--gpu-memory-utilization=0.5",
            "--served-model-name",
            "opt small",
        ),
        env=(("HF_HOME", "/tmp/hf"), ("VLLM_LOGGING_LEVEL", "DEBUG")),
        weights_bytes=16 * GIB,
        gpu_memory_utilization=0.5,
    )


def test_unset_weights_size_is_the_upper_bound() -> None:
    spec = isc_server_spec(
        isc("--model m --tensor-parallel-size 4 --gpu-memory-utilization 0.5"),
        gpu_memory_bytes=GPU_BYTES,
    )
    assert spec.weights_bytes == 0.5 * GPU_BYTES * 4 == 160 * GIB
    default = isc_server_spec(isc("--model=m"), gpu_memory_bytes=10 * GIB)
    assert (default.model, default.weights_bytes, default.gpu_memory_utilization) == (
        "m",
        9 * GIB,
        0.9,
    )


@pytest.mark.parametrize(
    ("options", "model"),
    [
        ("facebook/opt-125m --dtype half", "facebook/opt-125m"),
        ("--dtype half", "unknown"),
        (None, "unknown"),
    ],
)
def test_the_model_without_model_flag(options: str | None, model: str) -> None:
    assert isc_server_spec(isc(options), gpu_memory_bytes=GPU_BYTES).model == model


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            "--model m --port 9000",
            "must not contain --port: the port is spec.modelServerConfig.port",
        ),
        ("--model m --port=9000", "must not contain --port"),
        ("--model 'm", "cannot be split: No closing quotation"),
        ("--model m --gpu-memory-utilization 0", "--gpu-memory-utilization '0' must be in (0, 1]"),
        ("--model m --gpu-memory-utilization x", "--gpu-memory-utilization 'x' is not a number"),
        ("--model m -tp 0", "--tensor-parallel-size '0' must be at least 1"),
        ("--model m -tp two", "--tensor-parallel-size 'two' is not a whole number"),
        ("--model", "--model needs a value"),
    ],
)
def test_bad_options_are_errors_naming_the_field(options: str, message: str) -> None:
    with pytest.raises(RenderError) as raised:
        isc_server_spec(isc(options), gpu_memory_bytes=GPU_BYTES)
    assert str(raised.value).startswith(
        "InferenceServerConfig opt: spec.modelServerConfig.options: "
    )
    assert message in str(raised.value)


def test_vllm_config_is_the_launchers_body() -> None:
    spec = isc_server_spec(
        isc("--model m --served-model-name 'a b'", env_vars={"X": "1"}),
        gpu_memory_bytes=GPU_BYTES,
    )
    body = vllm_config(spec, gpu_uuids=["GPU-aaaa", "GPU-bbbb"], isc_name="opt")
    assert body == {
        "options": ["--model", "m", "--served-model-name", "a b", "--port", "8005"],
        "gpu_uuids": ["GPU-aaaa", "GPU-bbbb"],
        "env_vars": {"X": "1"},
        "annotations": {"isc-name": "opt", "inference-port": "8005"},
    }
    parsed = VllmConfig.model_validate(body)
    assert parsed.options == body["options"]
    assert parsed.model_dump() == body


def test_vllm_config_without_an_isc_name() -> None:
    body = vllm_config(ServerSpec(model="m", port=8000), gpu_uuids=["GPU-a"], isc_name=None)
    assert body == {
        "options": ["--port", "8000"],
        "gpu_uuids": ["GPU-a"],
        "env_vars": {},
        "annotations": {"inference-port": "8000"},
    }
    VllmConfig.model_validate(body)
