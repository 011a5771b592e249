"""Sleeping memory: the budget sleepers must fit in, and which sleeper to evict when they do not.

A level-1 sleeper keeps its weights in host memory and a small residue on each of its GPUs.
An awake vLLM claims ``gpu_memory_utilization`` of each of its GPUs at start — weights *and*
KV cache — and refuses to start or wake when that much is not free. The budget is in bytes,
not a count of sleepers (upstream counts), so one 70B sleeper and ten 1B sleepers are priced
for what they hold:

- per GPU: the host bytes of sleepers attributed to that GPU stay within
  ``Policy.sleeping_bytes_per_gpu_max`` (when set);
- per node: all sleepers' host bytes stay within host memory less a reserve;
- per GPU: what the awake instances there claim (``gpu_memory_utilization`` of the GPU, or
  their weights if larger) plus every other sleeper's residue fit in the GPU's memory. At the
  default 0.9 and 1.5 GiB of residue, an 80 GiB GPU serving one engine keeps at most 5
  sleepers.

Which sleeper goes first is an :class:`EvictionPolicy`, chosen by name.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fma.core.memo import PerObject
from fma.core.model import (
    AWAKE,
    FALLING_ASLEEP,
    GIB_BYTES,
    SLEEPING,
    WAKING,
    Instance,
    Node,
    NodeSnapshot,
    Provider,
)
from fma.core.policy import Policy

_HOST_HOLDERS = frozenset({SLEEPING, FALLING_ASLEEP, WAKING})
"""States in which an instance's weights are (also) in host memory."""


@dataclass(frozen=True, slots=True)
class Sleeper:
    provider: str
    instance: Instance
    evictable: bool = True
    """False for a sleeper that is bound (being woken) and so must not be taken."""


def _sleepers_of(p: Provider) -> tuple[Sleeper, ...]:
    """Every sleeper on a provider, with whether it may be evicted.

    Instances moving weights count too (they hold host memory), and so does an awake instance
    of an unbound provider: it is on its way to sleep (or will be retired), and leaving it out
    would let two sleeps admitted one after the other overrun the budget together. Only a
    settled, unbound sleeper may be evicted.
    """
    if p.deleting:
        return ()
    return tuple(
        Sleeper(
            p.name,
            i,
            evictable=i.state is SLEEPING
            and not (p.bound and p.bound_instance_id == i.instance_id),
        )
        for i in p.instances
        if i.state in _HOST_HOLDERS or (i.state is AWAKE and not p.bound)
    )


# --- What a sleeper is worth -------------------------------------------------------------------

REUSE_HALF_LIFE_S = 3600.0
"""Idle time after which a sleeper is judged half as likely to be used again. Sleepers are
kept for hours in practice (upstream has no TTL at all: only its count limit evicts), so an
hour, not minutes."""


def expected_saving_s(instance: Instance, now_s: float, node: Node) -> float:
    """Seconds a future hot hit on ``instance`` is expected to save: reuse likelihood x
    (cold start - wake).

    Reuse likelihood decays with idle time (a recently used model is likely to return), by
    half after :data:`REUSE_HALF_LIFE_S`. A cold start loads the weights from disk and
    initialises the engine; a wake moves each GPU's share back over PCIe.
    """
    idle_s = max(0.0, now_s - instance.last_used_s)
    reuse = 1.0 / (1.0 + idle_s / REUSE_HALF_LIFE_S)
    cold_s = instance.spec.weights_bytes / node.disk_bytes_per_s + instance.spec.engine_init_s
    wake_s = instance.bytes_per_gpu / node.h2d_bytes_per_s
    return reuse * max(0.0, cold_s - wake_s)


def keep_value(sleeper: Sleeper, now_s: float, node: Node) -> float:
    """Expected seconds saved per GiB of host memory held (:func:`expected_saving_s` / size)."""
    gib = max(sleeper.instance.spec.weights_bytes / GIB_BYTES, 0.1)
    return expected_saving_s(sleeper.instance, now_s, node) / gib


# --- Eviction policies -----------------------------------------------------------------------

EvictionPolicy = Callable[[Sequence[Sleeper], float, Node], list[Sleeper]]
"""Orders candidates evict-first, given ``now_s`` and the node. Pure and deterministic."""


def evict_lru(candidates: Sequence[Sleeper], now_s: float, node: Node) -> list[Sleeper]:
    """Least recently used first; last use is refreshed on wake and on sleep."""
    return sorted(candidates, key=lambda s: (s.instance.last_used_s, s.instance.instance_id))


def evict_oldest(candidates: Sequence[Sleeper], now_s: float, node: Node) -> list[Sleeper]:
    """Upstream's approximation: oldest creation first, whatever the use since."""
    return sorted(candidates, key=lambda s: (s.instance.created_s, s.instance.instance_id))


def evict_cost_aware(candidates: Sequence[Sleeper], now_s: float, node: Node) -> list[Sleeper]:
    """Lowest expected saving per GiB first: big, rarely used, quick-to-load models go first."""
    return sorted(candidates, key=lambda s: (keep_value(s, now_s, node), s.instance.instance_id))


