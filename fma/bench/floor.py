"""Each wake's time as a multiple of its physical floor.

The floor of a wake is the time its bytes would take at the fastest host-to-device copy the
node's link allows (its copy engine with pinned memory: 55.4 GB/s on PCIe Gen5, 346 GB/s over
GH200's NVLink-C2C; :mod:`fma.api.topology`). vLLM's own wake is about 2.2 times that on an
H100; a report shows the multiple of every wake so that a faster wake path shows up at once.
A simulated trace says each node's floor (``node_added``); for a trace without it (the
operator's) the PCIe Gen5 floor is assumed.
"""

from collections.abc import Sequence
from typing import Any

from fma.api.latency import GB
from fma.api.topology import PCIE_GEN5

Event = dict[str, Any]

DEFAULT_FLOOR_BYTES_PER_S = PCIE_GEN5.h2d_floor_gbps * GB


def wake_floor_multiples(events: Sequence[Event]) -> list[float]:
    """For every completed wake, its duration over the floor of its bytes per GPU."""
    floors: dict[str, float] = {}
    waking: dict[tuple[str, str], Event] = {}
    multiples: list[float] = []
    for e in events:
        kind = e["kind"]
        if kind == "node_added" and "h2d_floor_bytes_per_s" in e:
            floors[e["node"]] = float(e["h2d_floor_bytes_per_s"])
        elif kind == "instance_waking":
            waking[(e["provider"], e["instance"])] = e
        elif kind.startswith("instance_") and "provider" in e and "instance" in e:
            start = waking.pop((e["provider"], e["instance"]), None)
            if start is None or kind != "instance_awake":
                continue
            gpus = max(1, len(start.get("gpus") or ()))
            per_gpu = float(start.get("bytes", 0)) / gpus
            floor_s = per_gpu / floors.get(start.get("node", ""), DEFAULT_FLOOR_BYTES_PER_S)
            if floor_s > 0:
                multiples.append((e["t"] - start["t"]) / floor_s)
    return multiples
