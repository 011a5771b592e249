"""A node's board as a graph: which links a transfer crosses, and which GPUs go well together.

:class:`Topology` builds, with networkx, the directed graph of one node pool's board
(:mod:`fma.api.topology` describes the presets): CPU sockets with their memory, PCIe switches,
GPUs, NVLink (an NVSwitch, or NVLink-C2C to a Grace CPU) and the disk the weights load from.
Every edge has a capacity in bytes per second, per direction. A transfer takes the shortest
path between its ends (:meth:`Topology.path`): a wake from the host memory of the GPU's socket
to the GPU, a sleep back, a load from the disk to the GPU. :meth:`Topology.pair_score` ranks two
GPUs for a tensor-parallel set as NVIDIA's device plugin does (NVLink first, then a shared
PCIe switch, then a shared socket). Nodes of one pool share one topology: it holds no state.
"""

import itertools
import math
from collections.abc import Sequence
from functools import cache

import networkx as nx

from fma.api.latency import GB
from fma.api.topology import (
    GPUS_PER_SWITCH,
    LINKS,
    NVLINK4_GBPS,
    SOCKET_LINK_GBPS,
    LinkClass,
    TopologyName,
)

Edge = tuple[str, str]
"""A directed link, by the names of its ends."""

DISK = "disk"
NVSWITCH = "nvswitch"

SCORE_NVLINK = 100
SCORE_SWITCH = 20
SCORE_SOCKET = 10
"""Pair scores: GPUs on NVLink, behind one PCIe switch, on one socket (across sockets: 0)."""

COMBINATIONS_MAX = 2_000
"""Above this many candidate sets, a tensor-parallel set is grown greedily instead."""


def gpu(index: int) -> str:
    return f"gpu:{index}"


def socket(index: int) -> str:
    return f"socket:{index}"


class Topology:
    """The graph of one board with ``gpus`` GPUs; rates in bytes per second."""

    def __init__(self, name: TopologyName, gpus: int, disk_gbps: float) -> None:
        self.name = name
        self.gpus = gpus
        self.link: LinkClass = LINKS[name]
        self.graph = nx.DiGraph()
        self._socket_of: dict[int, int] = {}
        self._switch_of: dict[int, int] = {}
        self._nvlink: set[int] = set()
        self._paths: dict[tuple[str, str], tuple[Edge, ...]] = {}
        if name == "gh200":
            self._superchips()
        else:
            self._switched(GPUS_PER_SWITCH[name], nvswitch=name == "hgx")
        self._link(DISK, socket(0), disk_gbps, disk_gbps)
        self.capacity: dict[Edge, float] = {
            (u, v): float(data["gbps"]) * GB for u, v, data in self.graph.edges(data=True)
        }

    # --- building ------------------------------------------------------------------------------

    def _link(self, a: str, b: str, a_to_b_gbps: float, b_to_a_gbps: float) -> None:
        self.graph.add_edge(a, b, gbps=a_to_b_gbps)
        self.graph.add_edge(b, a, gbps=b_to_a_gbps)

    def _switched(self, per_switch: int, *, nvswitch: bool) -> None:
        switches = math.ceil(self.gpus / per_switch)
        sockets = 2 if switches > 1 else 1
        if sockets == 2:
            self._link(socket(0), socket(1), SOCKET_LINK_GBPS, SOCKET_LINK_GBPS)
        link = self.link
        for k in range(switches):
            on = 0 if k < math.ceil(switches / 2) else 1
            self._link(socket(on), f"switch:{k}", link.h2d_floor_gbps, link.d2h_floor_gbps)
            for i in range(k * per_switch, min(self.gpus, (k + 1) * per_switch)):
                self._link(f"switch:{k}", gpu(i), link.h2d_floor_gbps, link.d2h_floor_gbps)
                self._socket_of[i] = on
                self._switch_of[i] = k
                if nvswitch:
                    self._link(gpu(i), NVSWITCH, NVLINK4_GBPS, NVLINK4_GBPS)
                    self._nvlink.add(i)

    def _superchips(self) -> None:
        link = self.link
        for i in range(self.gpus):
            self._link(socket(i), gpu(i), link.h2d_floor_gbps, link.d2h_floor_gbps)
            self._socket_of[i] = i
            self._switch_of[i] = i
            for j in range(i):
                self._link(socket(j), socket(i), SOCKET_LINK_GBPS, SOCKET_LINK_GBPS)

    # --- reading -------------------------------------------------------------------------------

    def host_of(self, gpu_index: int) -> str:
        """Where a GPU's pinned host buffers are: its own socket's memory."""
        return socket(self._socket_of[gpu_index])

    def path(self, source: str, target: str) -> tuple[Edge, ...]:
        """The links of the shortest path from ``source`` to ``target`` (cached)."""
        found = self._paths.get((source, target))
        if found is None:
            nodes = nx.shortest_path(self.graph, source, target)
            found = tuple(itertools.pairwise(nodes))
            self._paths[(source, target)] = found
        return found

    def h2d(self, gpu_index: int) -> tuple[Edge, ...]:
        return self.path(self.host_of(gpu_index), gpu(gpu_index))

    def d2h(self, gpu_index: int) -> tuple[Edge, ...]:
        return self.path(gpu(gpu_index), self.host_of(gpu_index))

    def load(self, gpu_index: int) -> tuple[Edge, ...]:
        return self.path(DISK, gpu(gpu_index))

    def h2d_floor_bytes_per_s(self) -> float:
        """The fastest any host-to-device copy goes: the floor of a wake."""
        return self.link.h2d_floor_gbps * GB

    def pair_score(self, a: int, b: int) -> int:
        score = SCORE_NVLINK if a in self._nvlink and b in self._nvlink else 0
        if self._switch_of[a] == self._switch_of[b]:
            return score + SCORE_SWITCH
        if self._socket_of[a] == self._socket_of[b]:
            return score + SCORE_SOCKET
        return score

    def set_score(self, gpus: Sequence[int]) -> int:
        return sum(self.pair_score(a, b) for a, b in itertools.combinations(gpus, 2))

    def best_set(self, available: Sequence[int], size: int) -> tuple[int, ...]:
        """The set of ``size`` GPUs among ``available`` whose links score highest; among equals
        the first in ``available``'s order (the caller's: a device plugin gets them unordered)."""
        if size >= len(available):
            return tuple(available)
        if size == 1:
            return (available[0],)
        if math.comb(len(available), size) <= COMBINATIONS_MAX:
            return max(itertools.combinations(available, size), key=self.set_score)
        chosen = [available[0]]
        rest = list(available[1:])
        while len(chosen) < size:
            best = max(rest, key=lambda g: sum(self.pair_score(g, c) for c in chosen))
            chosen.append(best)
            rest.remove(best)
        return tuple(chosen)


@cache
def topology_of(name: TopologyName, gpus: int, disk_gbps: float) -> Topology:
    """The shared topology of every node of a pool with these parameters."""
    return Topology(name, gpus, disk_gbps)