EVICTION_POLICIES: dict[str, EvictionPolicy] = {
    "lru": evict_lru,
    "oldest": evict_oldest,
    "cost": evict_cost_aware,
}


# --- The budget --------------------------------------------------------------------------------


def gpu_claim_bytes(instance: Instance, gpu_memory_bytes: int) -> int:
    """What an awake instance holds on one of its GPUs: its share of ``gpu_memory_utilization``
    (weights and KV cache), or its weights if they are larger."""
    claim = int(instance.spec.gpu_memory_utilization * gpu_memory_bytes)
    return max(claim, instance.bytes_per_gpu)


class Tally:
    """Running totals of a node's budget, by instance: the sleepers' host bytes (in all and per
    GPU), their residue per GPU, and the awake instances' claims per GPU.

    Adding or removing an instance costs its GPUs and :meth:`over` the node's GPUs, so choosing
    victims does not grow with the number of sleepers. An awake instance on its way to sleep
    counts as both (it holds host memory, and its claim in full — not a residue too); instances
    are told apart by object, not ID, since two launchers may hold one instance ID.
    """

    __slots__ = (
        "_awake",
        "_claims",
        "_held",
        "_host",
        "_host_limit",
        "_memory",
        "_per_gpu_max",
        "_residue",
        "_residues",
        "_sleeping",
    )

    def __init__(self, node: Node, policy: Policy) -> None:
        self._empty(
            node.host_memory_bytes * (1.0 - policy.host_memory_reserve_fraction),
            policy.sleeping_bytes_per_gpu_max,
            policy.sleeper_gpu_residue_bytes,
            _MEMORY.of(node, _memory_of),
        )

    def _empty(
        self,
        host_limit: float,
        per_gpu_max: int | None,
        residue: int,
        memory: dict[str, int],
    ) -> None:
        self._host_limit = host_limit
        self._per_gpu_max = per_gpu_max
        self._residue = residue
        self._memory = memory
        self._host = 0
        self._held: dict[str, int] = {}
        self._residues: dict[str, int] = {}
        self._claims: dict[str, int] = {}
        self._sleeping: dict[int, Instance] = {}
        self._awake: dict[int, Instance] = {}

    @classmethod
    def of(
        cls, node: Node, sleepers: Sequence[Sleeper], awake: Sequence[Instance], policy: Policy
    ) -> "Tally":
        tally = cls(node, policy)
        for inst in awake:
            tally.add_awake(inst)
        # :meth:`add_sleeper` for each, inlined: a node's sleepers are counted on every
        # placement, wake and sleep.
        sleeping, held, residues, awake_ids = (
            tally._sleeping,
            tally._held,
            tally._residues,
            tally._awake,
        )
        for sleeper in sleepers:
            inst = sleeper.instance
            key = id(inst)
            if key in sleeping:
                continue
            sleeping[key] = inst
            weights = inst.spec.weights_bytes
            tally._host += weights
            share = weights // max(1, len(inst.gpu_uuids))
            residue = key not in awake_ids
            for uuid in inst.gpu_uuids:
                held[uuid] = held.get(uuid, 0) + share
                if residue:
                    residues[uuid] = residues.get(uuid, 0) + 1
        return tally

    def copy(self) -> "Tally":
        other = _TallyCopy()
        other._empty(self._host_limit, self._per_gpu_max, self._residue, self._memory)
        other._host = self._host
        other._held = dict(self._held)
        other._residues = dict(self._residues)
        other._claims = dict(self._claims)
        other._sleeping = dict(self._sleeping)
        other._awake = dict(self._awake)
        return other

    def _count(self, counts: dict[str, int], inst: Instance, by: int) -> None:
        for uuid in inst.gpu_uuids:
            counts[uuid] = counts.get(uuid, 0) + by

    def add_sleeper(self, inst: Instance) -> None:
        if id(inst) in self._sleeping:
            return
        self._sleeping[id(inst)] = inst
        self._host += inst.spec.weights_bytes
        self._count(self._held, inst, inst.bytes_per_gpu)
        if id(inst) not in self._awake:
            self._count(self._residues, inst, 1)

    def remove_sleeper(self, inst: Instance) -> None:
        if self._sleeping.pop(id(inst), None) is None:
            return
        self._host -= inst.spec.weights_bytes
        self._count(self._held, inst, -inst.bytes_per_gpu)
        if id(inst) not in self._awake:
            self._count(self._residues, inst, -1)

    def add_awake(self, inst: Instance) -> None:
        if id(inst) in self._awake:
            return
        self._awake[id(inst)] = inst
        for uuid in inst.gpu_uuids:
            claim = gpu_claim_bytes(inst, self._memory.get(uuid, 0))
            self._claims[uuid] = self._claims.get(uuid, 0) + claim
        if id(inst) in self._sleeping:
            self._count(self._residues, inst, -1)  # claimed in full now, not as a residue

    def remove_awake(self, inst: Instance) -> None:
        if self._awake.pop(id(inst), None) is None:
            return
        for uuid in inst.gpu_uuids:
            claim = gpu_claim_bytes(inst, self._memory.get(uuid, 0))
            self._claims[uuid] = self._claims.get(uuid, 0) - claim
        if id(inst) in self._sleeping:
            self._count(self._residues, inst, 1)

    def over(self) -> bool:
        """Whether any limit is exceeded: host memory less the reserve, the per-GPU sleeping
        budget, or a GPU's memory (awake claims plus residues)."""
        if self._host > self._host_limit:
            return True
        per_gpu_max = self._per_gpu_max
        if per_gpu_max is not None and any(b > per_gpu_max for b in self._held.values()):
            return True
        memory, residue = self._memory, self._residue
        residues, claims = self._residues, self._claims
        for uuid, claim in claims.items():
            if claim + residues.get(uuid, 0) * residue > memory.get(uuid, 0):
                return True
        for uuid, count in residues.items():
            if uuid not in claims and count * residue > memory.get(uuid, 0):
                return True
        return False


