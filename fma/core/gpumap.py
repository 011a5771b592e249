"""GPU UUID -> index translation for ``CUDA_VISIBLE_DEVICES`` on the direct path.

A provider sees every GPU of its node (``NVIDIA_VISIBLE_DEVICES=all``), so the vLLM process
must be told the *indices* of its requester's GPUs. The ``gpu-map`` ConfigMap maps each node
name to ``{uuid: index}``; these functions parse and apply it, reporting problems in the words
the requester's status shows.
"""

import json
from collections.abc import Mapping, Sequence

GpuMap = Mapping[str, Mapping[str, int]]
"""Node name -> {GPU UUID: index}."""


def parse_gpu_map(data: Mapping[str, str]) -> tuple[dict[str, dict[str, int]], list[str]]:
    """Parse the ConfigMap's data; entries that are not ``{uuid: int}`` JSON are reported."""
    parsed: dict[str, dict[str, int]] = {}
    problems: list[str] = []
    for node, text in sorted(data.items()):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            problems.append(f"gpu-map entry {node} is not JSON")
            continue
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
            for k, v in value.items()
        ):
            problems.append(f"gpu-map entry {node} is not an object of UUID to index")
            continue
        parsed[node] = value
    return parsed, problems


def gpu_indices(
    uuids: Sequence[str], node: str, gpu_map: GpuMap | None
) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """The indices of ``uuids`` on ``node``, and the problems that prevent translation.

    Pure. Problems: the map is missing, a UUID is unknown, or a UUID is on another node.
    """
    if gpu_map is None:
        return (), ("GPU map ConfigMap gpu-map is not available",)
    where = {uuid: (n, index) for n, entries in gpu_map.items() for uuid, index in entries.items()}
    indices: list[int] = []
    problems: list[str] = []
    for uuid in uuids:
        found = where.get(uuid)
        if found is None:
            problems.append(f"UUID {uuid} is not known")
        elif found[0] != node:
            problems.append(f"UUID {uuid} is on Node {found[0]}, not {node}")
        else:
            indices.append(found[1])
    return tuple(indices), tuple(problems)


def cuda_visible_devices(indices: Sequence[int]) -> str:
    return ",".join(str(i) for i in indices)
