"""The kube-scheduler's queue and the kubelet's choice of GPUs, for requester Pods.

**Queue.** As kube-scheduler's scheduling queue does it, a Pod waits in the *active* queue,
oldest first (by when it entered), and the scheduler tries one Pod at a time, each attempt
taking ``scheduler_s``. A Pod no node can take now is *unschedulable*: it does not block the
Pods behind it (no head-of-line blocking). It goes back to the active queue when something
happens that could make it fit — GPUs freed by a deleted Pod, a node ready, uncordoned or back
— but not before its back-off is over (1 s after the first failed attempt, doubling to 10 s:
``podInitialBackoffSeconds`` and ``podMaxBackoffSeconds``), and after 5 minutes in any case
(``podMaxInUnschedulablePodsDuration``, looked at every 30 s).

**Node.** Among schedulable, ready nodes with enough free ``nvidia.com/gpu``, the one with the
most free GPUs (NodeResourcesFit's LeastAllocated), the earliest among equals
(:class:`~fma.adapters.sim.placement.FreeGpuIndex`).

**GPUs.** The kubelet's device manager hands the Pod its GPUs. With NVIDIA's device plugin
(``gpu_allocation: device-plugin``) it asks the plugin's preferred allocation: for one GPU,
the first of the free devices in the kubelet's unordered set — any of them, drawn from the
node's own random stream; for several, the set whose links score best on the node's topology
(:meth:`~fma.adapters.sim.topology.Topology.best_set`), ties in that same unordered order.
``lowest-index`` hands out the lowest free indexes instead (what the test control plane's pod
runner does).
"""

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import simpy

from fma.adapters.sim.clock import call_later
from fma.adapters.sim.placement import FreeGpuIndex
from fma.adapters.sim.seeds import sub_rng
from fma.adapters.sim.state import SimNode, SimRequester, SimState
from fma.adapters.sim.topology import Topology

BACKOFF_INITIAL_S = 1.0
"""kube-scheduler's ``podInitialBackoffSeconds``."""
BACKOFF_MAX_S = 10.0
"""kube-scheduler's ``podMaxBackoffSeconds``."""
UNSCHEDULABLE_MAX_S = 300.0
"""kube-scheduler's ``podMaxInUnschedulablePodsDuration``: retried after this anyway."""
FLUSH_S = 30.0
"""How often kube-scheduler looks for Pods set aside too long."""


@dataclass(slots=True)
class _Waiting:
    requester: SimRequester
    attempts: int = 0
    backoff_until_s: float = 0.0
    moves: int = field(default=0)
    """Bumped whenever it changes queue: a scheduled move made before is then stale."""
    set_aside_s: float = 0.0


Bind = Callable[[SimRequester, SimNode, tuple[str, ...]], None]


