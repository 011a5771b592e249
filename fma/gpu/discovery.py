"""GPU discovery: this machine's GPUs from NVML, or the mock GPUs of tests and fake clusters.

A GPU is named by its UUID and numbered by its CUDA index; a map ``{uuid: index}`` holds both.
The launcher translates the UUIDs a request names into ``CUDA_VISIBLE_DEVICES`` with it; the
requester reports the UUIDs it holds, ordered by index.
"""

import importlib
import logging
import re
from typing import Any, Final

_LOG = logging.getLogger(__name__)
GPU_COUNT_MAX: Final = 1024
"""The most GPUs one map holds: a bound on input, far above any machine's count."""
UUID_RE: Final = re.compile(r"(GPU|MIG)-[A-Za-z0-9][A-Za-z0-9_.:/-]{0,120}")
"""A GPU or MIG device UUID as NVML and the NVIDIA container runtime write them."""


def from_visible_devices(value: str | None) -> list[str]:
    """The UUIDs an ``NVIDIA_VISIBLE_DEVICES`` value lists, in its order (CUDA numbers a
    container's devices so); none for ``all``, ``none``, ``void``, indices or unset: those
    do not name the devices."""
    if value is None:
        return []
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if not parts or not all(UUID_RE.fullmatch(part) for part in parts):
        return []
    return parts[:GPU_COUNT_MAX]


def naive_map(count: int) -> dict[str, int]:
    """``{"GPU-0": 0, ..., "GPU-<count-1>": count-1}``: the mock map of upstream's launcher.

    Raises ``ValueError`` outside ``0..GPU_COUNT_MAX``."""
    if not 0 <= count <= GPU_COUNT_MAX:
        raise ValueError(f"mock GPU count must be within 0..{GPU_COUNT_MAX}")
    return {f"GPU-{index}": index for index in range(count)}


def nvml_map() -> dict[str, int] | None:
    """This machine's GPUs from NVML, or None when NVML or its driver is absent."""
    try:
        pynvml: Any = importlib.import_module("pynvml")
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception as error:  # NVMLError has no stable import path across versions
        _LOG.info("NVML unavailable: %s", error)
        return None
    try:
        found: dict[str, int] = {}
        for index in range(int(pynvml.nvmlDeviceGetCount())):
            uuid = pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(index))
            found[uuid.decode() if isinstance(uuid, bytes) else str(uuid)] = index
        return found
    finally:
        pynvml.nvmlShutdown()