class _TallyCopy(Tally):
    """A :class:`Tally` made by :meth:`Tally.copy`, which fills it in."""

    __slots__ = ()

    def __init__(self) -> None:
        pass


def victims_to_fit(
    *,
    node: Node,
    sleepers: Sequence[Sleeper],
    awake: Sequence[Instance],
    policy: Policy,
    now_s: float,
) -> list[Sleeper] | None:
    """The sleepers to evict so that ``sleepers`` and ``awake`` fit the budget.

    Evicts in the order of ``policy.eviction``, then spares any victim whose survival still
    fits (evicting on another GPU did not help). Returns [] when everything fits, and None when
    even evicting every evictable sleeper cannot make it fit (the awake set alone is too big).
    Pure; no I/O.
    """
    tally = Tally.of(node, sleepers, awake, policy)
    return choose_victims(tally, [s for s in sleepers if s.evictable], node, policy, now_s)


def choose_victims(
    tally: Tally, candidates: Sequence[Sleeper], node: Node, policy: Policy, now_s: float
) -> list[Sleeper] | None:
    """:func:`victims_to_fit` on a tally that already holds everything (it is changed)."""
    if not tally.over():
        return []  # the common case
    order = EVICTION_POLICIES[policy.eviction](candidates, now_s, node)
    victims: list[Sleeper] = []
    for candidate in order:
        if not tally.over():
            break
        tally.remove_sleeper(candidate.instance)
        victims.append(candidate)
    if tally.over():
        return None
    needed: list[Sleeper] = []
    for victim in reversed(victims):
        tally.add_sleeper(victim.instance)
        if tally.over():
            tally.remove_sleeper(victim.instance)
            needed.append(victim)
    return list(reversed(needed))


# --- One node's sleepers and awake instances, counted once per snapshot -----------------------


@dataclass(frozen=True, slots=True)
class Ledger:
    """A snapshot's sleepers and awake instances with their :class:`Tally`: every placement,
    wake and sleep of one plan is judged against the same snapshot, so this is built once."""

    sleepers: tuple[Sleeper, ...]
    awake: tuple[Instance, ...]
    tally: Tally

    def fresh(self) -> Tally:
        """A copy of the tally to change."""
        return self.tally.copy()


_last: list[tuple[object, Policy, Ledger]] = []
"""The last ledger built (one entry): a plan asks for it many times, for the same snapshot."""


def ledger(snapshot: NodeSnapshot, policy: Policy) -> Ledger:
    """The :class:`Ledger` of a snapshot (whose node must be known). Pure: memoised on the
    snapshot object, which is frozen."""
    if _last and _last[0][0] is snapshot and _last[0][1] is policy:
        return _last[0][2]
    assert snapshot.node is not None
    sleepers: list[Sleeper] = []
    awake: list[Instance] = []
    for p in snapshot.providers:
        asleep, on_gpus = _HOLDINGS.of(p, _holdings_of)
        if asleep:
            sleepers += asleep
        if on_gpus:
            awake += on_gpus
    book = Ledger(tuple(sleepers), tuple(awake), Tally.of(snapshot.node, sleepers, awake, policy))
    _last[:] = [(snapshot, policy, book)]
    return book


def _holdings_of(p: Provider) -> tuple[tuple[Sleeper, ...], tuple[Instance, ...]]:
    """A provider's sleepers (:func:`_sleepers_of`) and its instances on their GPUs."""
    return _sleepers_of(p), tuple(i for i in p.instances if i.state.on_gpus)


_HOLDINGS: PerObject[Provider, tuple[tuple[Sleeper, ...], tuple[Instance, ...]]] = PerObject()
"""Each provider's sleepers and instances on their GPUs, once per provider object (a pass
counts them for every placement, wake and sleep, and most providers are the same objects as on
the last pass)."""


def _memory_of(node: Node) -> dict[str, int]:
    return {g.uuid: g.memory_bytes for g in node.gpus}


_MEMORY: PerObject[Node, dict[str, int]] = PerObject()
"""Each node's GPU memory by UUID, once per node object (a tally only reads it)."""
