"""Where a requester Pod goes when placement knows about sleepers: node, and maybe its GPUs.

A hot hit needs the requester on the very GPUs of a sleeping instance with its identity (the
instance ID hashes the spec and the GPU UUIDs), but the kube-scheduler and the device plugin
know nothing of sleepers. :func:`choose` decides for one Pod under one policy:

- ``default``: the scheduler's own rule (the first of ``rooms``), the device plugin's GPUs.
- ``node-affinity``: as a preferred pod affinity toward launchers holding a sleeper of the
  Pod's identity: the first room holding such a sleeper, else the scheduler's own rule; the
  device plugin still picks the GPUs.
- ``gpu-aware``: also a device-selection hint: the first room where such a sleeper's GPUs are
  all free gets the Pod on those GPUs; otherwise as ``node-affinity``.
- ``oracle``: an upper bound no deployable mechanism reaches: a hit whenever a sleeper of the
  Pod's identity (or an instance about to become one, its requester being deleted) sits on
  GPUs that are free or being freed (held by a Pod being deleted) — the Pod then waits for
  them — chosen by a maximum bipartite matching of every pending Pod to such GPU sets (so
  this Pod does not take the only GPUs another pending Pod could hit on when it has others);
  a miss goes as under ``node-affinity``. It knows the whole queue and every GPU, and decides
  now: a bound on what placement can do with the sleepers there are, not on what foresight
  could.

Pure: the caller gathers the rooms, sleepers and pending Pods, and applies the choice.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import networkx as nx

PlacementPolicy = Literal["default", "node-affinity", "gpu-aware", "oracle"]
PLACEMENTS: tuple[PlacementPolicy, ...] = ("default", "node-affinity", "gpu-aware", "oracle")


@dataclass(frozen=True, slots=True)
class Pending:
    """A Pod waiting for a node: its UID, its identity (what its instance ID hashes besides the
    GPUs) and how many GPUs it asks for."""

    uid: str
    identity: str
    gpus: int


@dataclass(frozen=True, slots=True)
class Room:
    """A node that can take Pods, with the GPUs free for this one, in the node's GPU order,
    and those held by Pods being deleted (free soon)."""

    node: str
    free: tuple[str, ...]
    freeing: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Sleeping:
    """A sleeper a Pod of its identity could wake: where it is and on which GPUs. ``soon``: an
    awake instance whose requester is being deleted (only the oracle counts on those)."""

    node: str
    gpus: tuple[str, ...]
    identity: str
    soon: bool = False


@dataclass(frozen=True, slots=True)
class Choice:
    """Where the Pod goes. ``gpus`` None leaves the GPUs to the device plugin. ``wait``: some
    of ``gpus`` are still being freed; the Pod waits in the queue until they are."""

    node: str
    gpus: tuple[str, ...] | None = None
    wait: bool = False

    @property
    def aimed(self) -> bool:
        """Whether the Pod is sent to a sleeper's GPUs (a hot hit, if it stays there)."""
        return self.gpus is not None


def choose(
    policy: PlacementPolicy,
    pod: Pending,
    rooms: Sequence[Room],
    sleepers: Sequence[Sleeping],
    others: Sequence[Pending] = (),
) -> Choice | None:
    """Where ``pod`` goes under ``policy``; None when no room can take it.

    ``rooms`` are the nodes that take Pods, in the scheduler's own order of preference (its
    choice is the first that has enough free GPUs); ``sleepers`` every sleeper that could be
    woken; ``others`` the other Pods waiting (only the oracle looks at them, and at the GPUs
    being freed and the sleepers to be).
    """
    if policy == "oracle":
        mine = _slots(pod, rooms, sleepers, soon=True)
        if mine:
            return _matched(pod, mine, rooms, sleepers, others)
    fitting = [r for r in rooms if len(r.free) >= pod.gpus]
    if not fitting:
        return None
    if policy == "default":
        return Choice(fitting[0].node)
    if policy == "gpu-aware":
        slots = _slots(pod, fitting, sleepers)
        if slots:
            return Choice(slots[0].node, slots[0].gpus)
    return Choice(_affine_node(pod, fitting, sleepers))


def _affine_node(pod: Pending, rooms: Sequence[Room], sleepers: Sequence[Sleeping]) -> str:
    """The first room holding a sleeper of the Pod's identity, else the scheduler's choice."""
    holding = {s.node for s in sleepers if s.identity == pod.identity and not s.soon}
    return next((r.node for r in rooms if r.node in holding), rooms[0].node)


def _slots(
    pod: Pending, rooms: Sequence[Room], sleepers: Sequence[Sleeping], *, soon: bool = False
) -> list[Sleeping]:
    """Sleepers of the Pod's identity whose GPUs are all free for it, in the rooms' order; with
    ``soon``, also the sleepers to be, and GPUs being freed count as free."""
    rank = {r.node: i for i, r in enumerate(rooms)}
    free = {r.node: frozenset(r.free + r.freeing if soon else r.free) for r in rooms}
    slots = [
        s
        for s in sleepers
        if s.identity == pod.identity
        and (soon or not s.soon)
        and len(s.gpus) == pod.gpus
        and s.node in free
        and free[s.node].issuperset(s.gpus)
    ]
    return sorted(slots, key=lambda s: rank[s.node])


def _matched(
    pod: Pending,
    mine: Sequence[Sleeping],
    rooms: Sequence[Room],
    sleepers: Sequence[Sleeping],
    others: Sequence[Pending],
) -> Choice:
    """The first of the Pod's GPU sets (in the rooms' order) that it can take and still leave a
    maximum matching of the other pending Pods to the GPU sets holding a sleeper each could hit
    (two sleepers on the same GPUs compete for them: one Pod gets them). One always exists: in
    a maximum matching without the Pod, each of its sets is taken (else the Pod would augment
    it), and handing one to the Pod instead keeps it maximum. Exact for one-GPU Pods; sets that
    overlap without being equal are treated as apart."""
    rivals = [o for o in others if o.uid != pod.uid]
    edges = [
        (i, (s.node, s.gpus))
        for i, p in enumerate(rivals)
        for s in _slots(p, rooms, sleepers, soon=True)
    ]
    best = _matching_size(edges, len(rivals))
    chosen = mine[0]
    for s in mine:
        without = [(i, key) for i, key in edges if key != (s.node, s.gpus)]
        if _matching_size(without, len(rivals)) == best:
            chosen = s
            break
    free = next(r.free for r in rooms if r.node == chosen.node)
    return Choice(chosen.node, chosen.gpus, wait=not set(chosen.gpus).issubset(free))


def _matching_size(edges: Sequence[tuple[int, tuple[str, tuple[str, ...]]]], pods: int) -> int:
    """The size of a maximum matching of Pods ``0..pods-1`` to GPU sets along ``edges``."""
    if not edges:
        return 0
    # Integer vertices (Pods, then the GPU sets): a set of them iterates in the same order in
    # every process, so nothing depends on string hashing.
    numbered: dict[tuple[str, tuple[str, ...]], int] = {}
    graph: nx.Graph[int] = nx.Graph()
    graph.add_nodes_from(range(pods))
    for i, key in edges:
        graph.add_edge(i, numbered.setdefault(key, pods + len(numbered)))
    matching = nx.bipartite.hopcroft_karp_matching(graph, top_nodes=set(range(pods)))
    return len(matching) // 2
