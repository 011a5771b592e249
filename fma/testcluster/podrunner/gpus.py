"""GPUs handed out like the NVIDIA device plugin and the kubelet's device manager would.

A container whose ``limits`` (or ``requests``) ask for ``nvidia.com/gpu: N`` gets N GPUs of
its node that no other container holds, named by UUID in ``NVIDIA_VISIBLE_DEVICES`` (the
variable the device plugin's ``Allocate`` answer sets). The node's GPUs are those of its
entry in the ``gpu-map`` ConfigMap, ``{uuid: index}``.

Choice: the free GPUs with the lowest indexes, in index order. The kubelet asks the NVIDIA
plugin for a preferred allocation, which on a machine without NVLink topology also packs
from the lowest free index; with no topology to mimic here, determinism matters more (a
test can say which GPUs a Pod gets). A container keeps its GPUs across restarts; they are
released when its Pod stops for good (terminal phase, or deleted and its processes gone).

A container asking for none but with ``NVIDIA_VISIBLE_DEVICES=all`` in its own environment
(launchers, direct providers) sees every GPU of the node, as the NVIDIA container runtime
would expose them: the full UUID list in index order. Nothing here tracks those.
"""

from collections.abc import Mapping
from typing import Any, Final

from fma.api.constants import ENV_NVIDIA_VISIBLE_DEVICES, RESOURCE_GPU

ALL: Final = "all"


class NotEnoughGpus(RuntimeError):
    """The node has fewer free GPUs than asked; the message is the kubelet's admission text."""


def requested(container: Mapping[str, Any]) -> int:
    """The ``nvidia.com/gpu`` count ``container`` asks for (limits first, as the API requires)."""
    resources = container.get("resources") or {}
    for kind in ("limits", "requests"):
        value = (resources.get(kind) or {}).get(RESOURCE_GPU)
        if value is not None:
            return int(str(value))
    return 0


def in_index_order(gpu_map: Mapping[str, int]) -> list[str]:
    """The UUIDs of a ``{uuid: index}`` map, ordered by index."""
    return sorted(gpu_map, key=lambda uuid: (gpu_map[uuid], uuid))


class GpuAllocator:
    """Which container holds which GPU, per node. Not thread-safe: one event loop owns it."""

    def __init__(self) -> None:
        self._holder: dict[str, dict[str, str]] = {}  # node -> uuid -> owner

    def allocate(self, node: str, owner: str, count: int, node_gpus: list[str]) -> list[str]:
        """``count`` GPUs of ``node_gpus`` (index order) for ``owner``; the same ones again if
        ``owner`` already holds some. Raises :class:`NotEnoughGpus`."""
        holders = self._holder.setdefault(node, {})
        mine = [uuid for uuid in node_gpus if holders.get(uuid) == owner]
        if len(mine) >= count:
            return mine[:count]
        free = [uuid for uuid in node_gpus if uuid not in holders]
        if len(free) < count - len(mine):
            raise NotEnoughGpus(
                "Allocate failed due to requested number of devices unavailable for "
                f"{RESOURCE_GPU}. Requested: {count}, Available: {len(free) + len(mine)}"
            )
        for uuid in free[: count - len(mine)]:
            holders[uuid] = owner
        return [uuid for uuid in node_gpus if holders.get(uuid) == owner]

    def release(self, owner_prefix: str) -> None:
        """Free every GPU whose owner starts with ``owner_prefix`` (a Pod UID frees its Pod)."""
        for holders in self._holder.values():
            for uuid in [u for u, o in holders.items() if o.startswith(owner_prefix)]:
                del holders[uuid]

    def held(self, node: str) -> dict[str, str]:
        """``{uuid: owner}`` on ``node`` (a copy)."""
        return dict(self._holder.get(node, {}))


def visible_devices(
    env: Mapping[str, str], assigned: list[str], node_gpus: list[str]
) -> str | None:
    """The ``NVIDIA_VISIBLE_DEVICES`` value the container sees, or None to leave it as is."""
    if assigned:
        return ",".join(assigned)
    if env.get(ENV_NVIDIA_VISIBLE_DEVICES) == ALL:
        return ",".join(node_gpus)
    return None
