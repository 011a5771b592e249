"""The scheduler's index of nodes by free GPUs, so a placement costs O(log nodes), not O(nodes).

The kube-scheduler-like rule stays as it was: among schedulable, ready nodes with enough free
GPUs, the one with the most free GPUs, and among those the earliest in the cluster's node
order. Nodes sit in one min-heap per free-GPU count, keyed by their order; entries are
invalidated lazily (a node whose count or flags changed is re-filed when it is next looked at),
so :meth:`FreeGpuIndex.update` only has to be called when a node's free count or its
schedulability changes.
"""

import heapq
from collections.abc import Mapping

from fma.adapters.sim.state import SimNode


class FreeGpuIndex:
    """Nodes by free GPU count; ``best(n)`` is the scheduler's choice for a request of n GPUs."""

    def __init__(self, nodes: Mapping[str, SimNode]) -> None:
        self._nodes = nodes
        self._order: dict[str, int] = {}
        self._count: dict[str, int] = {}
        self._buckets: dict[int, list[tuple[int, str]]] = {}
        for node in nodes.values():
            self.update(node)

    def update(self, node: SimNode) -> None:
        """File ``node`` under its current free count (call after it changed)."""
        order = self._order.setdefault(node.name, len(self._order))
        count = len(node.free_gpus())
        if self._count.get(node.name) == count and node.schedulable and node.ready:
            return  # already filed there (a stale entry elsewhere is dropped when met)
        self._count[node.name] = count
        heapq.heappush(self._buckets.setdefault(count, []), (order, node.name))

    def _valid(self, count: int, name: str) -> bool:
        node = self._nodes.get(name)
        return (
            node is not None
            and node.schedulable
            and node.ready
            and self._count.get(name) == count
            and len(node.free_gpus()) == count
        )

    def best(self, gpus: int) -> SimNode | None:
        """The schedulable, ready node with the most free GPUs (at least ``gpus``), earliest."""
        for count in sorted((c for c in self._buckets if c >= gpus), reverse=True):
            heap = self._buckets[count]
            while heap:
                _, name = heap[0]
                if self._valid(count, name):
                    return self._nodes[name]
                heapq.heappop(heap)
                if self._count.get(name) == count:
                    # Its count changed behind our back, or it is cordoned or gone: forget the
                    # filing, so that the next update files it again, and re-file it now if
                    # it can take Pods.
                    del self._count[name]
                    node = self._nodes.get(name)
                    if node is not None and node.schedulable and node.ready:
                        self.update(node)
        return None
