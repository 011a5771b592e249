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

**Placement.** Under a placement policy other than ``default``, the node and maybe the GPUs
come from :func:`fma.core.placement.choose`, given the nodes that fit in the order above, every
sleeper that could be woken (settled or falling asleep, not being woken, its provider not
being deleted) and, for the oracle, the other Pods waiting. This costs a pass over the nodes
and providers per attempt; ``default`` keeps the index and costs none.
"""

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache, partial

import simpy

from fma.adapters.sim.clock import call_later
from fma.adapters.sim.placement import FreeGpuIndex
from fma.adapters.sim.seeds import sub_rng
from fma.adapters.sim.state import SimNode, SimRequester, SimState
from fma.adapters.sim.topology import Topology
from fma.core.identity import spec_digest
from fma.core.model import AWAKE, FALLING_ASLEEP, SLEEPING, ServerSpec
from fma.core.placement import Choice, Pending, PlacementPolicy, Room, Sleeping, choose

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

_identity = lru_cache(maxsize=4096)(spec_digest)
"""What an instance ID hashes besides the GPUs (memoised: specs are shared objects)."""


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
        placement: PlacementPolicy = "default",
    ) -> None:
        self.env = env
        self.placement = placement
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
            if self.placement == "default":
                node, choice = self._node_for(requester), None
            else:
                node, choice = self._placed(requester)
            if node is None:
                self._set_aside(waiting)
            else:
                del self._waiting[uid]
                self._bind(requester, node, choice)
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

    def _placed(self, requester: SimRequester) -> tuple[SimNode | None, Choice | None]:
        """The node (and the choice) :func:`~fma.core.placement.choose` makes for a Pod; no
        node when it is to wait."""
        oracle = self.placement == "oracle"
        ranked: list[tuple[int, int, SimNode]] = []
        for order, node in enumerate(self.state.nodes.values()):
            if node.schedulable and node.ready:
                ranked.append((-len(node.free_gpus()), order, node))
        ranked.sort(key=lambda f: (f[0], f[1]))
        rooms = [
            Room(
                node.name,
                tuple(self._usable(node, requester)),
                self._freeing(node, requester) if oracle else (),
            )
            for _, _, node in ranked
        ]
        pod = self._pending(requester)
        if pod is None:
            fitting = [r for r in rooms if len(r.free) >= requester.gpus]
            return (self.state.nodes[fitting[0].node], None) if fitting else (None, None)
        others: list[Pending] = []
        if oracle:
            others = [
                p
                for w in self._waiting.values()
                if w.requester.uid != requester.uid
                and (p := self._pending(w.requester)) is not None
            ]
        choice = choose(self.placement, pod, rooms, self._sleepers(soon=oracle), others)
        if choice is None or choice.wait:
            return None, None
        return self.state.nodes[choice.node], choice

    def _freeing(self, node: SimNode, requester: SimRequester) -> tuple[str, ...]:
        """GPUs held by Pods being deleted: free once their containers stop and FMA lets go."""
        out = []
        for uuid, holder in node.gpu_holder.items():
            if holder is None or (
                requester.pinned_gpus is not None and uuid not in requester.pinned_gpus
            ):
                continue
            other = self.state.requesters.get(holder)
            if other is not None and other.deleting:
                out.append(uuid)
        return tuple(out)

    def _pending(self, requester: SimRequester) -> Pending | None:
        spec: ServerSpec | None = requester.spec
        if requester.isc_name is not None:
            isc = self.state.iscs.get(requester.isc_name)
            spec = isc.spec if isc is not None else None
        if spec is None:
            return None
        return Pending(requester.uid, _identity(spec), requester.gpus)

    def _sleepers(self, *, soon: bool) -> list[Sleeping]:
        """Every sleeper a Pod could wake; with ``soon``, also the awake instances whose
        requester is being deleted (they are put to sleep)."""
        out: list[Sleeping] = []
        for provider in self.state.providers.values():
            if provider.deleting:
                continue
            bound = self.state.requesters.get(provider.bound_requester_uid or "")
            for inst in provider.instances.values():
                mine = bound is not None and provider.bound_instance_id == inst.instance_id
                if bound is not None and mine:
                    to_be = soon and bound.deleting and inst.state is AWAKE and inst.sleepable
                    if not to_be:
                        continue
                elif inst.state is not SLEEPING and inst.state is not FALLING_ASLEEP:
                    continue
                gpus = tuple(sorted(inst.gpu_uuids))
                out.append(Sleeping(provider.node, gpus, _identity(inst.spec), soon=mine))
        return out

    @staticmethod
    def _usable(node: SimNode, requester: SimRequester) -> list[str]:
        free = node.free_gpus()
        if requester.pinned_gpus is None:
            return free
        return [g for g in free if g in requester.pinned_gpus]

    def _bind(self, requester: SimRequester, node: SimNode, choice: Choice | None = None) -> None:
        free = self._usable(node, requester)
        if choice is not None and choice.gpus is not None:
            index = {g.uuid: g.index for g in node.gpus}
            gpus = tuple(sorted(choice.gpus, key=lambda u: index[u]))
        else:
            gpus = self.allocate(node, free, requester.gpus)
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