class KubeScheduler:
    """Requester Pods in, bindings out (``on_bound(requester, node, gpus)``)."""

    def __init__(
        self,
        env: simpy.Environment,
        state: SimState,
        *,
        scheduler_s: float,
        seed: int,
        topology: Callable[[SimNode], Topology],
        on_bound: Bind,
    ) -> None:
        self.env = env
        self.state = state
        self.scheduler_s = scheduler_s
        self.seed = seed
        self.topology = topology
        """A node's board."""
        self.on_bound = on_bound
        self.free = FreeGpuIndex(state.nodes)
        self._active: list[tuple[float, int, str, int]] = []
        self._waiting: dict[str, _Waiting] = {}
        """UID -> every Pod not bound yet, active or unschedulable."""
        self._unschedulable: dict[str, None] = {}
        """Set-aside Pods, in the order they were set aside (a dict: runs must not depend on
        string hashing)."""
        self._seq = 0
        self._busy = False
        self._flushing = False
        self._rngs: dict[str, random.Random] = {}

    # --- the queue -------------------------------------------------------------------------------

    def add(self, requester: SimRequester) -> None:
        """A new Pod to schedule."""
        self._waiting[requester.uid] = _Waiting(requester)
        self._activate(requester.uid)

    def forget(self, requester: SimRequester) -> None:
        """A Pod deleted before it was bound."""
        self._waiting.pop(requester.uid, None)
        self._unschedulable.pop(requester.uid, None)

    def waiting(self) -> int:
        return len(self._waiting)

    def _activate(self, uid: str) -> None:
        waiting = self._waiting.get(uid)
        if waiting is None:
            return
        waiting.moves += 1
        self._unschedulable.pop(uid, None)
        self._seq += 1
        heapq.heappush(self._active, (float(self.env.now), self._seq, uid, waiting.moves))
        self._kick()

    def _kick(self) -> None:
        if not self._busy and self._active:
            self._busy = True
            call_later(self.env, self.scheduler_s, self._attempt)

    def _attempt(self) -> None:
        """One scheduling cycle: the head of the active queue is bound, or set aside."""
        self._busy = False
        while self._active:
            _, _, uid, moves = heapq.heappop(self._active)
            waiting = self._waiting.get(uid)
            if waiting is None or waiting.moves != moves:
                continue  # gone, or an entry made stale by a later move
            requester = waiting.requester
            node = self._node_for(requester)
            if node is None:
                self._set_aside(waiting)
            else:
                del self._waiting[uid]
                self._bind(requester, node)
            break
        self._kick()

    def _set_aside(self, waiting: _Waiting) -> None:
        uid = waiting.requester.uid
        waiting.attempts += 1
        backoff_s = min(BACKOFF_INITIAL_S * 2.0 ** min(waiting.attempts - 1, 62), BACKOFF_MAX_S)
        waiting.backoff_until_s = float(self.env.now) + backoff_s
        waiting.moves += 1
        waiting.set_aside_s = float(self.env.now)
        self._unschedulable[uid] = None
        if not self._flushing:
            self._flushing = True
            call_later(self.env, FLUSH_S, self._flush)

    def _flush(self) -> None:
        """kube-scheduler's periodic look at the set-aside Pods: those set aside for
        ``UNSCHEDULABLE_MAX_S`` are tried again whatever happened meanwhile."""
        now_s = float(self.env.now)
        for uid in list(self._unschedulable):
            if self._waiting[uid].set_aside_s + UNSCHEDULABLE_MAX_S <= now_s:
                self._move(uid, now_s)
        self._flushing = bool(self._unschedulable)
        if self._flushing:
            call_later(self.env, FLUSH_S, self._flush)

    def cluster_changed(self) -> None:
        """Something happened that could make a set-aside Pod fit (GPUs freed, a node back):
        each goes back to the active queue once its back-off is over."""
        now_s = float(self.env.now)
        for uid in list(self._unschedulable):
            self._move(uid, now_s)

    def _move(self, uid: str, now_s: float) -> None:
        """A set-aside Pod to the active queue, or to wait out its back-off first."""
        waiting = self._waiting[uid]
        del self._unschedulable[uid]
        if waiting.backoff_until_s <= now_s:
            self._activate(uid)
        else:
            waiting.moves += 1
            call_later(
                self.env,
                waiting.backoff_until_s - now_s,
                partial(self._backed_off, uid, waiting.moves),
            )

    def _backed_off(self, uid: str, moves: int) -> None:
        waiting = self._waiting.get(uid)
        if waiting is not None and waiting.moves == moves:
            self._activate(uid)

    # --- nodes and GPUs --------------------------------------------------------------------------

    def node_changed(self, node: SimNode) -> None:
        """A node's free GPUs or schedulability changed."""
        self.free.update(node)

    def _node_for(self, requester: SimRequester) -> SimNode | None:
        if requester.pinned_gpus is None:
            return self.free.best(requester.gpus)
        best: SimNode | None = None
        for node in self.state.nodes.values():
            if not (node.schedulable and node.ready):
                continue
            if len(self._usable(node, requester)) < requester.gpus:
                continue
            if best is None or len(node.free_gpus()) > len(best.free_gpus()):
                best = node
        return best

    @staticmethod
    def _usable(node: SimNode, requester: SimRequester) -> list[str]:
        free = node.free_gpus()
        if requester.pinned_gpus is None:
            return free
        return [g for g in free if g in requester.pinned_gpus]

    def _bind(self, requester: SimRequester, node: SimNode) -> None:
        gpus = self.allocate(node, self._usable(node, requester), requester.gpus)
        for uuid in gpus:
            node.gpu_holder[uuid] = requester.uid
        self.free.update(node)
        self.on_bound(requester, node, gpus)

    def allocate(self, node: SimNode, free: list[str], count: int) -> tuple[str, ...]:
        """The GPUs the kubelet's device manager gives a Pod (see the module docstring)."""
        if node.lowest_index_gpus:
            return tuple(free[:count])
        order = list(free)
        rng = self._rngs.get(node.name)
        if rng is None:
            rng = self._rngs[node.name] = sub_rng(self.seed, f"device-plugin/{node.name}")
        rng.shuffle(order)
        if count == 1:
            return (order[0],)
        index = {g.uuid: g.index for g in node.gpus}
        by_index = {index[u]: u for u in order}
        chosen = self.topology(node).best_set([index[u] for u in order], count)
        return tuple(sorted((by_index[i] for i in chosen), key=lambda u: index[u]))
