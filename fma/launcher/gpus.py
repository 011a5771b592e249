"""GPU UUID to CUDA index translation for ``CUDA_VISIBLE_DEVICES``.

The controller speaks of GPUs by UUID (what a requester's SPI reports); CUDA inside the
launcher's container numbers them by index. The map comes from, in order of preference:

1. ``--gpu-map FILE``: a JSON object ``{uuid: index}`` (tests, bare-metal runs);
2. ``--mock-gpus N``: the node's entry in the ``gpu-map`` ConfigMap when ``NODE_NAME`` and
   ``NAMESPACE`` are set and it can be read, else the naive map ``GPU-0..GPU-(N-1)``;
3. NVML (the ``nvidia-ml-py`` package), listing this machine's devices;
4. ``NVIDIA_VISIBLE_DEVICES`` when it lists UUIDs: the devices the container runtime exposes,
   CUDA-numbered in that order (a launcher Pod asks for ``all``, which the runtime — or the
   test cluster's pod runner — turns into the node's devices);
5. no GPUs at all (a CPU-only machine): any UUID in a request is then unknown.

An unknown UUID is an input error (422), never a conflict or a server error. The naive map
and NVML come from :mod:`fma.gpu.discovery`, which the requester shares.
"""

import importlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from fma.api.constants import (
    CONFIGMAP_GPU_MAP,
    ENV_NAMESPACE,
    ENV_NODE_NAME,
    ENV_NVIDIA_VISIBLE_DEVICES,
)
from fma.gpu.discovery import GPU_COUNT_MAX, from_visible_devices, naive_map, nvml_map
from fma.launcher.errors import UnknownGpu

_LOG = logging.getLogger(__name__)
GPU_MAP_FILE_BYTES_MAX: Final = 1024 * 1024


class GpuTranslator:
    """Translates GPU UUIDs to CUDA indices with a fixed map; ``source`` says where it came
    from (for the launcher's log and ``GET /``)."""

    def __init__(self, uuid_to_index: Mapping[str, int], *, source: str) -> None:
        self._map = dict(uuid_to_index)
        self.source = source

    @property
    def uuids(self) -> list[str]:
        """Known UUIDs, ordered by index."""
        return sorted(self._map, key=lambda uuid: (self._map[uuid], uuid))

    def indices(self, uuids: Sequence[str]) -> list[int]:
        """The indices of ``uuids``, in the order given; raises ``UnknownGpu``."""
        unknown = [uuid for uuid in uuids if uuid not in self._map]
        if unknown:
            known = ", ".join(self.uuids[:16]) or "none"
            raise UnknownGpu(f"unknown GPU UUID(s) {', '.join(unknown)}; this node has: {known}")
        return [self._map[uuid] for uuid in uuids]

    def cuda_visible_devices(self, uuids: Sequence[str]) -> str:
        """The ``CUDA_VISIBLE_DEVICES`` value selecting ``uuids``; raises ``UnknownGpu``."""
        return ",".join(str(index) for index in self.indices(uuids))


def parse_map(data: object, *, what: str) -> dict[str, int]:
    """Validate a ``{uuid: index}`` object; raises ``ValueError`` naming ``what``."""
    if not isinstance(data, dict) or len(data) > GPU_COUNT_MAX:
        raise ValueError(f"{what}: expected a JSON object of at most {GPU_COUNT_MAX} entries")
    parsed: dict[str, int] = {}
    for uuid, index in data.items():
        if not isinstance(uuid, str) or not uuid:
            raise ValueError(f"{what}: GPU UUIDs must be non-empty strings")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"{what}: index of {uuid!r} must be a non-negative integer")
        parsed[uuid] = index
    return parsed


def load_map_file(path: Path) -> dict[str, int]:
    """Read a JSON ``{uuid: index}`` file; raises ``ValueError`` or ``OSError``."""
    with path.open("rb") as handle:
        raw = handle.read(GPU_MAP_FILE_BYTES_MAX + 1)
    if len(raw) > GPU_MAP_FILE_BYTES_MAX:
        raise ValueError(f"{path}: larger than {GPU_MAP_FILE_BYTES_MAX} bytes")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not JSON: {error}") from error
    return parse_map(data, what=str(path))


def configmap_map(node_name: str, namespace: str) -> dict[str, int] | None:
    """The node's entry of the ``gpu-map`` ConfigMap, or None when it cannot be read."""
    try:
        client: Any = importlib.import_module("kubernetes.client")
        config: Any = importlib.import_module("kubernetes.config")
        try:
            config.load_incluster_config()
        except config.ConfigException:
            config.load_kube_config()
        configmap = client.CoreV1Api().read_namespaced_config_map(CONFIGMAP_GPU_MAP, namespace)
        entry = (configmap.data or {}).get(node_name)
        if entry is None:
            _LOG.warning("ConfigMap %s has no entry for node %s", CONFIGMAP_GPU_MAP, node_name)
            return None
        return parse_map(json.loads(entry), what=f"ConfigMap {CONFIGMAP_GPU_MAP}[{node_name}]")
    except Exception as error:  # any failure falls back to the naive map, as upstream does
        _LOG.warning("cannot read ConfigMap %s: %s", CONFIGMAP_GPU_MAP, error)
        return None


def build_translator(
    *,
    mock_gpus: int | None,
    gpu_map_file: Path | None,
    environ: Mapping[str, str],
) -> GpuTranslator:
    """Choose the map as the module docstring orders; raises ``ValueError``/``OSError`` for
    an unreadable or invalid ``gpu_map_file``."""
    if gpu_map_file is not None:
        return GpuTranslator(load_map_file(gpu_map_file), source=f"file {gpu_map_file}")
    if mock_gpus is not None:
        node, namespace = environ.get(ENV_NODE_NAME), environ.get(ENV_NAMESPACE)
        if node and namespace:
            found = configmap_map(node, namespace)
            if found is not None:
                return GpuTranslator(found, source=f"ConfigMap {namespace}/{CONFIGMAP_GPU_MAP}")
        return GpuTranslator(naive_map(mock_gpus), source=f"mock ({mock_gpus} GPUs)")
    found = nvml_map()
    if found is not None:
        return GpuTranslator(found, source="NVML")
    visible = from_visible_devices(environ.get(ENV_NVIDIA_VISIBLE_DEVICES))
    if visible:
        return GpuTranslator(
            {uuid: index for index, uuid in enumerate(visible)},
            source=ENV_NVIDIA_VISIBLE_DEVICES,
        )
    return GpuTranslator({}, source="none (no NVML)")
